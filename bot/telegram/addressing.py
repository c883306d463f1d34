"""Whether a message is meant for the bot, and the question in it.

In private chats every message is. In groups the bot answers only when mentioned (a `mention` of its
@username or a `text_mention` of it) or replied to — with privacy mode on that is also all Telegram
delivers — so it never butts into a conversation between people.
"""

from __future__ import annotations

from aiogram.types import Message, MessageEntity, User
from aiogram.utils.text_decorations import add_surrogates, remove_surrogates

from bot.telegram.targets import is_private


def replies_to(message: Message, me: User) -> bool:
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != me.id:
        return False
    # In forum topics every message "replies" to the topic's first message; that is not addressing us.
    return replied.forum_topic_created is None


def question_for(message: Message, me: User) -> str | None:
    """The text to answer with our mentions removed, or None when the message is not for the bot."""
    return _addressed(message, me, message.text or "", message.entities)


def caption_question(message: Message, me: User) -> str | None:
    """The same for a voice note, audio or photo: its caption ("" without one), or None when the
    message is not for the bot (in groups: neither a reply to it nor a caption mentioning it)."""
    return _addressed(message, me, message.caption or "", message.caption_entities)


def _addressed(message: Message, me: User, text: str, entities: list[MessageEntity] | None) -> str | None:
    if is_private(message.chat):
        return text
    mine = [entity for entity in entities or () if _mentions_me(entity, text, me)]
    if not mine and not replies_to(message, me):
        return None
    encoded = add_surrogates(text)  # entity offsets count UTF-16 units
    for entity in sorted(mine, key=lambda item: item.offset, reverse=True):
        encoded = encoded[: entity.offset * 2] + encoded[(entity.offset + entity.length) * 2 :]
    return remove_surrogates(encoded).strip()


def author_name(message: Message) -> str | None:
    """How a group's message author is named to the model (None in private chats)."""
    if is_private(message.chat):
        return None
    if message.from_user is None:
        return message.chat.title or "Someone"
    return message.from_user.full_name or message.from_user.username or str(message.from_user.id)


def _mentions_me(entity: MessageEntity, text: str, me: User) -> bool:
    if entity.type == "text_mention":
        return entity.user is not None and entity.user.id == me.id
    if entity.type == "mention" and me.username:
        return entity.extract_from(text).lower() == f"@{me.username.lower()}"
    return False
