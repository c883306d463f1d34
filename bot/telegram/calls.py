"""One chat's Telegram calls during an answer: paced, within the bot-wide budget, errors sorted out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import Enum, auto

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from bot.clock import Clock
from bot.telegram.budget import CallBudget, prepaid
from bot.telegram.pacing import Pacer

log = logging.getLogger(__name__)

FINAL_ATTEMPTS = 6
TRANSIENT_BACKOFF_SECONDS = 1.0


class Result(Enum):
    """How a call ended, in the terms the reply surface acts on."""

    OK = auto()
    NOT_MODIFIED = auto()  # Telegram already shows exactly this: success
    BAD_ENTITIES = auto()  # our formatting was refused: send plain text instead
    MESSAGE_GONE = auto()  # the message to edit was deleted: send a new one
    REFUSED = auto()  # any other 400 (drafts refused in this chat, …)
    FLOODED = auto()  # 429 on an intermediate frame: skip it, the pause is recorded
    UNREACHABLE = auto()  # 403: the bot was blocked or removed; stop trying
    FAILED = auto()  # network or server trouble that outlasted the retries


class ChatCaller:
    """Makes one chat's calls at most one per pacing interval and within the shared budget.

    `ready()` does the waiting ahead of a call so the caller can build its frame afterwards from the
    newest text; `call()` then spends the prepared slot. Final frames retry through flood pauses and
    transient failures; intermediate ones give up at once, since a newer frame will follow.
    """

    def __init__(self, pacer: Pacer, budget: CallBudget, clock: Clock) -> None:
        self._pacer = pacer
        self._budget = budget
        self._clock = clock
        self._prepared = False

    async def ready(self) -> None:
        if self._prepared:
            return
        await self._clock.sleep(self._pacer.delay())
        await self._budget.acquire()
        self._prepared = True

    async def call(self, operation: Callable[[], Awaitable[object]], *, final: bool) -> Result:
        failures = 0
        while True:
            await self.ready()
            self._prepared = False
            try:
                with prepaid():
                    await operation()
            except TelegramRetryAfter as error:
                self._pacer.flooded(error.retry_after)
                log.warning("flood control: pausing a chat for %s s", error.retry_after)
                if not final:
                    return Result.FLOODED
                continue
            except TelegramBadRequest as error:
                self._pacer.spent()
                return _classify(error.message)
            except TelegramForbiddenError:
                return Result.UNREACHABLE
            except (TelegramNetworkError, TelegramServerError, TimeoutError) as error:
                failures += 1
                self._pacer.back_off(TRANSIENT_BACKOFF_SECONDS * failures)
                log.warning("Telegram call failed (%s), attempt %d", error, failures)
                if not final or failures >= FINAL_ATTEMPTS:
                    return Result.FAILED
                continue
            self._pacer.spent()
            return Result.OK


def _classify(message: str) -> Result:
    problem = message.lower()
    if "message is not modified" in problem:
        return Result.NOT_MODIFIED
    if "can't parse entities" in problem:
        return Result.BAD_ENTITIES
    if "message to edit not found" in problem:
        return Result.MESSAGE_GONE
    log.error("Telegram refused a call: %s", message)
    return Result.REFUSED
