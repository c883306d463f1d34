"""The knowledge base from Telegram: admins add documents by sending them, `/kb` lists, deletes, searches."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import UTC

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.assistant.knowledge import (
    Document,
    DocumentNotFound,
    DocumentStage,
    KnowledgeBase,
    KnowledgeError,
    check_document,
)
from bot.keyed_lock import KeyedLock
from bot.metrics import Metrics
from bot.telegram.filters import OnLoop
from bot.telegram.render import Rendered, split_rendered, styled
from bot.telegram.routers.common import human_size, reply, texts_of
from bot.telegram.sender import Outbox
from bot.telegram.targets import chat_target, is_private
from bot.texts import Texts, texts_for

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 2**20  # the Bot API serves bots files up to 20 MB
DELETE_PREFIX = "kb:del:"
PASSAGE_PREVIEW = 500


# Documents sent together are added one after another, in the order they arrived, per chat.
UploadQueue = KeyedLock[int]


def router() -> Router:
    router = Router(name="knowledge")

    @router.message(OnLoop(F.document))
    async def document(
        message: Message,
        bot: Bot,
        outbox: Outbox,
        knowledge: KnowledgeBase,
        uploads: UploadQueue,
        is_admin: bool,
        metrics: Metrics,
        handoff: Callable[[], None] | None = None,
    ) -> None:
        texts = texts_of(message).kb
        if not is_private(message.chat):
            return  # documents in groups are people sharing files with each other
        if not is_admin:
            await reply(outbox, message, texts.admin_only)
            return
        assert message.document is not None
        name = message.document.file_name or f"document-{message.message_id}"
        size = message.document.file_size or 0
        if handoff is not None:
            handoff()  # the upload queue keeps the order from here; questions need not wait for uploads
        async with uploads.hold(message.chat.id):
            await _add_document(message, bot, outbox, knowledge, texts_of(message), name, size, metrics)

    @router.message(Command("kb"))
    async def kb(
        message: Message, outbox: Outbox, command: CommandObject, knowledge: KnowledgeBase, is_admin: bool
    ) -> None:
        texts = texts_of(message)
        if not is_admin:
            await reply(outbox, message, texts.kb.admin_only)
            return
        words = (command.args or "").split(maxsplit=1)
        try:
            if words[:1] == ["search"]:
                await _search(message, outbox, knowledge, texts, words[1] if len(words) > 1 else "")
            else:
                text, markup = _listing(await knowledge.list_documents(), texts)
                await outbox.to(chat_target(message)).send(Rendered(text), reply=False, markup=markup)
        except KnowledgeError as error:
            await reply(outbox, message, texts.kb.error.format(error=error))

    @router.callback_query(OnLoop(F.data.startswith(DELETE_PREFIX)))
    async def delete(
        query: CallbackQuery,
        callback_answer: CallbackAnswer,
        outbox: Outbox,
        knowledge: KnowledgeBase,
        is_admin: bool,
    ) -> None:
        texts = texts_for(query.from_user.language_code)
        if not is_admin:
            callback_answer.text, callback_answer.show_alert = texts.kb.admin_only, True
            return
        file_id = (query.data or "").removeprefix(DELETE_PREFIX)
        try:
            try:
                removed = await knowledge.remove_document(file_id)
                callback_answer.text = texts.kb.deleted.format(name=removed.name)
            except DocumentNotFound:
                callback_answer.text = texts.kb.gone  # a stale button: deleted meanwhile, maybe elsewhere
            documents = await knowledge.list_documents()
        except KnowledgeError as error:
            callback_answer.text, callback_answer.show_alert = texts.kb.error.format(error=error)[:190], True
            return
        target = chat_target(query)
        if target is not None and query.message is not None:
            text, markup = _listing(documents, texts)
            await outbox.to(target).edit(query.message.message_id, Rendered(text), markup=markup)

    return router


async def _add_document(
    message: Message,
    bot: Bot,
    outbox: Outbox,
    knowledge: KnowledgeBase,
    texts: Texts,
    name: str,
    size: int,
    metrics: Metrics,
) -> None:
    """Download, upload, index — one status message kept up to date through every stage."""
    kb = texts.kb
    if size > TELEGRAM_DOWNLOAD_LIMIT:
        metrics.kb_upload("rejected")
        await reply(outbox, message, kb.too_big_for_telegram.format(name=name))
        return
    try:
        check_document(name, size or 1)
    except KnowledgeError as error:
        metrics.kb_upload("rejected")  # the upload's other results are counted by the KnowledgeBase
        await reply(
            outbox, message, kb.status_line.format(name=name, stage=kb.stages["failed"].format(error=error))
        )
        return
    sender = outbox.to(chat_target(message))
    status = await sender.send(
        Rendered(kb.status_line.format(name=name, stage=kb.stages["uploading"])), reply=False
    )

    async def show(stage: str, error: str = "") -> None:
        # The status message is a courtesy: if it cannot be updated, the upload goes on.
        if status.message_id is not None:
            text = kb.status_line.format(name=name, stage=kb.stages[stage].format(error=error))
            await sender.edit(status.message_id, Rendered(text))

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
    keyboard = InlineKeyboardBuilder()
    for number, document in enumerate(documents, start=1):
        when = document.added_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        status = document.status if not document.error else f"{document.status} ({document.error})"
        lines.append(
            kb.entry.format(
                number=number, name=document.name, size=human_size(document.size), status=status, when=when
            )
        )
        data = f"{DELETE_PREFIX}{document.file_id}"
        if len(data.encode()) <= 64:
            keyboard.button(text=kb.delete_button.format(number=number), callback_data=data)
    keyboard.adjust(3)
    text = "\n".join(lines)
    return text[:4000], keyboard.as_markup() if keyboard.export() else None


async def _search(
    message: Message, outbox: Outbox, knowledge: KnowledgeBase, texts: Texts, query: str
) -> None:
    kb = texts.kb
    if not query.strip():
        await reply(outbox, message, kb.search_usage)
        return
    passages = await knowledge.search(query)
    if not passages:
        await reply(outbox, message, kb.search_none)
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
    await outbox.to(chat_target(message)).send_parts(split_rendered(body))
