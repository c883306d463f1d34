"""Where a conversation happens and its answers go: a chat, maybe a forum topic, replying to a message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """A chat (or one forum topic of it) as the turn logic sees it; built from Telegram objects only by
    `bot.telegram.targets.chat_target`."""

    chat_id: int
    is_private: bool
    topic_id: int | None = None  # a forum topic: it has a thread of its own
    reply_to_message_id: int | None = None

    @property
    def key(self) -> str:
        """The chat key: the chat, and the topic where there is one (each topic has its own thread)."""
        if self.topic_id is None:
            return str(self.chat_id)
        return f"{self.chat_id}:{self.topic_id}"
