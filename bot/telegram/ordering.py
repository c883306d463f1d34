"""Keeps a chat's messages in the order they arrived until each has taken its place in the chat's queue.

aiogram handles every update as its own task. Middlewares and handlers await Redis (dedupe, access, limits)
before a question joins the turn queue, and those round trips can finish in any order, so without this a
later message could overtake an earlier one. Each message update of a chat holds the chat's FIFO lock from
arrival until its handler calls `handoff` (right after it has joined a queue) or finishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update


class ChatOrdering(BaseMiddleware):
    """Update-level outer middleware; must be the first middleware that awaits anything."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        key = _chat_key(event)
        if key is None:
            return await handler(event, data)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        held = False

        def handoff() -> None:
            nonlocal held
            if held:
                held = False
                lock.release()

        try:
            await lock.acquire()
            held = True
            data["handoff"] = handoff
            return await handler(event, data)
        finally:
            handoff()
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key], self._locks[key]


def _chat_key(event: TelegramObject) -> str | None:
    """Only messages are ordered; button presses and stop requests must never wait behind them."""
    if not isinstance(event, Update) or event.message is None:
        return None
    message = event.message
    topic = message.message_thread_id if message.is_topic_message else None
    return f"{message.chat.id}:{topic}"
