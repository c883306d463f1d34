"""The "typing…" indicator: shown the moment a question arrives, kept alive until the answer shows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import TelegramObject, Update

from bot.clock import Clock
from bot.telegram.addressing import question_for

log = logging.getLogger(__name__)

TYPING_LASTS_SECONDS = 4.5  # Telegram shows "typing…" for about 5 s per chat action


class TypingIndicator:
    """Sends chat actions, at most one per chat per few seconds whoever asks (middleware or streamer)."""

    def __init__(self, bot: Bot, clock: Clock) -> None:
        self._bot = bot
        self._clock = clock
        self._sent_at: dict[tuple[int, int | None], float] = {}

    async def ping(self, chat_id: int, message_thread_id: int | None) -> bool:
        """Show "typing…" unless it is still showing; False when the chat is unreachable."""
        key = (chat_id, message_thread_id)
        now = self._clock.now()
        if now - self._sent_at.get(key, -TYPING_LASTS_SECONDS) < TYPING_LASTS_SECONDS:
            return True
        self._sent_at[key] = now
        if len(self._sent_at) > 10_000:  # forget chats whose indicator has long gone out
            self._sent_at = {k: t for k, t in self._sent_at.items() if now - t < TYPING_LASTS_SECONDS}
        try:
            await self._bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=message_thread_id)
        except TelegramForbiddenError:
            return False
        except Exception:  # "typing…" is decoration; it never breaks an answer
            log.debug("chat action failed", exc_info=True)
        return True


class FirstSign(BaseMiddleware):
    """Update-level middleware: "typing…" for a question as soon as it arrives, before any Redis round trip.

    The user's first sign of life should not wait for deduplication, access checks and the turn queue.
    Only text meant for the bot counts (a private message, or a mention or reply in a group).
    """

    def __init__(self, indicator: TypingIndicator) -> None:
        self._indicator = indicator
        self._tasks: set[asyncio.Task[bool]] = set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        message = event.message if isinstance(event, Update) else None
        if message is not None and message.text and not message.text.startswith("/"):
            bot: Bot = data["bot"]
            if question_for(message, await bot.me()):
                topic = message.message_thread_id if message.is_topic_message else None
                task = asyncio.create_task(self._indicator.ping(message.chat.id, topic))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return await handler(event, data)
