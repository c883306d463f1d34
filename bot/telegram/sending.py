"""Sending our own (non-streamed) messages reliably: flood-control pauses honoured, formatting fallback."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import LinkPreviewOptions, ReplyParameters

from bot.telegram.render import Rendered
from bot.telegram.target import ChatTarget

log = logging.getLogger(__name__)

MAX_FLOOD_WAIT_SECONDS = 60


async def send_parts(bot: Bot, target: ChatTarget, parts: list[Rendered]) -> None:
    """Send each part as its own message, in order; the first replies to the user's message."""
    for index, part in enumerate(parts):
        reply = None
        if index == 0 and target.reply_to_message_id is not None:
            reply = ReplyParameters(message_id=target.reply_to_message_id, allow_sending_without_reply=True)
        await _send_one(bot, target, part, reply)


async def _send_one(bot: Bot, target: ChatTarget, part: Rendered, reply: ReplyParameters | None) -> None:
    entities = part.telegram_entities()
    while True:
        try:
            await bot.send_message(
                chat_id=target.chat_id,
                text=part.text,
                entities=entities,
                parse_mode=None,
                message_thread_id=target.message_thread_id,
                reply_parameters=reply,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
            return
        except TelegramRetryAfter as error:
            if error.retry_after > MAX_FLOOD_WAIT_SECONDS:
                raise
            await asyncio.sleep(error.retry_after)
        except TelegramBadRequest as error:
            if entities is None or "can't parse entities" not in error.message.lower():
                raise
            log.warning("Telegram rejected our formatting, sending plain text: %s", error.message)
            entities = None
