"""What every handler needs: the language of a message's author, and a plain reply to it."""

from __future__ import annotations

from aiogram.types import Message

from bot.telegram.render import Rendered
from bot.telegram.sender import Outbox
from bot.telegram.targets import chat_target
from bot.texts import Texts, texts_for


def texts_of(message: Message) -> Texts:
    return texts_for(message.from_user.language_code if message.from_user else None)


async def reply(outbox: Outbox, message: Message, text: str) -> None:
    """Our own plain-text reply to a message (in its topic)."""
    await outbox.to(chat_target(message)).send_parts([Rendered(text)])


def human_size(size: int) -> str:
    """A file size as people read it: 512 B, 3.4 KB, 12.0 MB."""
    if size < 1024:
        return f"{size} B"
    if size < 2**20:
        return f"{size / 1024:.1f} KB"
    return f"{size / 2**20:.1f} MB"
