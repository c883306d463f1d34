"""One chat's Telegram calls: paced, within the bot-wide budget, retried as far as they deserve."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter

from bot.clock import Clock
from bot.log_context import ChatRef
from bot.telegram.budget import Budget, prepaid
from bot.telegram.errors import TRANSIENT_ERRORS, Result, classify
from bot.telegram.pacing import Pacer

log = logging.getLogger(__name__)

FINAL_ATTEMPTS = 6
TRANSIENT_BACKOFF_SECONDS = 1.0


class ChatCaller:
    """Makes one chat's calls at most one per pacing interval and within the shared limits.

    `ready()` does the waiting ahead of a call so the caller can build its frame afterwards from the
    newest text; `call()` then spends the prepared slot. Final calls retry through flood pauses and
    transient failures; intermediate ones give up at once, since a newer frame will follow. A flood ban
    is waited out (never with calls to that chat meanwhile) as long as the waiting stays within
    `max_flood_wait` seconds in all; beyond that the caller gives up for good (`banned`), and the answer
    is only in the thread.
    """

    def __init__(
        self, pacer: Pacer, budget: Budget, clock: Clock, chat_id: int, *, max_flood_wait: float
    ) -> None:
        self._pacer = pacer
        self._budget = budget
        self._clock = clock
        self._chat_id = chat_id
        self._max_flood_wait = max_flood_wait
        self._flood_waited = 0.0
        self._prepared = False
        self.banned = False  # a flood ban outlasted max_flood_wait: nothing more is sent to this chat

    async def ready(self) -> bool:
        """Wait for the pace, any ban (within the bound) and the budget; False when given up."""
        if self._prepared:
            return True
        if self.banned:
            return False
        await self._clock.sleep(self._pacer.delay())
        allowed = max(0.0, self._max_flood_wait - self._flood_waited)
        if not await self._budget.acquire(self._chat_id, max_ban=allowed):
            self._give_up()
            return False
        self._prepared = True
        return True

    async def call(self, operation: Callable[[], Awaitable[object]], *, final: bool) -> Result:
        failures = 0
        while True:
            if not await self.ready():
                return Result.FLOODED
            self._prepared = False
            try:
                with prepaid():
                    await operation()
            except TelegramRetryAfter as error:
                self._pacer.flooded(error.retry_after)
                await self._budget.flooded(self._chat_id, error.retry_after)
                log.warning("flood control: pausing %s for %s s", ChatRef(self._chat_id), error.retry_after)
                self._flood_waited += error.retry_after
                if self._flood_waited > self._max_flood_wait:
                    self._give_up()
                    return Result.FLOODED
                if not final:
                    return Result.FLOODED
                continue
            except TRANSIENT_ERRORS as error:
                failures += 1
                self._pacer.back_off(TRANSIENT_BACKOFF_SECONDS * failures)
                log.warning("Telegram call failed (%s), attempt %d", error, failures)
                if not final or failures >= FINAL_ATTEMPTS:
                    return Result.FAILED
                continue
            except TelegramAPIError as error:
                self._pacer.spent()
                return classify(error)
            self._pacer.spent()
            return Result.OK

    def _give_up(self) -> None:
        log.warning(
            "%s is paused by Telegram's flood control for longer than %.0f s in all "
            "(TELEGRAM_MAX_FLOOD_WAIT); nothing more is sent there for this message",
            ChatRef(self._chat_id),
            self._max_flood_wait,
        )
        self.banned = True
