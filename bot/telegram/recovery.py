"""At start: answers a dead process left half-written get their end — an "interrupted" notice."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest

from bot.telegram.render import Rendered, render_markdown, split_rendered, styled
from bot.telegram.sending import send_parts
from bot.telegram.target import ChatTarget
from bot.telegram.texts import texts_for
from bot.threads.gate import TurnGate
from bot.threads.journal import AnswerJournal, AnswerRecord
from bot.threads.models import MessageStatus, ThreadMessage
from bot.threads.store import ThreadStore

log = logging.getLogger(__name__)


async def close_interrupted_answers(
    bot: Bot, journal: AnswerJournal, gate: TurnGate, store: ThreadStore
) -> int:
    """Finish every journalled answer whose process is gone (its turn lease expired); returns how many.

    An answer whose chat is still held is being streamed by a live process and is left alone.
    """
    closed = 0
    for record in await journal.all():
        if await gate.held(record.chat_key):
            continue
        try:
            await _close(bot, store, record)
        except TelegramAPIError as error:
            log.warning("could not mark the interrupted answer in chat %s: %s", record.chat_key, error)
        await journal.remove(record.chat_key)
        closed += 1
    if closed:
        log.info("marked %d answer(s) interrupted by the previous run", closed)
    return closed


async def _close(bot: Bot, store: ThreadStore, record: AnswerRecord) -> None:
    texts = texts_for(record.language)
    notice = styled(texts.interrupted_notice, "italic")
    body = render_markdown(record.text) if record.text.strip() else Rendered("")
    parts = split_rendered(body + Rendered("\n\n") + notice if body.text else notice)
    target = ChatTarget(record.chat_id, record.chat_id > 0, record.message_thread_id)
    for index, part in enumerate(parts):
        if index < len(record.message_ids):
            try:
                await bot.edit_message_text(
                    chat_id=record.chat_id,
                    message_id=record.message_ids[index],
                    text=part.text,
                    entities=part.telegram_entities(),
                    parse_mode=None,
                )
                continue
            except TelegramBadRequest as error:
                if "not modified" in error.message:
                    continue
                log.info("interrupted answer message %s: %s", record.message_ids[index], error.message)
        await send_parts(bot, target, [part])
    if record.text.strip():
        partial = ThreadMessage("assistant", record.text, store.now(), MessageStatus.INCOMPLETE)
        await store.append(record.chat_key, record.thread_id, partial)
