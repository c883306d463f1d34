"""/history: the chat's stored thread."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.telegram.history import format_history
from bot.telegram.routers.common import target_of, texts_of
from bot.telegram.sending import send_parts
from bot.threads.store import ThreadStore


def router() -> Router:
    router = Router(name="history")

    @router.message(Command("history"))
    async def history(message: Message, bot: Bot, store: ThreadStore) -> None:
        target = target_of(message)
        messages = await store.history(target.key)
        await send_parts(bot, target, format_history(messages, texts_of(message)))

    return router
