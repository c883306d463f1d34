"""/start and /help, and the last-resort error handler."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import ErrorEvent, Message

from bot.telegram.routers.common import reply, texts_of
from bot.telegram.sender import Outbox

log = logging.getLogger(__name__)


def router() -> Router:
    router = Router(name="basics")

    @router.message(CommandStart())
    async def start(message: Message, outbox: Outbox) -> None:
        await reply(outbox, message, texts_of(message).start)

    @router.message(Command("help"))
    async def help_(message: Message, outbox: Outbox) -> None:
        await reply(outbox, message, texts_of(message).help)

    @router.errors()
    async def on_error(event: ErrorEvent, outbox: Outbox) -> bool:
        log.error("handler failed on update %s", event.update.update_id, exc_info=event.exception)
        message = event.update.message
        if message is not None:
            try:
                await reply(outbox, message, texts_of(message).internal_error)
            except Exception:  # the chat may be unreachable; the error is already logged
                log.debug("could not tell the user about the error", exc_info=True)
        return True

    return router
