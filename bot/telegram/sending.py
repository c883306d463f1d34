"""Sending our own (non-streamed) messages reliably: flood-control pauses honoured, formatting fallback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import LinkPreviewOptions, ReplyParameters

from bot.telegram.render import Rendered
from bot.telegram.target import ChatTarget

log = logging.getLogger(__name__)

MAX_FLOOD_WAIT_SECONDS = 60
T = TypeVar("T")


async def patiently(call: Callable[[], Awaitable[T]]) -> T:
    """Make a one-off call, waiting out a flood-control pause as long as it is short."""
    while True:
        try:
            return await call()
        except TelegramRetryAfter as error:
            if error.retry_after > MAX_FLOOD_WAIT_SECONDS:
                raise
            await asyncio.sleep(error.retry_after)


async def send_parts(bot: Bot, target: ChatTarget, parts: list[Rendered]) -> None:
    """Send each part as its own message, in order; the first replies to the user's message."""
    for index, part in enumerate(parts):
        await _send_one(bot, target, part, target.reply_parameters() if index == 0 else None)


async def _send_one(bot: Bot, target: ChatTarget, part: Rendered, reply: ReplyParameters | None) -> None:
    entities = part.telegram_entities()
    while True:
        try:
            await patiently(
                lambda e=entities: bot.send_message(  # type: ignore[misc]
                    chat_id=target.chat_id,
                    text=part.text,
                    entities=e,
                    parse_mode=None,
                    message_thread_id=target.message_thread_id,
                    reply_parameters=reply,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
            return
        except TelegramBadRequest as error:
            if entities is None or "can't parse entities" not in error.message.lower():
                raise
            log.warning("Telegram rejected our formatting, sending plain text: %s", error.message)
            entities = None
