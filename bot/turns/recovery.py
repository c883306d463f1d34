"""Answers a dead process left half-written get their end: the text so far, with an "interrupted" notice."""

from __future__ import annotations

import logging

from bot.log_context import ChatRef
from bot.target import ChatTarget
from bot.texts import texts_for
from bot.threads.gate import TurnGate
from bot.threads.journal import AnswerJournal, AnswerRecord
from bot.threads.store import ThreadStore
from bot.turns.streaming import StreamerFactory

log = logging.getLogger(__name__)


async def close_interrupted_answers(
    journal: AnswerJournal, gate: TurnGate, store: ThreadStore, streamers: StreamerFactory
) -> int:
    """Finish every journalled answer whose process is gone (its turn lease expired); returns how many.

    An answer whose chat is still held is being streamed by a live process and is left alone.
    """
    closed = 0
    for record in await journal.all():
        if await gate.held(record.chat_key):
            continue
        try:
            await _close(record, store, streamers)
        except Exception:  # one chat's trouble must not keep the others frozen, or the bot from starting
            log.warning(
                "could not mark the interrupted answer in %s", ChatRef(record.chat_key), exc_info=True
            )
        await journal.remove(record.chat_key)
        closed += 1
    if closed:
        log.info("marked %d answer(s) interrupted by the previous run", closed)
    return closed


async def _close(record: AnswerRecord, store: ThreadStore, streamers: StreamerFactory) -> None:
    target = ChatTarget(record.chat_id, record.is_private, record.topic_id)
    streamer = streamers(target, texts_for(record.language), message_ids=record.message_ids)
    outcome = await streamer.close_interrupted(record.text)
    answer = outcome.thread_message(store.now())
    if answer is not None:
        await store.append(record.chat_key, record.thread_id, answer)
