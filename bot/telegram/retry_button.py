"""The ↻ button: under a chat's last answer only, so a press always means "answer the last question again".

Redis remembers which message carries it (`chat:<chat key>:retry`), so whichever process finishes the
next answer takes it off the one before, and a press on an older answer is recognised as stale.
"""

from __future__ import annotations

import logging

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.storage import text
from bot.telegram.sender import Sender

log = logging.getLogger(__name__)

RETRY_CALLBACK = "retry"


def retry_markup(label: str) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text=label, callback_data=RETRY_CALLBACK)
    return keyboard.as_markup()


class RetryButtons:
    def __init__(self, redis: Redis, *, keys: RedisKeys, ttl_seconds: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl_seconds  # the thread's: an expired thread has nothing to answer again

    async def move_to(self, sender: Sender, message_id: int | None, label: str) -> None:
        """Put the button under `message_id` (a new answer; None: none yet, a newer question waits) and
        take it off the previous answer."""
        key = self._keys.retry_button(sender.target.key)
        if message_id is None:
            previous = text(await self._redis.getdel(key))
        else:
            previous = text(await self._redis.set(key, message_id, ex=self._ttl, get=True))
            await sender.edit_markup(message_id, retry_markup(label))
        if previous is not None and previous != str(message_id):
            await sender.edit_markup(int(previous), None)

    async def is_current(self, chat_key: str, message_id: int) -> bool:
        """Whether this message carries the chat's ↻ button now (it is the last answer)."""
        return text(await self._redis.get(self._keys.retry_button(chat_key))) == str(message_id)

    async def take_off(self, sender: Sender, message_id: int) -> None:
        """Remove a stale button (from an answer that is no longer the last)."""
        await sender.edit_markup(message_id, None)
