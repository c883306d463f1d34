"""What every handler needs: where a message's answer goes and in which language."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import Message

from bot.telegram.render import Rendered
from bot.telegram.sending import send_parts
from bot.telegram.target import ChatTarget
from bot.telegram.texts import Texts, texts_for


def target_of(message: Message) -> ChatTarget:
    """Where the answer to this message goes; forum topics get their own thread."""
    topic = message.message_thread_id if message.is_topic_message else None
    return ChatTarget(
        chat_id=message.chat.id,
        is_private=message.chat.type == "private",
        message_thread_id=topic,
        reply_to_message_id=message.message_id,
    )


def texts_of(message: Message) -> Texts:
    return texts_for(message.from_user.language_code if message.from_user else None)


async def reply(bot: Bot, message: Message, text: str) -> None:
    """Our own plain-text reply to a message (in its topic), flood pauses honoured."""
    await send_parts(bot, target_of(message), [Rendered(text)])
