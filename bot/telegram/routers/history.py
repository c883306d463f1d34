"""/history: the chat's stored thread in pages with buttons, and `/history file` as a Markdown file."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.telegram.history import (
    HistoryExport,
    HistoryPage,
    export_from_button,
    read_thread,
    send_export,
    send_listing,
    turn_page,
    wants_export,
)
from bot.telegram.routers.common import target_of, texts_of
from bot.telegram.texts import texts_for
from bot.threads.store import ThreadStore

log = logging.getLogger(__name__)


async def _answer(query: CallbackQuery, text: str | None) -> None:
    # A press answered too late (the query expired) needs no answer any more; the rest was done.
    try:
        await query.answer(text)
    except TelegramBadRequest as error:
        log.debug("callback query not answered: %s", error.message)


def router() -> Router:
    router = Router(name="history")

    @router.message(Command("history"))
    async def history(message: Message, command: CommandObject, bot: Bot, store: ThreadStore) -> None:
        target = target_of(message)
        snapshot = await read_thread(store, target.key)
        if wants_export(command.args):
            await send_export(bot, target, snapshot, texts_of(message), now=store.now())
        else:
            await send_listing(bot, target, snapshot, texts_of(message))

    @router.callback_query(HistoryPage.filter())
    async def page(query: CallbackQuery, callback_data: HistoryPage, bot: Bot, store: ThreadStore) -> None:
        texts = texts_for(query.from_user.language_code)
        message = query.message
        if not isinstance(message, Message):  # too old: Telegram no longer lets us see or edit it
            await _answer(query, texts.history_unavailable)
            return
        answer: str | None = texts.internal_error  # what the press hears if reading or editing fails
        try:
            snapshot = await read_thread(store, target_of(message).key)
            answer = await turn_page(bot, message, snapshot, callback_data, texts)
        finally:
            await _answer(query, answer)

    @router.callback_query(HistoryExport.filter())
    async def export(
        query: CallbackQuery, callback_data: HistoryExport, bot: Bot, store: ThreadStore
    ) -> None:
        texts = texts_for(query.from_user.language_code)
        message = query.message
        if not isinstance(message, Message):
            await _answer(query, texts.history_unavailable)
            return
        answered = False

        async def acknowledge(text: str | None) -> None:
            nonlocal answered
            answered = True
            await _answer(query, text)

        try:
            target = target_of(message)
            snapshot = await read_thread(store, target.key)
            await export_from_button(
                bot, message, target, snapshot, callback_data, texts, now=store.now(), acknowledge=acknowledge
            )
        finally:
            if not answered:
                await _answer(query, texts.internal_error)

    return router
