"""Answering questions: one turn at a time per chat, in order, the finished turns before as context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.assistant.client import Assistant, RequestOptions
from bot.assistant.events import AnswerEvent
from bot.clock import Clock
from bot.log_context import ChatRef, turn
from bot.metrics import Metrics, outcome_label
from bot.outage import OutageLog
from bot.target import ChatTarget
from bot.texts import Texts
from bot.threads.gate import TurnGate
from bot.threads.journal import AnswerJournal, AnswerRecord
from bot.threads.limits import UsageLimits
from bot.threads.models import ThreadMessage, context_window
from bot.threads.signals import StopSignals
from bot.threads.store import ThreadStore
from bot.threads.usage import FinishedTurn, UsageStats
from bot.turns.generation import Generations
from bot.turns.streaming import Notifier, ProgressCallback, Streamer, StreamerFactory, StreamOutcome

log = logging.getLogger(__name__)

ToolsProvider = Callable[[], Awaitable[Sequence[dict[str, Any]]]]
# The chat's own model, instructions and temperature, read afresh for every answer (chat key → options).
OptionsProvider = Callable[[str], Awaitable[RequestOptions]]
# After the grace period: time for the interrupted answers to show their notice.
INTERRUPT_WAIT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Question:
    """A user's message to answer."""

    target: ChatTarget
    prompt: str  # what the user wrote (several messages of a burst, joined)
    texts: Texts
    user_id: int | None = None
    author: str | None = None  # named to the model in group threads, where several people talk
    retry: bool = False  # answer the thread's last question again, in place of its answer (no prompt)
    messages: int = 1  # how many of the user's messages this is (a burst joins several)
    # Its place in the line for a generation slot, in seconds: Telegram's order for a message (its date,
    # the update_id within that second), else the wall-clock time it reached the bot.
    arrived_at: float | None = None
    via: str | None = None  # "voice" (the prompt is a transcript) or "photo", kept with the thread's copy
    stored: str | None = None  # what the thread keeps instead of the prompt (a photo's caption + marker)
    image_url: str | None = None  # a photo as a data URL, sent with the prompt (never stored)
    model: str | None = None  # a model URI for this question alone (photos go to the vision model)

    @property
    def alone(self) -> bool:
        """Answered on its own, never joined into a burst (a photo would lose its picture there)."""
        return self.retry or self.image_url is not None


@dataclass(slots=True)
class _Burst:
    """Messages a user sent in quick succession while nothing was running: answered as one turn."""

    first: Question
    prompts: list[str] = field(default_factory=list)
    last_at: float = 0.0


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    history_max_messages: int
    history_max_chars: int
    burst_seconds: float = 0.0
    queue_notice_seconds: float = 5.0


