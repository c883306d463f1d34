"""The console chat's implementation of the turn logic's `Streamer`: answers shown on a `Screen`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from bot.assistant.events import AnswerEvent, TextDelta, ToolActivity
from bot.console.screen import Screen
from bot.target import ChatTarget
from bot.texts import Texts
from bot.threads.journal import AnswerJournal, AnswerRecord, OwnedRecord
from bot.turns.streaming import ProgressCallback, StreamOutcome, closing_notice, consume_until_stopped


class ConsoleStreamer:
    """One answer on the terminal. `stop()` (/stop, Ctrl-C) closes the model stream at once and keeps
    what was written, marked stopped, as in Telegram."""

    def __init__(self, screen: Screen, texts: Texts) -> None:
        self._screen = screen
        self._texts = texts
        self._outcome = StreamOutcome()
        self._notes: list[str] = []
        self._stop = asyncio.Event()

    def show_typing(self) -> None:
        """Nothing to do before the turn: the screen shows "thinking…" once the answer starts."""

    def add_note(self, note: str) -> None:
        self._notes.append(note)

    def show_waiting(self, position: int | None) -> None:
        """The question waits for a generation slot: its place in line (or a free slot) as the status."""
        if not self._outcome.text:
            texts = self._texts
            status = (
                texts.waiting_slot if position is None else texts.waiting_position.format(position=position)
            )
            self._screen.answer_status(status)

    def stop(self, *, interrupted: bool = False) -> None:
        self._outcome.interrupted = self._outcome.interrupted or interrupted
        self._stop.set()

    def close(self) -> None:
        """Nothing was started by `show_typing`."""

    async def run(self, events: AsyncIterator[AnswerEvent]) -> StreamOutcome:
        self._screen.answer_started(self._texts.console.thinking)
        consumer = asyncio.create_task(self._consume(events))
        try:
            if await consume_until_stopped(consumer, self._stop):
                self._outcome.stopped = True
        finally:
            consumer.cancel()
            self._finish()
        self._outcome.delivered = True
        return self._outcome

    async def saved(self, *, last: bool) -> None:
        """Nothing to add: the terminal has no buttons."""

    async def close_interrupted(self, text: str) -> StreamOutcome:
        outcome = self._outcome
        outcome.text, outcome.stopped, outcome.interrupted = text, True, True
        self._finish()
        outcome.delivered = True
        return outcome

    async def _consume(self, events: AsyncIterator[AnswerEvent]) -> None:
        async for event in events:
            if isinstance(event, ToolActivity):
                if not self._outcome.text:
                    self._screen.answer_status(self._texts.tool_status[event.tool])
                continue
            self._outcome.add(event)
            if isinstance(event, TextDelta):
                self._screen.answer_text(self._outcome.text)

    def _finish(self) -> None:
        outcome = self._outcome
        notice = closing_notice(outcome, self._texts)
        if not outcome.text.strip() and not notice:
            notice = self._texts.empty_answer
        notes = [*self._notes, notice]
        self._screen.answer_finished(outcome.text, notes, outcome.citations, self._texts)


class ConsoleStreamers:
    """The `StreamerFactory` of the console chat."""

    def __init__(self, screen: Screen) -> None:
        self._screen = screen

    def __call__(
        self,
        target: ChatTarget,
        texts: Texts,
        *,
        on_progress: ProgressCallback | None = None,
        message_ids: Sequence[int] = (),
    ) -> ConsoleStreamer:
        return ConsoleStreamer(self._screen, texts)


class NoJournal(AnswerJournal):
    """The console journals nothing: an answer cut short with this process was only ever on this
    terminal, and the bot's crash recovery must never try to finish it in a Telegram chat."""

    def __init__(self) -> None:  # no Redis: nothing is written
        pass

    async def begin(self, record: AnswerRecord) -> None:
        return None

    async def write(self, record: AnswerRecord) -> bool:
        return True

    async def remove(self, chat_key: str) -> None:
        return None

    async def all(self) -> list[AnswerRecord]:
        return []

    async def owned(self) -> list[OwnedRecord]:
        return []
