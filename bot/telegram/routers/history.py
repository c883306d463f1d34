"""/history: the chat's stored thread in pages with buttons, and `/history file` as a Markdown file."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot.target import ChatTarget
from bot.telegram.history import export_gone, read_thread, send_export, send_listing, turn_page
from bot.telegram.history_pages import HistoryExport, HistoryPage, ThreadSnapshot, wants_export
from bot.telegram.middlewares.callback_answers import answer_quietly
from bot.telegram.routers.common import texts_of
from bot.telegram.sender import Outbox
from bot.telegram.targets import chat_target
from bot.texts import Texts, texts_for
from bot.threads.store import ThreadStore


def router() -> Router:
    router = Router(name="history")

    @router.message(Command("history"))
    async def history(message: Message, command: CommandObject, outbox: Outbox, store: ThreadStore) -> None:
        target = chat_target(message)
        snapshot = await read_thread(store, target.key)
        if wants_export(command.args):
            await send_export(outbox.to(target), snapshot, texts_of(message), now=store.now())
        else:
            await send_listing(outbox.to(target), snapshot, texts_of(message))

    @router.callback_query(HistoryPage.filter())
    async def page(
        query: CallbackQuery,
        callback_data: HistoryPage,
        callback_answer: CallbackAnswer,
        outbox: Outbox,
        store: ThreadStore,
    ) -> None:
        if (press := await _read_press(query, callback_answer, store)) is None:
            return
        sender = outbox.to(press.target)
        callback_answer.text = await turn_page(
            sender, press.listing_id, press.snapshot, callback_data, press.texts
        )

    @router.callback_query(HistoryExport.filter())
    async def export(
        query: CallbackQuery,
        callback_data: HistoryExport,
        callback_answer: CallbackAnswer,
        outbox: Outbox,
        store: ThreadStore,
    ) -> None:
        if (press := await _read_press(query, callback_answer, store)) is None:
            return
        sender = outbox.to(press.target)  # the file goes where the listing is, replying to it
        if await export_gone(sender, press.listing_id, press.snapshot, callback_data, press.texts):
            callback_answer.text = press.texts.history_gone
            return
        # Answered before the upload, so the button stops spinning even if the upload waits out a
        # flood-control pause.
        callback_answer.disabled = True
        await answer_quietly(query)
        await send_export(sender, press.snapshot, press.texts, now=store.now())

    return router


@dataclass(frozen=True, slots=True)
class _Press:
    """A press of a button under a /history listing: where the listing is, and the thread now."""

    target: ChatTarget
    listing_id: int
    snapshot: ThreadSnapshot
    texts: Texts


async def _read_press(
    query: CallbackQuery, callback_answer: CallbackAnswer, store: ThreadStore
) -> _Press | None:
    texts = texts_for(query.from_user.language_code)
    target = chat_target(query)
    if target is None or query.message is None:  # too old: Telegram no longer lets us see or edit it
        callback_answer.text = texts.history_unavailable
        return None
    callback_answer.text = texts.internal_error  # what the press hears if reading or editing fails
    return _Press(target, query.message.message_id, await read_thread(store, target.key), texts)
