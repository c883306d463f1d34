"""Model streams within the folder's quota of concurrent generations, patient with Yandex's 429.

A folder may run only so many generations at once (YANDEX_MAX_CONCURRENT_GENERATIONS, Yandex's default
10); beyond that Yandex answers 429. Every answer therefore holds a slot of the `GenerationQuota` (a fair
semaphore in Redis, shared by all bot processes) around its model stream, and waits in arrival order
for one, the user seeing their place in the line. Should Yandex still answer 429 before any text (the
folder's quota is shared with other software, or lower than configured), the request is retried with
backoff, honouring Retry-After, for at most `rate_limit_wait` seconds; then the user is told the service
is busy.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from bot.assistant.events import AnswerEvent, Citation, Failed, FailureKind, TextDelta
from bot.assistant.quota import GenerationQuota
from bot.clock import Clock
from bot.metrics import Metrics
from bot.turns.streaming import Streamer

log = logging.getLogger(__name__)

StreamOpener = Callable[[], AsyncIterator[AnswerEvent]]

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 10.0
# How long a question waits for this process's earlier arrivals to join the line before it joins anyway
# (beyond the bot's burst window, which every question waits out on its way).
ENTRY_WAIT_SECONDS = 3.0


@dataclass(eq=False, slots=True)
class _Entry:
    """A message on its way to the line: its arrival, and whether it got there (or never will)."""

    arrival: int
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    kept: bool = False  # its answer goes on after the handler returned: only the answer withdraws it


class Generations:
    """Every model stream of this process: inside a generation slot, with the 429 retries.

    `drain()` (at shutdown) ends every wait for a slot: those questions are told to send again, like the
    questions still queued behind an answer, and no new generation starts.
    """

    def __init__(
        self,
        quota: GenerationQuota | None,
        *,
        clock: Clock,
        rate_limit_wait: float,
        entry_wait: float = ENTRY_WAIT_SECONDS,
        first_backoff: float = FIRST_BACKOFF_SECONDS,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        jitter: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._quota = quota
        self._clock = clock
        self._rate_limit_wait = rate_limit_wait
        self._entry_wait = entry_wait
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._jitter = jitter
        self._waiting: dict[str, Streamer] = {}  # ticket -> the streamer of a question waiting for a slot
        self._entries: dict[tuple[str, int], _Entry] = {}  # (chat key, arrival) -> on the way to the line
        self._draining = False

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def waiting(self) -> int:
        """Questions of this process waiting for a generation slot right now."""
        return len(self._waiting)

    def expect(self, chat_key: str, arrived_at: float) -> None:
        """A message arrived that may become a question for the model (called before anything awaits).

        A burst of questions arrives in order, but the Redis round trips each makes before it joins the
        line (deduplication, limits, its turn, its thread) finish in any order, and the first to get
        there would take the free slots although others arrived before them. So a question joins the
        line only once this process's messages expected with an earlier arrival have joined it or been
        withdrawn, waiting at most `entry_wait`. Across processes the arrival times alone order the line
        (for a Telegram message its place in Telegram's order, bot.telegram.middlewares.ordering).
        """
        self._entries[(chat_key, _arrival(arrived_at))] = _Entry(_arrival(arrived_at))

    def keep(self, chat_key: str, arrived_at: float | None) -> None:
        """The message's answer goes on in a task of its own once its handler has returned (it has not
        joined the line yet): the handler's `withdraw` leaves its place alone, the answer's own
        (`kept=True`) ends it."""
        if arrived_at is not None and (entry := self._entries.get((chat_key, _arrival(arrived_at)))):
            entry.kept = True

    def withdraw(self, chat_key: str, arrived_at: float | None, *, kept: bool = False) -> None:
        """That message will not join the line now (handled, refused, or waiting behind its chat's answer):
        nobody waits for it any more. A kept message is withdrawn only by its answer (`kept=True`)."""
        if arrived_at is None:
            return
        place = (chat_key, _arrival(arrived_at))
        entry = self._entries.get(place)
        if entry is None or (entry.kept and not kept):
            return
        del self._entries[place]
        entry.joined.set()

    def drain(self) -> int:
        """Shutdown: every question waiting for a slot ends now, told to send it again; returns how many."""
        self._draining = True
        waiting = list(self._waiting.values())
        for streamer in waiting:
            streamer.stop(interrupted=True)
        return len(waiting)

    async def events(
        self,
        chat_key: str,
        streamer: Streamer,
        open_stream: StreamOpener,
        *,
        arrived_at: float | None = None,
    ) -> AsyncGenerator[AnswerEvent, None]:
        """The events of one answer, generated inside a slot; the wait is shown through `streamer`.

        The place in line is `arrived_at` (seconds: a Telegram message's date with its update_id as
        the fraction, so Telegram's order; else the wall-clock time the question reached the bot; now
        when not known), so questions are served in the order they came, whichever process took them
        and however long each took to get here. Cancelling (a /stop: the streamer closes the events) leaves
        the line at once, or gives the slot back, and closes the model stream.
        """
        ticket = f"{chat_key}:{uuid.uuid4().hex[:12]}"
        arrival = _arrival(arrived_at)
        entry = self._entries.get((chat_key, arrival)) or _Entry(arrival)
        if self._draining:
            streamer.stop(interrupted=True)
            return
        if self._quota is None:
            with self._metrics.generation_running():
                async for event in self._patiently(streamer, open_stream):
                    yield event
            return

        def joined(position: int) -> None:
            entry.joined.set()
            streamer.show_waiting(position)

        self._waiting[ticket] = streamer
        waiting = self._metrics.waiting_for_generation()
        try:
            await self._after_earlier_arrivals(entry)
            async with self._quota.slot(ticket, on_position=joined, arrival=entry.arrival):
                entry.joined.set()
                del self._waiting[ticket]
                waiting.end()
                with self._metrics.generation_running():
                    async for event in self._patiently(streamer, open_stream):
                        yield event
        finally:
            waiting.end()
            entry.joined.set()
            self._waiting.pop(ticket, None)

    async def _after_earlier_arrivals(self, entry: _Entry) -> None:
        """Wait (at most `entry_wait`) until the messages expected before this one joined the line."""
        deadline = asyncio.get_running_loop().time() + self._entry_wait
        while True:
            earlier = [
                other
                for other in self._entries.values()
                if other.arrival < entry.arrival and not other.joined.is_set()
            ]
            if not earlier:
                return
            try:
                async with asyncio.timeout_at(deadline):
                    await max(earlier, key=lambda other: other.arrival).joined.wait()
            except TimeoutError:
                log.debug(
                    "joining the generation line without waiting for %d earlier question(s)", len(earlier)
                )
                return

    async def _patiently(
        self, streamer: Streamer, open_stream: StreamOpener
    ) -> AsyncGenerator[AnswerEvent, None]:
        """The model's events; a 429 before any text is retried with backoff until `rate_limit_wait`."""
        give_up_at = self._clock.now() + self._rate_limit_wait
        attempt = 0
        while True:
            busy: Failed | None = None
            wrote = False
            stream = open_stream()
            try:
                async for event in stream:
                    if isinstance(event, TextDelta | Citation):
                        wrote = True
                    elif isinstance(event, Failed) and event.kind is FailureKind.RATE_LIMITED and not wrote:
                        busy = event
                        break
                    yield event
            finally:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()
            if busy is None:
                return
            delay = self._backoff(attempt, busy.retry_after)
            if self._clock.now() + delay > give_up_at:
                log.warning("Yandex kept answering 429 (%s); telling the user it is busy", busy.detail)
                yield busy
                return
            attempt += 1
            log.info("Yandex answered 429 before any text; retry %d in %.1f s", attempt, delay)
            streamer.show_waiting(None)
            await self._clock.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self._max_backoff, self._first_backoff * 2.0**attempt)
        delay *= 1 + 0.25 * self._jitter()  # many answers retrying at once spread out
        return max(delay, retry_after or 0.0, 0.0)


def _arrival(arrived_at: float | None) -> int:
    """The place in line: the microsecond the question arrived (now, when not known)."""
    return round((time.time() if arrived_at is None else arrived_at) * 1_000_000)
