"""The one way from a Telegram object to its `ChatTarget`: which chat, which forum topic, private or not."""

from __future__ import annotations

from typing import overload

from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Chat, Message, MessageGenerationStopped

from bot.target import ChatTarget


@overload
def chat_target(source: Message) -> ChatTarget: ...
@overload
def chat_target(source: CallbackQuery) -> ChatTarget | None: ...
@overload
def chat_target(source: MessageGenerationStopped) -> ChatTarget: ...


def chat_target(source: Message | CallbackQuery | MessageGenerationStopped) -> ChatTarget | None:
    """Where the answer to `source` goes.

    A message is replied to, in its forum topic if it is in one (a reply in a non-forum group also carries
    a `message_thread_id`, which is not a topic). A button press belongs to the message it is under (None
    when Telegram no longer shows us that message). A draft's stop request names its topic itself.
    """
    if isinstance(source, CallbackQuery):
        message = source.message
        return chat_target(message) if isinstance(message, Message) else None
    if isinstance(source, MessageGenerationStopped):
        return ChatTarget(source.chat.id, is_private(source.chat), source.message_thread_id)
    topic = source.message_thread_id if source.is_topic_message else None
    return ChatTarget(source.chat.id, is_private(source.chat), topic, source.message_id)


def is_private(chat: Chat) -> bool:
    return chat.type == ChatType.PRIVATE
