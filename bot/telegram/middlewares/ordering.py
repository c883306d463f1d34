"""Keeps a chat's messages in the order they arrived until each has taken its place in the chat's queue.

aiogram handles every update as its own task. Middlewares and handlers await Redis (dedupe, access, limits)
before a question joins the turn queue, and those round trips can finish in any order, so without this a
later message could overtake an earlier one. Each message update of a chat holds the chat's FIFO lock from
arrival until its handler calls `handoff` (right after it has joined a queue) or finishes.

It also notes when each message arrived (`arrived_at`, seconds), before anything awaits: the question's
place in the line for a generation slot, shared by all chats and processes. That is Telegram's order, not
the moment this process parsed the update: processes behind one webhook parse their shares of a burst at
their own pace, and the first to get there would otherwise take the free slots for all of its share. So a
message arrives at its `date` (Telegram's clock, whole seconds), and within that second by its update_id
(`telegram_arrival`); other questions (the console's, a /retry's) arrive at the wall clock, which mixes
with it to the microsecond. The line is told (`ArrivalLine.expect`) so that a later message
cannot overtake this one on the way there; the message is withdrawn once its handler is done (it never
became a question), unless its answer, going on in a task of its own, keeps the place until it has joined
the line (`TurnRunner.start`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update

from bot.keyed_lock import KeyedLock
from bot.telegram.middlewares.handler import Handler
from bot.telegram.targets import chat_target


class ArrivalLine(Protocol):
    """What keeps questions in arrival order on their way to the generation line (bot.turns.generation)."""

    def expect(self, chat_key: str, arrived_at: float) -> None: ...

    def withdraw(self, chat_key: str, arrived_at: float | None) -> None: ...


# update_id % UPDATES_PER_SECOND is the message's microsecond within its second. The wrap every million
# updates is harmless: only a second that holds the wrap is affected, and there the few updates after it
# go before the few before it, once in a million updates.
UPDATES_PER_SECOND = 1_000_000


def telegram_arrival(update_id: int, message: Message) -> float | None:
    """The message's place in Telegram's order, as seconds: its date, and within that second its update_id.

    update_id grows across all of a bot's updates and the date is the same for every process, so every
    process places a message alike. A backlog delivered after downtime keeps its old dates and goes first,
    as it came first; None when the message carries no date (then the wall clock stands in).
    """
    date = int(message.date.timestamp())
    if date <= 0:
        return None
    # Exact in a float: bot.turns.generation rounds these seconds to microseconds for the line's integer
    # place and gets date * 1e6 + update_id % 1e6 back for any date before 2106.
    return (date * UPDATES_PER_SECOND + update_id % UPDATES_PER_SECOND) / UPDATES_PER_SECOND


class ChatOrdering(BaseMiddleware):
    """Update-level outer middleware; must be the first middleware that awaits anything."""

    def __init__(self, line: ArrivalLine | None = None, wall_clock: Callable[[], float] = time.time) -> None:
        self._locks: KeyedLock[str] = KeyedLock()
        self._line = line
        self._wall_clock = wall_clock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        # Only messages are ordered; button presses and stop requests must never wait behind them.
        if not isinstance(event, Update) or event.message is None:
            return await handler(event, data)
        key = chat_target(event.message).key
        arrived_at = telegram_arrival(event.update_id, event.message)
        if arrived_at is None:
            arrived_at = self._wall_clock()
        data["arrived_at"] = arrived_at
        text = event.message.text
        line = self._line if text and not text.startswith("/") else None  # only text can be a question
        if line is not None:
            line.expect(key, arrived_at)
        try:
            async with self._locks.hold(key) as handoff:
                data["handoff"] = handoff
                return await handler(event, data)
        finally:
            if line is not None:
                line.withdraw(key, arrived_at)
