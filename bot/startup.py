"""Start-up checks that say in one line what is wrong: Redis and Telegram unreachable are waited out
with backoff (one log line per attempt), a token Telegram rejects stops the process (exit code 2)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.outage import describe
from bot.storage import redis_address

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)

EXIT_BAD_CONFIG = 2
EXIT_UNREACHABLE = 1
FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 5.0

Sleep = Callable[[float], Awaitable[None]]


class StartupFailed(Exception):
    """Start-up cannot go on; the reason is already logged in one line. `exit_code` for the shell."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


def pauses(first: float = FIRST_PAUSE_SECONDS, cap: float = MAX_PAUSE_SECONDS) -> Callable[[int], float]:
    """The wait before attempt n+1: 1 s, 2 s, 4 s, … up to `cap`."""
    return lambda attempt: min(cap, first * 2 ** (attempt - 1))


async def wait_for_redis(
    url: str,
    *,
    attempts: int | None = None,
    sleep: Sleep = asyncio.sleep,
    first_pause: float = FIRST_PAUSE_SECONDS,
) -> None:
    """Until Redis at `url` answers PING: one line per failed attempt. After `attempts` failures (None:
    never give up) StartupFailed(1)."""
    description = redis_address(url)
    pause = pauses(first_pause)
    attempt = 0
    while True:
        attempt += 1
        # A client of its own without retries: each attempt is one quick try, logged as one line.
        probe = Redis.from_url(
            url,
            socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
            socket_timeout=PROBE_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            await probe.ping()
            if attempt > 1:
                log.info("Redis at %s answers now", description)
            return
        except (RedisError, OSError) as error:
            if attempts is not None and attempt >= attempts:
                log.error(
                    "Redis unreachable at %s (%s): check REDIS_URL and that Redis runs; gave up after %d "
                    "attempt(s)",
                    description,
                    describe(error),
                    attempt,
                )
                raise StartupFailed(EXIT_UNREACHABLE) from None
            wait = pause(attempt)
            log.warning(
                "Redis unreachable at %s (%s): check REDIS_URL and that Redis runs; attempt %d, "
                "retrying in %.0f s",
                description,
                describe(error),
                attempt,
                wait,
            )
        finally:
            await probe.aclose()
        await sleep(wait)


async def reach_telegram(
    bot: Bot, api_url: str, *, sleep: Sleep = asyncio.sleep, first_pause: float = FIRST_PAUSE_SECONDS
) -> None:
    """Until Telegram answers getMe: unreachable (network, TELEGRAM_API_URL, a 5xx) is retried with one
    line per attempt; a token Telegram rejects raises StartupFailed(2) after one line naming BOT_TOKEN."""
    from aiogram.exceptions import (
        TelegramNetworkError,
        TelegramNotFound,
        TelegramRetryAfter,
        TelegramServerError,
        TelegramUnauthorizedError,
    )

    pause = pauses(first_pause)
    attempt = 0
    while True:
        attempt += 1
        try:
            # bot.me() keeps the answer: every update needs the bot's own user, and asking once here
            # spares a getMe per update of the first burst.
            await asyncio.wait_for(bot.me(), PROBE_TIMEOUT_SECONDS * 2)
            if attempt > 1:
                log.info("Telegram at %s answers now", api_url)
            return
        except TelegramUnauthorizedError:
            log.error(
                "BOT_TOKEN was rejected by Telegram (401 Unauthorized): check the token @BotFather gave you"
            )
            raise StartupFailed(EXIT_BAD_CONFIG) from None
        except TelegramNotFound:
            log.error(
                "BOT_TOKEN was rejected by Telegram (404 Not Found at %s): check the token, and that "
                "TELEGRAM_API_URL is a Bot API server",
                api_url,
            )
            raise StartupFailed(EXIT_BAD_CONFIG) from None
        except TelegramRetryAfter as error:
            wait = float(error.retry_after)
            log.warning("Telegram asks to wait %.0f s before the start-up check; attempt %d", wait, attempt)
        except (TelegramNetworkError, TelegramServerError, TimeoutError, OSError) as error:
            wait = pause(attempt)
            log.warning(
                "Telegram unreachable at %s (%s): check the network, a proxy, or TELEGRAM_API_URL; "
                "attempt %d, retrying in %.0f s",
                api_url,
                describe(error),
                attempt,
                wait,
            )
        await sleep(wait)