class TurnRunner:
    """Answers each chat's questions one at a time, in order, with the finished turns before as context.

    A burst of messages while the chat is idle becomes one turn; a message waiting behind a long answer
    is told so after a few seconds; `stop()` reaches the answer in whichever process streams it; at
    shutdown `interrupt_all()` ends running answers with a notice. While an answer streams, a record in
    the journal lets the next start close it off if this process dies.
    """

    def __init__(
        self,
        *,
        store: ThreadStore,
        gate: TurnGate,
        signals: StopSignals,
        journal: AnswerJournal,
        limits: UsageLimits,
        assistant: Assistant,
        streamer_factory: StreamerFactory,
        notify: Notifier,
        policy: TurnPolicy,
        clock: Clock,
        tools: ToolsProvider | None = None,
        options: OptionsProvider | None = None,
        stats: UsageStats | None = None,
        generations: Generations | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._gate = gate
        self._signals = signals
        self._journal = journal
        self._limits = limits
        self._assistant = assistant
        self._streamer_factory = streamer_factory
        self._notify = notify
        self._policy = policy
        self._clock = clock
        self._tools = tools
        self._options = options
        self._stats = stats
        # None: every answer streams at once (no folder quota to keep, e.g. a unit test).
        self._generations = generations
        self._metrics = metrics or Metrics()
        self._running: set[asyncio.Task[object]] = set()
        self._streaming: dict[str, Streamer] = {}
        self._bursts: dict[str, _Burst] = {}
        self._records: dict[str, AnswerRecord] = {}
        # Answers another process closed off while this one still streamed them (this process's
        # heartbeat had lapsed, e.g. Redis stalled): ended here too, and saved only by the other.
        self._taken_over: set[str] = set()
        self._journal_outage = OutageLog(log, "the answer journal in Redis")
        self._closing = False  # shutting down: questions still queued are not started any more
        self._in_turn: set[asyncio.Task[object]] = set()  # past the queue: cancelling them is an interruption
        self._detached: set[asyncio.Task[None]] = set()  # answers `start()`ed, until their `after` is done

    @property
    def running(self) -> set[asyncio.Task[Any]]:
        """Tasks answering or waiting to answer (the app waits for them at shutdown)."""
        return set(self._running) | self._detached

    def stop_local(self, chat_key: str, *, interrupted: bool = False) -> bool:
        """Stop the answer this process is streaming in the chat; False when there is none here."""
        streamer = self._streaming.get(chat_key)
        if streamer is None:
            return False
        streamer.stop(interrupted=interrupted)
        return True

    async def stop(self, chat_key: str) -> bool:
        """Stop the chat's running answer, in whichever process streams it; False when none is running."""
        if self.stop_local(chat_key):
            return True
        if await self._gate.held(chat_key):
            await self._signals.publish(chat_key)
            return True
        return False

    def interrupt_all(self) -> int:
        """Shutdown: end every streaming answer now, marked as interrupted; returns how many."""
        self._closing = True
        for streamer in self._streaming.values():
            streamer.stop(interrupted=True)
        return len(self._streaming)

    async def drain(self, grace: float, *, also: set[asyncio.Task[Any]] | None = None) -> None:
        """Shutdown: let running answers (and the tasks in `also`) finish for `grace` seconds, then end
        them with an "interrupted" notice; questions still queued are asked to be sent again."""
        # A question still waiting for a generation slot would rarely finish within the grace: told at
        # once to send it again, like a queued one, and no new generation starts.
        if self._generations is not None and (told := self._generations.drain()):
            log.info("%d question(s) waiting for a generation slot told to send again", told)
        running = self.running | (also or set())
        if not running:
            return
        log.info("waiting up to %.0f s for %d running answer(s)", grace, len(running))
        _, pending = await asyncio.wait(running, timeout=grace)
        if not pending:
            return
        log.info("interrupting %d answer(s)", self.interrupt_all())
        _, pending = await asyncio.wait(pending, timeout=INTERRUPT_WAIT_SECONDS)
        for task in pending:  # queued behind an answer, or stuck: nothing more can be done
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def start(
        self,
        question: Question,
        *,
        on_queued: Callable[[], None] | None = None,
        after: Callable[[StreamOutcome], Awaitable[None]] | None = None,
    ) -> None:
        """Answer the question in a task of its own; return once it holds its place in the chat's order.

        The handler that received the message returns then, while the answer streams, so the update, its
        models and aiogram's handler chain are freed rather than held for the whole answer (about a
        quarter of what each concurrent answer held; docs/performance.md, "Memory per concurrent
        answer"). `after` runs once the answer was complete and shown in full (a spoken copy). What fails
        before the question has its place is raised here, as if answered here; a later failure is
        logged, and the user told in plain words.
        """
        placed = asyncio.Event()

        def hold_place() -> None:
            placed.set()
            if on_queued is not None:
                on_queued()

        if self._generations is not None:
            self._generations.keep(question.target.key, question.arrived_at)
        task = asyncio.create_task(self._answer_detached(question, hold_place, after, placed))
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        waiting = asyncio.create_task(placed.wait())
        try:
            await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if task.done() and not placed.is_set():
            task.result()  # what failed before the question had its place

    async def _answer_detached(
        self,
        question: Question,
        on_queued: Callable[[], None],
        after: Callable[[StreamOutcome], Awaitable[None]] | None,
        placed: asyncio.Event,
    ) -> None:
        key = question.target.key
        try:
            outcome = await self.answer(question, on_queued)
            if after is not None and outcome is not None and outcome.complete and outcome.delivered:
                await after(outcome)
        except Exception:
            if not placed.is_set():
                raise  # start() raises it in the handler, whose error handler tells the user
            log.exception("answer in %s failed", ChatRef(key))
            with contextlib.suppress(Exception):  # the chat may be unreachable; the error is logged
                await asyncio.wait_for(self._notify(question.target, question.texts.internal_error), 10)
        finally:
            if self._generations is not None:
                self._generations.withdraw(key, question.arrived_at, kept=True)

    async def answer(
        self, question: Question, on_queued: Callable[[], None] | None = None
    ) -> StreamOutcome | None:
        """Answer the question; None when it joined a burst that another call answers.

        `on_queued` is called, without awaiting anything after it, once the question holds its place in
        the chat's order (in a burst or in the turn queue): the next message of the chat may go on then.
        """
        with turn(question.target.key):
            return await self._answer(question, on_queued)

    async def _answer(self, question: Question, on_queued: Callable[[], None] | None) -> StreamOutcome | None:
        queued = on_queued or (lambda: None)
        key = question.target.key
        burst = None if question.alone else self._bursts.get(key)
        if burst is not None:
            burst.prompts.append(question.prompt)
            burst.last_at = self._clock.now()
            queued()
            return None
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        taken_at = self._clock.now()  # the user's wait counts from here (bursts, the turn, the quota)
        streamer = self._streamer_factory(
            question.target, question.texts, on_progress=self._progress_recorder(key)
        )
        streamer.show_typing()  # the first sign of life, before any waiting
        try:
            if self._policy.burst_seconds > 0 and not question.alone and not self._gate.busy(key):
                question = await self._collect_burst(question, queued)
            return await self._take_turn(question, streamer, queued, taken_at)
        except asyncio.CancelledError:
            if task not in self._in_turn:
                # Cancelled while still waiting (shutdown): say so rather than leave the message unanswered.
                await self._tell_unanswered(question)
            raise
        finally:
            streamer.close()
            self._running.discard(task)
            self._in_turn.discard(task)

    async def _collect_burst(self, question: Question, queued: Callable[[], None]) -> Question:
        key = question.target.key
        burst = _Burst(question, [question.prompt], self._clock.now())
        self._bursts[key] = burst
        queued()
        try:
            while (left := burst.last_at + self._policy.burst_seconds - self._clock.now()) > 0:
                await self._clock.sleep(left)
        finally:
            del self._bursts[key]
        return replace(question, prompt="\n".join(burst.prompts), messages=len(burst.prompts))

    async def _take_turn(
        self, question: Question, streamer: Streamer, queued: Callable[[], None], taken_at: float
    ) -> StreamOutcome:
        key = question.target.key
        notice = None
        if self._gate.busy(key) and self._policy.queue_notice_seconds > 0:
            notice = asyncio.create_task(self._tell_queued(question))
        if self._generations is not None and self._gate.busy(key):
            # It waits behind its chat's answer: later arrivals of other chats must not wait for it.
            self._generations.withdraw(key, question.arrived_at, kept=True)
        try:
            # The gate registers this turn before its first await, so the next message may go on now.
            queued()
            async with self._gate.turn(key):
                if notice is not None:
                    notice.cancel()
                if self._closing or (self._generations is not None and self._generations.draining):
                    await self._tell_unanswered(question)
                    return StreamOutcome()
                self._streaming[key] = streamer
                if (current := asyncio.current_task()) is not None:
                    self._in_turn.add(current)
                try:
                    return await self._answer_in_turn(question, streamer, taken_at)
                finally:
                    del self._streaming[key]
                    await self._journal.remove(key)
        finally:
            if notice is not None:
                notice.cancel()

    async def _tell_unanswered(self, question: Question) -> None:
        with contextlib.suppress(Exception):  # shutting down: the chat may be unreachable, the bot closing
            await asyncio.wait_for(self._notify(question.target, question.texts.unanswered), 5)

    async def _tell_queued(self, question: Question) -> None:
        await self._clock.sleep(self._policy.queue_notice_seconds)
        with contextlib.suppress(Exception):  # a courtesy; the answer itself still comes
            await self._notify(question.target, question.texts.queued)

    def _progress_recorder(self, key: str) -> ProgressCallback:
        async def record(message_ids: list[int], text: str) -> None:
            current = self._records.get(key)
            if current is not None:
                current.message_ids, current.text = message_ids, text
                try:
                    written = await self._journal.write(current)
                except Exception as error:  # the journal is a safety net: a Redis outage must not end
                    self._journal_outage.failed(error)  # the answer, nor log every frame's traceback
                    return
                self._journal_outage.ok()
                if not written and key not in self._taken_over:
                    log.warning(
                        "the answer in %s was closed by another process; ending it here", ChatRef(key)
                    )
                    self._taken_over.add(key)
                    self.stop_local(key, interrupted=True)

        return record

    async def _answer_in_turn(self, question: Question, streamer: Streamer, taken_at: float) -> StreamOutcome:
        target, key = question.target, question.target.key
        self._metrics.question_taken()
        thread_id = await self._store.current_thread(key)
        if question.retry:
            messages = _through_last_question(await self._store.messages(thread_id))
            if not messages:
                await self._notify(target, question.texts.retry_nothing)
                return StreamOutcome()
        else:
            user_message = ThreadMessage(
                "user",
                question.stored or question.prompt,
                self._store.now(),
                author=question.author,
                via=question.via,
            )
            await self._store.append(key, thread_id, user_message)
            messages = await self._store.messages(thread_id)
        window = context_window(
            messages,
            max_messages=self._policy.history_max_messages,
            max_chars=self._policy.history_max_chars,
        )
        if len(window) < len(messages) and await self._store.mark_trimmed(thread_id):
            streamer.add_note(question.texts.context_trimmed)
        record = AnswerRecord(
            key, target.chat_id, target.is_private, target.topic_id, thread_id, question.texts.language
        )
        self._records[key] = record
        self._taken_over.discard(key)
        try:
            await self._journal.begin(record)
            tools = await self._tools() if self._tools is not None else ()
            options = await self._options(key) if self._options is not None else None
            input_items: list[dict[str, Any]] = [message.model_input() for message in window]
            if question.image_url is not None and not question.retry:
                input_items[-1] = _with_image(window[-1], question.prompt, question.image_url)
            if question.model is not None:
                options = replace(options or RequestOptions(), model=question.model)

            def open_stream() -> AsyncIterator[AnswerEvent]:
                return self._assistant.stream(input_items, tools=tools, options=options)

            events = (
                open_stream()
                if self._generations is None
                else self._generations.events(key, streamer, open_stream, arrived_at=question.arrived_at)
            )
            outcome = await streamer.run(events)
        finally:
            del self._records[key]
        failure = outcome.failure.kind.value if outcome.failure is not None else None
        label = outcome_label(stopped=outcome.stopped, interrupted=outcome.interrupted, failure=failure)
        duration = self._clock.now() - taken_at
        self._metrics.answer_finished(label, duration)
        log.info("answer in %s: %s after %.1f s", ChatRef(key), label, duration)
        if key in self._taken_over:
            self._taken_over.discard(key)
            return outcome  # shown and saved by the process that took it over
        if outcome.failure is not None:
            log.warning("answer in %s failed: %s", ChatRef(key), outcome.failure.detail)
        if not outcome.delivered:
            log.warning("answer in %s could not be shown in full (chat unreachable or refused)", ChatRef(key))
        answer = outcome.thread_message(self._store.now())
        saved = answer is None or await self._save(question, thread_id, answer)
        if not saved:
            log.info("%s started a new thread during the answer; not saving it", ChatRef(key))
        await self._count(question, outcome)
        if saved:
            await streamer.saved(last=not self._gate.queued(key))
        return outcome

    async def _save(self, question: Question, thread_id: str, answer: ThreadMessage) -> bool:
        key = question.target.key
        if question.retry:
            return await self._store.replace_last_answer(key, thread_id, answer)
        return await self._store.append(key, thread_id, answer)

    async def _count(self, question: Question, outcome: StreamOutcome) -> None:
        """The user's questions and tokens (limits, /usage) and the bot's daily statistics (/stats)."""
        tokens = (outcome.finish.total_tokens if outcome.finish is not None else None) or 0
        if question.user_id is not None:
            await self._limits.spend_tokens(question.user_id, tokens)
            await self._limits.count_questions(question.user_id, question.messages)
        if self._stats is not None:
            failure = outcome.failure.kind.value if outcome.failure is not None else None
            await self._stats.record(
                FinishedTurn(question.target.key, question.user_id, tokens, failure, outcome.stopped)
            )


def _with_image(message: ThreadMessage, prompt: str, image_url: str) -> dict[str, Any]:
    """The question as one user message of two parts: its text, then the picture it is about."""
    text = f"{message.author}: {prompt}" if message.author else prompt
    return {
        "role": "user",
        "content": [
            {"type": "input_text", "text": text},
            {"type": "input_image", "image_url": image_url},
        ],
    }


def _through_last_question(messages: list[ThreadMessage]) -> list[ThreadMessage]:
    """The thread up to and including its last question (what /retry answers again); [] without one."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[: index + 1]
    return []
