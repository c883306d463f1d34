"""Who may use the bot, enforced before any handler runs (and so before any model cost)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, User
from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.log_context import ChatRef
from bot.metrics import Metrics
from bot.telegram.middlewares.callback_answers import answer_quietly
from bot.telegram.middlewares.handler import Handler
from bot.telegram.routers.common import reply, texts_of
from bot.telegram.sender import Outbox
from bot.telegram.targets import is_private
from bot.texts import texts_for

log = logging.getLogger(__name__)

REFUSAL_REPEAT_SECONDS = 24 * 3600  # a refused user hears it once a day, not once a message


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Allow-lists of users and chats; admins are always let in. Both lists empty: open to everyone."""

    allowed_user_ids: frozenset[int] = frozenset()
    allowed_chat_ids: frozenset[int] = frozenset()
    admin_user_ids: frozenset[int] = frozenset()

    @property
    def open(self) -> bool:
        return not self.allowed_user_ids and not self.allowed_chat_ids

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_user_ids

    def allows(self, user_id: int | None, chat: Chat | None) -> bool:
        if user_id is None and chat is not None and is_private(chat):
            user_id = chat.id  # a private chat's id is its user's (a draft stop update names no user)
        if self.open or self.is_admin(user_id):
            return True
        return (user_id is not None and user_id in self.allowed_user_ids) or (
            chat is not None and chat.id in self.allowed_chat_ids
        )


class AccessMiddleware(BaseMiddleware):
    """Outer middleware: a refused user gets one polite refusal a day; the handler never runs for them."""

    def __init__(
        self,
        policy: AccessPolicy,
        redis: Redis,
        *,
        keys: RedisKeys,
        outbox: Outbox,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._policy = policy
        self._redis = redis
        self._keys = keys
        self._outbox = outbox

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        user_id = user.id if user else None
        data["is_admin"] = self._policy.is_admin(user_id)
        if self._policy.allows(user_id, chat):
            return await handler(event, data)
        log.info("refused %s in %s", ChatRef(user_id, "user"), ChatRef(chat.id if chat else None))
        if isinstance(event, Message):
            self._metrics.question_refused("access")
        await self._refuse(event, user_id)
        return None

    async def _refuse(self, event: TelegramObject, user_id: int | None) -> None:
        if isinstance(event, CallbackQuery):
            await answer_quietly(event, texts_for(event.from_user.language_code).not_allowed)
            return
        if not isinstance(event, Message):
            return
        first = await self._redis.set(
            self._keys.refused(user_id, event.chat.id), 1, nx=True, ex=REFUSAL_REPEAT_SECONDS
        )
        if first:
            await reply(self._outbox, event, texts_of(event).not_allowed)
