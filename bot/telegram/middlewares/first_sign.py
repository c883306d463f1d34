"""The first sign of life: "typing…" the moment a question arrives, before any Redis round trip."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import TelegramObject, Update

from bot.telegram.addressing import question_for
from bot.telegram.chat_action import TypingIndicator
from bot.telegram.middlewares.handler import Handler
from bot.telegram.targets import chat_target


class FirstSign(BaseMiddleware):
    """Update-level middleware: "typing…" for a question as soon as it arrives, before any Redis round trip.

    The user's first sign of life should not wait for deduplication, access checks and the turn queue.
    Only text meant for the bot counts (a private message, or a mention or reply in a group).
    """

    def __init__(self, indicator: TypingIndicator) -> None:
        self._indicator = indicator
        self._tasks: set[asyncio.Task[bool]] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        message = event.message if isinstance(event, Update) else None
        if message is not None and message.text and not message.text.startswith("/"):
            bot: Bot = data["bot"]
            if question_for(message, await bot.me()):
                task = asyncio.create_task(self._indicator.ping(chat_target(message)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                # One turn of the loop for the chat action to go out: otherwise, in a burst, every
                # update of the batch first runs its chain up to its Redis round trip, and the chat
                # actions queue behind all of that.
                await asyncio.sleep(0)
        return await handler(event, data)
