"""Where a conversation happens and its answers go: a chat, maybe a forum topic, replying to a message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """A chat (or one forum topic of it) as the turn logic sees it; built from Telegram objects only by
    `bot.telegram.targets.chat_target`, and for the console chat by `bot.console.chat.console_target`."""

    chat_id: int
    is_private: bool
    topic_id: int | None = None  # a forum topic: it has a thread of its own
    reply_to_message_id: int | None = None
    console: str | None = None  # a thread of the console chat (`python -m bot chat`), not a Telegram chat

    @property
    def key(self) -> str:
        """The chat key: the chat, and the topic where there is one (each topic has its own thread).

        A console thread's key starts with letters, so it can never be a Telegram chat's.
        """
        if self.console is not None:
            return f"console:{self.console}"
        if self.topic_id is None:
            return str(self.chat_id)
        return f"{self.chat_id}:{self.topic_id}"
