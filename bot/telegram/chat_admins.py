"""Who may change a chat's assistant: anyone in a private chat; in groups the chat's admins.

Group admins are asked of Telegram (`getChatMember`) and remembered briefly, so a run of button presses
costs one call, and a member who loses admin rights loses the right to change the settings within
`CACHE_SECONDS`. The bot's own admins (ADMIN_USER_IDS) may change them everywhere.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, User

from bot.clock import Clock
from bot.log_context import ChatRef
from bot.telegram.targets import is_private

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
CHECK_TIMEOUT_SECONDS = 10
MAX_CACHED = 10000
ADMIN_STATUSES = frozenset({ChatMemberStatus.CREATOR, ChatMemberStatus.ADMINISTRATOR})


class AdminCheckFailed(Exception):
    """Telegram could not say whether the user is an admin of the chat (the user is told to retry)."""


class ChatAdmins:
    def __init__(self, bot: Bot, clock: Clock, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._bot = bot
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[int, int], tuple[bool, float]] = {}

    async def may_configure(
        self, chat: Chat, user: User | None, *, sender_chat: Chat | None = None, bot_admin: bool = False
    ) -> bool:
        """Whether this user may change the chat's mode, instructions and model.

        An anonymous group admin writes as the group itself (`sender_chat` is the chat); that is an admin.
        Raises AdminCheckFailed when Telegram cannot be asked.
        """
        if is_private(chat) or bot_admin:
            return True
        if sender_chat is not None and sender_chat.id == chat.id:
            return True
        if user is None:
            return False
        return await self.is_admin(chat.id, user.id)

    async def is_admin(self, chat_id: int, user_id: int) -> bool:
        now = self._clock.now()
        cached = self._cache.get((chat_id, user_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            member = await self._bot.get_chat_member(chat_id, user_id, request_timeout=CHECK_TIMEOUT_SECONDS)
        except (TelegramAPIError, TimeoutError) as error:
            log.warning(
                "could not check the status of %s in %s: %s",
                ChatRef(user_id, "user"),
                ChatRef(chat_id),
                error,
            )
            raise AdminCheckFailed from error
        admin = member.status in ADMIN_STATUSES
        if len(self._cache) >= MAX_CACHED:
            self._cache = {key: value for key, value in self._cache.items() if value[1] > now}
        self._cache[(chat_id, user_id)] = (admin, now + self._cache_seconds)
        return admin
