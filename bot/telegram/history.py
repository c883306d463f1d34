"""/history in Telegram: the listing with its buttons, page turns, and the Markdown export as a file."""

from __future__ import annotations

from aiogram.types import BufferedInputFile

from bot.telegram.history_pages import (
    HistoryExport,
    HistoryPage,
    ThreadSnapshot,
    build_book,
    export_file_name,
    export_markdown,
)
from bot.telegram.render import Rendered
from bot.telegram.sender import Sender
from bot.texts import Texts
from bot.threads.store import ThreadStore


async def read_thread(store: ThreadStore, chat_key: str) -> ThreadSnapshot:
    thread_id = await store.thread_id(chat_key)
    messages = [] if thread_id is None else await store.messages(thread_id)
    return ThreadSnapshot(thread_id, messages)


async def send_listing(sender: Sender, snapshot: ThreadSnapshot, texts: Texts) -> None:
    """Answer /history: the latest page with its buttons, or the empty-thread text."""
    book = build_book(snapshot.thread_id or "", snapshot.messages, texts)
    if book is None:
        await sender.send_parts([Rendered(texts.history_empty)])
    else:
        await sender.send_parts([book.pages[book.last]], markup=book.keyboard(book.last))


async def send_export(sender: Sender, snapshot: ThreadSnapshot, texts: Texts, *, now: float) -> None:
    """Send the whole thread as `conversation-YYYYMMDD-HHMM.md`, or the empty-thread text."""
    if not snapshot.messages:
        await sender.send_parts([Rendered(texts.history_empty)])
        return
    content = export_markdown(snapshot.messages, texts, exported_at=now).encode()
    await sender.send_document(
        BufferedInputFile(content, filename=export_file_name(now)), caption=texts.history_file_caption
    )


async def turn_page(
    sender: Sender, listing_id: int, snapshot: ThreadSnapshot, button: HistoryPage, texts: Texts
) -> str | None:
    """Show the pressed page in the listing message; returns the text to answer the button press with.

    A button made for another thread (the chat was reset, or its thread expired) must not show the
    current thread in its place: the listing is replaced by a note that that conversation is gone.
    """
    book = build_book(snapshot.thread_id or "", snapshot.messages, texts)
    if book is None or not snapshot.is_current(button.thread):
        await sender.edit(listing_id, Rendered(texts.history_gone))
        return texts.history_gone
    page = book.clamp(button.page)
    if not (await sender.edit(listing_id, book.pages[page], markup=book.keyboard(page))).shown:
        return texts.history_unavailable
    return None


async def export_gone(
    sender: Sender, listing_id: int, snapshot: ThreadSnapshot, button: HistoryExport, texts: Texts
) -> bool:
    """The export button of a listing whose thread is gone: say so in the listing; True when it is gone."""
    if snapshot.messages and snapshot.is_current(button.thread):
        return False
    await sender.edit(listing_id, Rendered(texts.history_gone))
    return True
