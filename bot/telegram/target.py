"""Where an answer goes: a chat, maybe a forum topic, replying to the user's message."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import ReplyParameters


@dataclass(frozen=True, slots=True)
class ChatTarget:
    chat_id: int
    is_private: bool
    message_thread_id: int | None = None
    reply_to_message_id: int | None = None

    @property
    def key(self) -> str:
        """The thread key: the chat, and the topic where there is one (each topic has its own thread)."""
        if self.message_thread_id is None:
            return str(self.chat_id)
        return f"{self.chat_id}:{self.message_thread_id}"

    def reply_parameters(self) -> ReplyParameters | None:
        """Reply to the user's message, still sending if they deleted it meanwhile."""
        if self.reply_to_message_id is None:
            return None
        return ReplyParameters(message_id=self.reply_to_message_id, allow_sending_without_reply=True)
