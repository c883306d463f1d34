"""What the turn logic needs from whatever shows an answer while it is written (Telegram, a terminal)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.assistant.events import AnswerEvent, Citation, Failed, Finished, TextDelta
from bot.target import ChatTarget
from bot.texts import Texts
from bot.threads.models import MessageStatus, ThreadMessage

# Called with the ids of the messages showing the answer and its text so far, after each shown frame.
ProgressCallback = Callable[[list[int], str], Awaitable[None]]


@dataclass(slots=True)
class StreamOutcome:
    """What the model said and how the answer ended."""

    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    finish: Finished | None = None
    failure: Failed | None = None
    stopped: bool = False
    interrupted: bool = False  # stopped by a shutdown (or a crash) rather than by the user
    delivered: bool = False

    def add(self, event: AnswerEvent) -> None:
        """Take in one of the model's events (tool activity is for the display alone)."""
        if isinstance(event, TextDelta):
            self.text += event.text
        elif isinstance(event, Citation):
            if event not in self.citations:
                self.citations.append(event)
        elif isinstance(event, Finished):
            self.finish = event
        elif isinstance(event, Failed):
            self.failure = event

    @property
    def complete(self) -> bool:
        return self.finish is not None and self.failure is None and not self.stopped

    def thread_message(self, time: float) -> ThreadMessage | None:
        """The answer as the thread keeps it; None when nothing was written."""
        if not self.text.strip():
            return None
        status = MessageStatus.COMPLETE if self.complete else MessageStatus.INCOMPLETE
        return ThreadMessage("assistant", self.text, time, status, tuple(c.title for c in self.citations))


def closing_notice(outcome: StreamOutcome, texts: Texts) -> str:
    """The line under an answer that says how it ended ("" for a complete one)."""
    if outcome.stopped:
        if not outcome.interrupted:
            return texts.stopped_notice
        # Nothing written yet (still waiting for the model): like a queued question, send it again.
        return texts.interrupted_notice if outcome.text.strip() else texts.unanswered
    if outcome.failure is not None:
        if outcome.text.strip():
            return texts.failure_mid_stream
        return texts.failure_before_text[outcome.failure.kind]
    if outcome.finish is not None:
        return texts.finish_notice[outcome.finish.reason]
    return ""


class Streamer(Protocol):
    """Shows one answer in one chat while the model writes it."""

    def show_typing(self) -> None:
        """Show that an answer is coming (before the turn even begins)."""

    def add_note(self, note: str) -> None:
        """A line to show under the finished answer."""

    def show_waiting(self, position: int | None) -> None:
        """The question waits for the model: `position` in the line for a generation slot (1 = next), or
        None when the service itself is busy and the answer waits for a free slot. Called whenever that
        changes; the streamer shows it no more often than every few seconds, within the chat's pacing,
        until the answer's first text replaces it. A stop or a shutdown meanwhile leaves the line."""

    def stop(self, *, interrupted: bool = False) -> None:
        """End the answer now, keeping what was written; `interrupted` marks a shutdown, not the user."""

    def close(self) -> None:
        """Release what `show_typing` started; called once the turn is over, however it ended."""

    async def run(self, events: AsyncIterator[AnswerEvent]) -> StreamOutcome:
        """Show the answer as `events` bring it; returns when it is shown in full (or cannot be)."""
        ...

    async def saved(self, *, last: bool) -> None:
        """The turn `run` showed is saved in the thread: a last touch (Telegram's ↻ button goes under
        it when it is the `last` answer, i.e. no newer question of the chat waits here already)."""
        ...

    async def close_interrupted(self, text: str) -> StreamOutcome:
        """Finish an answer a dead process left half-shown: `text` with the "interrupted" notice."""
        ...


class StreamerFactory(Protocol):
    def __call__(
        self,
        target: ChatTarget,
        texts: Texts,
        *,
        on_progress: ProgressCallback | None = None,
        message_ids: Sequence[int] = (),
    ) -> Streamer:
        """A streamer for one answer; `message_ids` continues an answer already on screen."""
        ...


class Notifier(Protocol):
    async def __call__(self, target: ChatTarget, text: str) -> None:
        """Tell the chat something short (plain text), outside of any answer."""


async def consume_until_stopped(consumer: asyncio.Task[None], stop: asyncio.Event) -> bool:
    """Wait for `consumer` to read the model's events, or for `stop`; True when the stop cut it short.

    Cancelling the consumer closes the model's HTTP stream, so no more tokens are generated. The task
    waiting for `stop` is always cancelled; the consumer is left for the caller to clean up on errors.
    """
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopped = not consumer.done()
        if stopped:
            consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        return stopped
    finally:
        stopper.cancel()
