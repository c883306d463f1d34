"""The "typing…" indicator: at most one chat action per chat per few seconds, whoever asks."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramForbiddenError

from bot.clock import Clock
from bot.target import ChatTarget

log = logging.getLogger(__name__)

TYPING_LASTS_SECONDS = 4.5  # Telegram shows "typing…" for about 5 s per chat action


class TypingIndicator:
    """Sends chat actions, at most one per chat per few seconds whoever asks (middleware or streamer)."""

    def __init__(self, bot: Bot, clock: Clock) -> None:
        self._bot = bot
        self._clock = clock
        self._sent_at: dict[tuple[int, int | None], float] = {}

    async def ping(self, target: ChatTarget) -> bool:
        """Show "typing…" unless it is still showing; False when the chat is unreachable."""
        key = (target.chat_id, target.topic_id)
        now = self._clock.now()
        if now - self._sent_at.get(key, -TYPING_LASTS_SECONDS) < TYPING_LASTS_SECONDS:
            return True
        self._sent_at[key] = now
        if len(self._sent_at) > 10_000:  # forget chats whose indicator has long gone out
            self._sent_at = {k: t for k, t in self._sent_at.items() if now - t < TYPING_LASTS_SECONDS}
        try:
            await self._bot.send_chat_action(
                target.chat_id, ChatAction.TYPING, message_thread_id=target.topic_id
            )
        except TelegramForbiddenError:
            return False
        except Exception:  # "typing…" is decoration; it never breaks an answer
            log.debug("chat action failed", exc_info=True)
        return True
