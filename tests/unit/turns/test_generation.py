"""Generations: model streams inside the Redis generation quota, and the bounded patience with 429s."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.types import Chat, Message, Update
from redis.asyncio import Redis

from bot.assistant.events import AnswerEvent, Failed, FailureKind, Finished, TextDelta, Tool, ToolActivity
from bot.assistant.quota import GenerationQuota
from bot.keys import RedisKeys
from bot.telegram.middlewares.ordering import ChatOrdering
from bot.turns.generation import Generations
from bot.turns.streaming import StreamOutcome
from tests.helpers import FakeClock


class WaitingStreamer:
    """Only what Generations uses of a Streamer: the place in line shown, and stop()."""

    def __init__(self) -> None:
        self.shown: list[int | None] = []
        self.stopped: list[bool] = []
        self.moved = asyncio.Event()

    def show_waiting(self, position: int | None) -> None:
        self.shown.append(position)
        self.moved.set()

    def stop(self, *, interrupted: bool = False) -> None:
        self.stopped.append(interrupted)

    # The rest of the protocol, unused here.
    def show_typing(self) -> None: ...
    def add_note(self, note: str) -> None: ...
    def close(self) -> None: ...
    async def run(self, events: AsyncIterator[AnswerEvent]) -> StreamOutcome:
        return StreamOutcome()

    async def close_interrupted(self, text: str) -> StreamOutcome:
        return StreamOutcome()


class ScriptedModel:
    """Each call opens the next scripted stream; records how many were opened and closed."""

    def __init__(self, *streams: list[AnswerEvent]) -> None:
        self.streams = list(streams)
        self.opened = 0
        self.closed = 0

    def open(self) -> AsyncIterator[AnswerEvent]:
        events = self.streams[min(self.opened, len(self.streams) - 1)]
        self.opened += 1
        return self._stream(events)

    async def _stream(self, events: list[AnswerEvent]) -> AsyncIterator[AnswerEvent]:
        try:
            for event in events:
                yield event
                await asyncio.sleep(0)
        finally:
            self.closed += 1


BUSY = [Failed(FailureKind.RATE_LIMITED, "429")]
ANSWER: list[AnswerEvent] = [TextDelta("Hello"), Finished()]


async def collect(events: AsyncIterator[AnswerEvent]) -> list[AnswerEvent]:
    return [event async for event in events]


class SleepRecorder(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


async def test_a_429_before_any_text_is_retried_with_backoff_and_retry_after() -> None:
    clock = SleepRecorder()
    generations = Generations(None, clock=clock, rate_limit_wait=60, jitter=lambda: 0.0)
    model = ScriptedModel(BUSY, [Failed(FailureKind.RATE_LIMITED, "429", retry_after=7.0)], BUSY, ANSWER)
    streamer = WaitingStreamer()

    events = await collect(generations.events("chat", streamer, model.open))

    assert events == ANSWER
    assert clock.sleeps == [1.0, 7.0, 4.0], "doubling backoff, but never shorter than Retry-After"
    assert streamer.shown == [None, None, None], "the user is told the answer waits for a free slot"
    assert model.opened == model.closed == 4


async def test_the_user_is_told_the_service_is_busy_after_the_bound() -> None:
    clock = SleepRecorder()
    generations = Generations(None, clock=clock, rate_limit_wait=10, jitter=lambda: 0.0)
    model = ScriptedModel(BUSY)

    events = await collect(generations.events("chat", WaitingStreamer(), model.open))

    assert events == BUSY
    assert clock.sleeps == [1.0, 2.0, 4.0], "1 + 2 + 4 s fit in 10 s; another 8 s would not"
    assert model.opened == 4


async def test_a_retry_after_beyond_the_bound_gives_up_at_once() -> None:
    clock = SleepRecorder()
    generations = Generations(None, clock=clock, rate_limit_wait=30)
    model = ScriptedModel([Failed(FailureKind.RATE_LIMITED, "429", retry_after=120.0)])
    [failed] = await collect(generations.events("chat", WaitingStreamer(), model.open))
    assert isinstance(failed, Failed) and failed.kind is FailureKind.RATE_LIMITED
    assert clock.sleeps == []


async def test_a_429_after_text_or_another_failure_is_not_retried() -> None:
    clock = SleepRecorder()
    generations = Generations(None, clock=clock, rate_limit_wait=60)
    cut = [TextDelta("Half"), Failed(FailureKind.RATE_LIMITED, "mid-stream")]
    assert await collect(generations.events("a", WaitingStreamer(), ScriptedModel(cut).open)) == cut
    broken = [ToolActivity(Tool.FILE_SEARCH), Failed(FailureKind.UNAVAILABLE, "500")]
    assert await collect(generations.events("b", WaitingStreamer(), ScriptedModel(broken).open)) == broken
    assert clock.sleeps == []


@pytest.fixture
async def quota(redis: Redis, keys: RedisKeys) -> AsyncIterator[GenerationQuota]:
    gate = GenerationQuota(redis, keys=keys, limit=1, lease_seconds=3, poll_seconds=0.1)
    yield gate
    await gate.aclose()


async def test_answers_beyond_the_quota_wait_in_line_and_see_their_place(quota: GenerationQuota) -> None:
    generations = Generations(quota, clock=FakeClock(), rate_limit_wait=0)
    release = asyncio.Event()

    async def slow() -> AsyncIterator[AnswerEvent]:
        yield TextDelta("first")
        await release.wait()
        yield Finished()

    first = WaitingStreamer()
    running = asyncio.create_task(collect(generations.events("a", first, slow)))
    await until(lambda: quota.running(), 1)
    second, third = WaitingStreamer(), WaitingStreamer()
    waiting = [
        asyncio.create_task(collect(generations.events(key, streamer, ScriptedModel(ANSWER).open)))
        for key, streamer in (("b", second), ("c", third))
    ]
    await until(lambda: len(second.shown) + len(third.shown), 2)
    assert (second.shown, third.shown) == ([1], [2])
    assert generations.waiting == 2
    release.set()

    async with asyncio.timeout(10):
        results = await asyncio.gather(running, *waiting)
    assert results[1:] == [ANSWER, ANSWER]
    assert third.shown == [2, 1], "moved up when the first answer gave its slot back"
    assert first.shown == [], "admitted at once: nothing to show"
    assert await quota.running() == 0 and await quota.waiting() == 0


async def test_a_stopped_question_leaves_the_line_and_drain_tells_the_rest(quota: GenerationQuota) -> None:
    generations = Generations(quota, clock=FakeClock(), rate_limit_wait=0)
    release = asyncio.Event()

    async def slow() -> AsyncIterator[AnswerEvent]:
        await release.wait()
        yield Finished()

    running = asyncio.create_task(collect(generations.events("a", WaitingStreamer(), slow)))
    await until(lambda: quota.running(), 1)
    stopped, drained = WaitingStreamer(), WaitingStreamer()
    model = ScriptedModel(ANSWER)
    leaving = asyncio.create_task(collect(generations.events("b", stopped, model.open)))
    staying = asyncio.create_task(collect(generations.events("c", drained, model.open)))
    await until(lambda: quota.waiting(), 2)

    leaving.cancel()  # what a /stop does: the streamer closes the events
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert await quota.waiting() == 1
    [ticket] = generations._waiting
    assert await quota.position(ticket) == 1

    assert generations.drain() == 1
    assert drained.stopped == [True], "told like a queued question at shutdown: send it again"
    staying.cancel()  # the streamer's reaction to stop()
    with pytest.raises(asyncio.CancelledError):
        await staying
    assert await quota.waiting() == 0
    # Draining: no new generation starts; the question is stopped as unanswered at once.
    late = WaitingStreamer()
    assert await collect(generations.events("d", late, model.open)) == []
    assert late.stopped == [True] and model.opened == 0
    release.set()
    await running


async def until(count: Callable[[], Awaitable[int] | int], at_least: int) -> None:
    """Wait (up to 5 s) until `count()` reaches `at_least`."""
    for _ in range(500):
        value = count()
        if (await value if inspect.isawaitable(value) else value) >= at_least:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached {at_least}")


async def test_expected_questions_join_the_line_in_arrival_order(quota: GenerationQuota) -> None:
    # Questions whose turns began in arrival order reach the line in another order (their Redis round
    # trips finished in any order): the first slot still goes to the first arrival.
    generations = Generations(quota, clock=FakeClock(), rate_limit_wait=0)
    served: list[str] = []

    def model(key: str) -> Callable[[], AsyncIterator[AnswerEvent]]:
        async def stream() -> AsyncIterator[AnswerEvent]:
            served.append(key)
            await asyncio.sleep(0.05)
            yield Finished()

        return stream

    arrivals = {key: 1_700_000_000.0 + index for index, key in enumerate("abcd")}
    for key, arrived_at in arrivals.items():
        generations.expect(key, arrived_at)
    tasks = []
    for key in ("d", "b", "c", "a"):  # the order they get to the line
        events = generations.events(key, WaitingStreamer(), model(key), arrived_at=arrivals[key])
        tasks.append(asyncio.create_task(collect(events)))
        await asyncio.sleep(0.02)
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks)
    assert served == ["a", "b", "c", "d"]
    for key, arrived_at in arrivals.items():
        generations.withdraw(key, arrived_at)


async def test_two_processes_serve_a_burst_in_telegram_order_not_in_the_order_they_parsed_it(
    redis: Redis, keys: RedisKeys, quota: GenerationQuota
) -> None:
    # Behind one webhook, process A parses update 102 of a burst before process B parses update 101
    # (by their own clocks A's message came first): the free slot goes to 101, Telegram's first.
    other = GenerationQuota(redis, keys=keys, limit=1, lease_seconds=3, poll_seconds=0.1)
    a, b = (Generations(q, clock=FakeClock(), rate_limit_wait=0) for q in (quota, other))
    release = asyncio.Event()
    served: list[int] = []

    async def hold() -> AsyncIterator[AnswerEvent]:
        await release.wait()
        yield Finished()

    def model(update_id: int) -> Callable[[], AsyncIterator[AnswerEvent]]:
        async def stream() -> AsyncIterator[AnswerEvent]:
            served.append(update_id)
            yield Finished()

        return stream

    async def deliver(generations: Generations, wall_clock: float, update_id: int) -> None:
        chat = Chat(id=update_id, type="private")
        message = Message(message_id=1, date=datetime.fromtimestamp(1_700_000_000, UTC), chat=chat, text="q")

        async def handler(event: Any, data: dict[str, Any]) -> None:
            streamer = WaitingStreamer()
            await collect(
                generations.events(str(update_id), streamer, model(update_id), arrived_at=data["arrived_at"])
            )

        ordering = ChatOrdering(generations, wall_clock=lambda: wall_clock)
        await ordering(handler, Update(update_id=update_id, message=message), {})

    holder = asyncio.create_task(collect(a.events("holder", WaitingStreamer(), hold)))
    await until(lambda: quota.running(), 1)
    tasks = [asyncio.create_task(deliver(a, 1_700_000_000.010, 102))]
    await until(lambda: quota.waiting(), 1)
    tasks.append(asyncio.create_task(deliver(b, 1_700_000_000.090, 101)))
    await until(lambda: quota.waiting(), 2)
    release.set()
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(holder, *tasks)
    finally:
        await other.aclose()
    assert served == [101, 102]


async def test_a_question_that_never_gets_there_holds_the_others_up_only_briefly(
    quota: GenerationQuota,
) -> None:
    generations = Generations(quota, clock=FakeClock(), rate_limit_wait=0, entry_wait=1.0)
    generations.expect("stuck", 1_700_000_000.0)  # e.g. its chat is held by another process
    started = asyncio.get_running_loop().time()
    later = ScriptedModel(ANSWER)
    assert (
        await collect(generations.events("later", WaitingStreamer(), later.open, arrived_at=1_700_000_001.0))
        == ANSWER
    )
    assert asyncio.get_running_loop().time() - started < 1.5
    generations.withdraw("stuck", 1_700_000_000.0)
    late = ScriptedModel(ANSWER)
    generations.expect("stuck", 1_700_000_002.0)
    generations.withdraw("stuck", 1_700_000_002.0)  # it never went for the line: nobody waits for it
    started = asyncio.get_running_loop().time()
    await collect(generations.events("last", WaitingStreamer(), late.open, arrived_at=1_700_000_003.0))
    assert asyncio.get_running_loop().time() - started < 0.5


async def test_a_kept_question_holds_its_place_after_its_handler_returned(quota: GenerationQuota) -> None:
    # The answer runs in a task of its own (TurnRunner.start): the handler returns, and ChatOrdering
    # withdraws the message, before the question has joined the line. Later arrivals must still wait.
    generations = Generations(quota, clock=FakeClock(), rate_limit_wait=0, entry_wait=5.0)
    generations.expect("first", 1_700_000_000.0)
    generations.keep("first", 1_700_000_000.0)
    generations.withdraw("first", 1_700_000_000.0)  # the handler is done: the place stays
    later = asyncio.create_task(
        collect(
            generations.events(
                "later", WaitingStreamer(), ScriptedModel(ANSWER).open, arrived_at=1_700_000_001.0
            )
        )
    )
    await asyncio.sleep(0.3)
    assert not later.done(), "a later arrival overtook a kept question on its way to the line"
    generations.withdraw("first", 1_700_000_000.0, kept=True)  # the answer itself gives the place up
    async with asyncio.timeout(2):
        assert await later == ANSWER
