"""One chat's Telegram calls: paced, within the bot-wide budget, retried as far as they deserve."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter

from bot.clock import Clock
from bot.telegram.budget import CallBudget, prepaid
from bot.telegram.errors import TRANSIENT_ERRORS, Result, classify
from bot.telegram.pacing import Pacer

log = logging.getLogger(__name__)

FINAL_ATTEMPTS = 6
TRANSIENT_BACKOFF_SECONDS = 1.0


class ChatCaller:
    """Makes one chat's calls at most one per pacing interval and within the shared budget.

    `ready()` does the waiting ahead of a call so the caller can build its frame afterwards from the
    newest text; `call()` then spends the prepared slot. Final calls retry through flood pauses (up to
    `max_flood_wait` seconds per pause, when set) and transient failures; intermediate ones give up at
    once, since a newer frame will follow.
    """

    def __init__(
        self, pacer: Pacer, budget: CallBudget, clock: Clock, *, max_flood_wait: float | None = None
    ) -> None:
        self._pacer = pacer
        self._budget = budget
        self._clock = clock
        self._max_flood_wait = max_flood_wait
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
                too_long = self._max_flood_wait is not None and error.retry_after > self._max_flood_wait
                if not final or too_long:
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
