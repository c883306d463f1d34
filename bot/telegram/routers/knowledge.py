"""The knowledge base from Telegram: admins add documents by sending them, `/kb` lists, deletes, searches."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from datetime import UTC

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.assistant.knowledge import (
    Document,
    DocumentNotFound,
    DocumentStage,
    KnowledgeBase,
    KnowledgeError,
    check_document,
)
from bot.telegram.render import Rendered, split_rendered, styled
from bot.telegram.routers.common import reply, target_of, texts_of
from bot.telegram.sending import send_parts
from bot.telegram.texts import Texts, texts_for

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 2**20  # the Bot API serves bots files up to 20 MB
DELETE_PREFIX = "kb:del:"
PASSAGE_PREVIEW = 500


class UploadQueue:
    """Documents sent together are added one after another, in the order they arrived, per chat."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}

    def lock(self, chat_id: int) -> asyncio.Lock:
        return self._locks.setdefault(chat_id, asyncio.Lock())


def router() -> Router:
    router = Router(name="knowledge")

    @router.message(F.document)
    async def document(
        message: Message,
        bot: Bot,
        knowledge: KnowledgeBase,
        uploads: UploadQueue,
        is_admin: bool,
        handoff: Callable[[], None] | None = None,
    ) -> None:
        texts = texts_of(message).kb
        if message.chat.type != "private":
            return  # documents in groups are people sharing files with each other
        if not is_admin:
            await reply(bot, message, texts.admin_only)
            return
        assert message.document is not None
        name = message.document.file_name or f"document-{message.message_id}"
        size = message.document.file_size or 0
        if handoff is not None:
            handoff()  # the upload queue keeps the order from here; questions need not wait for uploads
        async with uploads.lock(message.chat.id):
            await _add_document(message, bot, knowledge, texts_of(message), name, size)

    @router.message(Command("kb"))
    async def kb(
        message: Message, bot: Bot, command: CommandObject, knowledge: KnowledgeBase, is_admin: bool
    ) -> None:
        texts = texts_of(message)
        if not is_admin:
            await reply(bot, message, texts.kb.admin_only)
            return
        words = (command.args or "").split(maxsplit=1)
        try:
            if words[:1] == ["search"]:
                await _search(message, bot, knowledge, texts, words[1] if len(words) > 1 else "")
            else:
                text, markup = _listing(await knowledge.list_documents(), texts)
                await bot.send_message(
                    message.chat.id,
                    text,
                    message_thread_id=target_of(message).message_thread_id,
                    reply_markup=markup,
                    parse_mode=None,
                )
        except KnowledgeError as error:
            await reply(bot, message, texts.kb.error.format(error=error))

    @router.callback_query(F.data.startswith(DELETE_PREFIX))
    async def delete(query: CallbackQuery, knowledge: KnowledgeBase, is_admin: bool) -> None:
        texts = texts_for(query.from_user.language_code)
        if not is_admin:
            await query.answer(texts.kb.admin_only, show_alert=True)
            return
        file_id = (query.data or "").removeprefix(DELETE_PREFIX)
        try:
            try:
                removed = await knowledge.remove_document(file_id)
                answer = texts.kb.deleted.format(name=removed.name)
            except DocumentNotFound:
                answer = texts.kb.gone  # a stale button: deleted meanwhile, maybe from another chat
            documents = await knowledge.list_documents()
        except KnowledgeError as error:
            await query.answer(texts.kb.error.format(error=error)[:190], show_alert=True)
            return
        await query.answer(answer)
        if isinstance(query.message, Message):
            text, markup = _listing(documents, texts)
            await query.message.edit_text(text, reply_markup=markup, parse_mode=None)

    return router


async def _add_document(
    message: Message, bot: Bot, knowledge: KnowledgeBase, texts: Texts, name: str, size: int
) -> None:
    """Download, upload, index — one status message kept up to date through every stage."""
    kb = texts.kb
    target = target_of(message)
    if size > TELEGRAM_DOWNLOAD_LIMIT:
        await reply(bot, message, kb.too_big_for_telegram.format(name=name))
        return
    try:
        check_document(name, size or 1)
    except KnowledgeError as error:
        await reply(
            bot, message, kb.status_line.format(name=name, stage=kb.stages["failed"].format(error=error))
        )
        return
    status = await bot.send_message(
        message.chat.id,
        kb.status_line.format(name=name, stage=kb.stages["uploading"]),
        reply_parameters=None,
        message_thread_id=target.message_thread_id,
        parse_mode=None,
    )

    async def show(stage: str, error: str = "") -> None:
        text = kb.status_line.format(name=name, stage=kb.stages[stage].format(error=error))
        try:
            await status.edit_text(text, parse_mode=None)
        except Exception:  # the status message is a courtesy; the upload goes on
            log.debug("could not update the upload status", exc_info=True)

    async def progress(stage: DocumentStage) -> None:
        if stage in (DocumentStage.INDEXING, DocumentStage.READY):
            await show(stage.value)

    try:
        assert message.document is not None
        buffer = io.BytesIO()
        await bot.download(message.document, destination=buffer)
        await knowledge.add_document(name, buffer.getvalue(), progress=progress)
    except KnowledgeError as error:
        await show("failed", str(error))
    except Exception as error:  # a failed download must still end the status message
        log.warning("adding %s failed", name, exc_info=True)
        await show("failed", type(error).__name__)


def _listing(documents: list[Document], texts: Texts) -> tuple[str, InlineKeyboardMarkup | None]:
    kb = texts.kb
    if not documents:
        return kb.empty, None
    lines = [kb.list_title.format(count=len(documents))]
    buttons = []
    for number, document in enumerate(documents, start=1):
        when = document.added_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        status = document.status if not document.error else f"{document.status} ({document.error})"
        lines.append(
            kb.entry.format(
                number=number, name=document.name, size=_size(document.size), status=status, when=when
            )
        )
        data = f"{DELETE_PREFIX}{document.file_id}"
        if len(data.encode()) <= 64:
            buttons.append(
                InlineKeyboardButton(text=kb.delete_button.format(number=number), callback_data=data)
            )
    rows = [buttons[index : index + 3] for index in range(0, len(buttons), 3)]
    text = "\n".join(lines)
    return text[:4000], InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def _search(message: Message, bot: Bot, knowledge: KnowledgeBase, texts: Texts, query: str) -> None:
    kb = texts.kb
    if not query.strip():
        await reply(bot, message, kb.search_usage)
        return
    passages = await knowledge.search(query)
    if not passages:
        await reply(bot, message, kb.search_none)
        return
    body = styled(kb.search_title.format(query=query), "bold")
    for number, passage in enumerate(passages, start=1):
        excerpt = (
            passage.text if len(passage.text) <= PASSAGE_PREVIEW else passage.text[:PASSAGE_PREVIEW] + "…"
        )
        body = (
            body + Rendered(f"\n\n{number}. ") + styled(f"{passage.filename} ({passage.score:.2f})", "italic")
        )
        body = body + Rendered(f"\n{excerpt}")
    await send_parts(bot, target_of(message), split_rendered(body))


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 2**20:
        return f"{size / 1024:.1f} KB"
    return f"{size / 2**20:.1f} MB"
