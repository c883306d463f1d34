"""The bot-wide budget of Telegram calls, shared by every answer streaming at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

from bot.clock import Clock

# Telegram allows about 30 messages per second per bot (edits included); staying below leaves room for
# commands, chat actions and other processes' bursts.
DEFAULT_CALLS_PER_SECOND = 25.0
# Telegram counts calls in a rolling second: rate + burst must stay under 30 even when requests bunch up.
DEFAULT_BURST = 1.0


class CallBudget:
    """A token bucket: `rate` calls per second on average, at most `burst` at once.

    Waiters are served first come, first served (one asyncio.Lock queue), so when many chats stream at
    once each gets its turn in order rather than the fastest ones starving the rest. Callers render their
    frame after `acquire()` returns, so the wait never makes a frame stale.
    """

    def __init__(
        self, clock: Clock, rate: float = DEFAULT_CALLS_PER_SECOND, burst: float | None = None
    ) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = burst if burst is not None else DEFAULT_BURST
        self._tokens = self._burst
        self._updated = clock.now()
        self._queue = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock.now()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    async def acquire(self) -> None:
        async with self._queue:
            self._refill()
            if self._tokens < 1:
                await self._clock.sleep((1 - self._tokens) / self._rate)
                self._refill()
            self._tokens -= 1


# Calls that do not count against Telegram's message budget (reading, polling, chat actions, set-up).
_FREE_METHODS = frozenset(
    {
        "getUpdates",
        "getMe",
        "getFile",
        "getChat",
        "sendChatAction",
        "answerCallbackQuery",
        "setMyCommands",
        "deleteMyCommands",
        "getMyCommands",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "close",
        "logOut",
    }
)
_prepaid: ContextVar[bool] = ContextVar("budget_prepaid", default=False)


@contextlib.contextmanager
def prepaid() -> Iterator[None]:
    """Mark the calls made inside as already paid for (the streamer acquires before rendering)."""
    token = _prepaid.set(True)
    try:
        yield
    finally:
        _prepaid.reset(token)


class BudgetMiddleware(BaseRequestMiddleware):
    """Every message-sending call of the bot, whoever makes it, waits for the shared budget.

    So command replies, error messages and uploads' status lines cannot push the bot over Telegram's
    bot-wide limit while many answers stream.
    """

    def __init__(self, budget: CallBudget) -> None:
        self._budget = budget

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name: Any = getattr(method, "__api_method__", "")
        if name not in _FREE_METHODS and not _prepaid.get():
            await self._budget.acquire()
        return await make_request(bot, method)
