"""The reply streamer while a question waits for a generation slot: the notice, how often it changes,
what replaces it, and how a stop or a shutdown ends it. Real time, with the streamer's timings shortened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from itertools import pairwise

import pytest

from bot.assistant.events import AnswerEvent, Finished, TextDelta
from bot.clock import SystemClock
from bot.target import ChatTarget
from bot.telegram import streamer as streamer_module
from bot.telegram.budget import CallBudget
from bot.telegram.calls import ChatCaller
from bot.telegram.chat_action import TypingIndicator
from bot.telegram.pacing import Pacer
from bot.telegram.sender import Sender
from bot.telegram.streamer import ReplyStreamer
from bot.telegram.surface import ReplySurface
from bot.texts import ENGLISH, RUSSIAN, Texts
from tests.helpers import RecordingBot

NOTICE_AFTER = 0.1
REFRESH = 0.2


@pytest.fixture(autouse=True)
def short_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streamer_module, "WAIT_NOTICE_AFTER_SECONDS", NOTICE_AFTER)
    monkeypatch.setattr(streamer_module, "WAIT_REFRESH_SECONDS", REFRESH)
    monkeypatch.setattr(streamer_module, "WAIT_REFRESH_MAX_SECONDS", 2 * REFRESH)


class TimedBot(RecordingBot):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def _record(self, text: str, entities: list[object] | None) -> None:
        self.times.append(time.monotonic())
        super()._record(text, entities)  # type: ignore[arg-type]


def make_streamer(bot: TimedBot, texts: Texts = ENGLISH) -> ReplyStreamer:
    clock = SystemClock()
    caller = ChatCaller(
        Pacer(0.01, clock), CallBudget(clock, rate=1000, burst=10), clock, 1, max_flood_wait=300
    )
    sender = Sender(bot, ChatTarget(1, True, reply_to_message_id=1), caller)  # type: ignore[arg-type]
    surface = ReplySurface(sender, stop_label="Stop")
    return ReplyStreamer(surface, texts, clock=clock, typing=TypingIndicator(bot, clock))  # type: ignore[arg-type]


def notice(position: int) -> str:
    return ENGLISH.waiting_position.format(position=position)


async def waiting_then_answer(
    streamer: ReplyStreamer, places: list[tuple[float, int | None]], answer: str = "The answer."
) -> AsyncIterator[AnswerEvent]:
    """What Generations does: places in line at the given moments (seconds apart), then the model."""
    for pause, place in places:
        await asyncio.sleep(pause)
        streamer.show_waiting(place)
    yield TextDelta(answer)
    yield Finished()


async def test_the_place_in_line_is_shown_after_a_moment_then_ever_more_rarely() -> None:
    bot = TimedBot()
    streamer = make_streamer(bot)
    started = time.monotonic()
    # A new place every 50 ms for 1.2 s: most are never shown.
    places: list[tuple[float, int | None]] = [(0.0, 30), *((0.05, 29 - i) for i in range(24))]

    outcome = await streamer.run(waiting_then_answer(streamer, places))

    assert outcome.text == "The answer." and outcome.complete
    notices = [
        (at, text) for at, (text, _) in zip(bot.times, bot.frames, strict=True) if text.startswith("⏳")
    ]
    assert notices[0][0] - started >= NOTICE_AFTER * 0.9, "a short wait gets no message"
    gaps = [b[0] - a[0] for a, b in pairwise(notices)]
    assert len(notices) >= 3 and all(gap >= REFRESH * 0.9 for gap in gaps), gaps
    assert gaps[-1] >= 2 * REFRESH * 0.9, "the refresh interval grows"
    positions = [int(text.split("number ")[1].split()[0]) for _, text in notices]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == len(positions)
    # The notice was one message, edited, and the answer took its place.
    [(text, _)] = bot.messages.values()
    assert text == "The answer."


async def test_an_answer_admitted_quickly_shows_no_notice() -> None:
    bot = TimedBot()
    streamer = make_streamer(bot)
    await streamer.run(waiting_then_answer(streamer, [(0.0, 2), (0.02, 1)]))
    assert not any(text.startswith("⏳") for text, _ in bot.frames)
    assert bot.frames[-1][0] == "The answer."


async def test_a_busy_service_is_shown_as_waiting_for_a_free_slot_in_russian_too() -> None:
    bot = TimedBot()
    streamer = make_streamer(bot, RUSSIAN)
    await streamer.run(waiting_then_answer(streamer, [(0.0, None), (NOTICE_AFTER * 2, None)]))
    assert bot.frames[0][0] == RUSSIAN.waiting_slot
    assert bot.frames[-1][0] == "The answer."


async def stop_while_waiting(bot: TimedBot, stop: Callable[[ReplyStreamer], None]) -> str:
    streamer = make_streamer(bot)
    gone = asyncio.Event()

    async def never_admitted() -> AsyncIterator[AnswerEvent]:
        streamer.show_waiting(4)
        try:
            await asyncio.sleep(30)
        finally:
            gone.set()  # the line is left when the events are closed
        yield Finished()

    async def stop_later() -> None:
        await asyncio.sleep(NOTICE_AFTER * 2)
        stop(streamer)

    stopper = asyncio.create_task(stop_later())
    async with asyncio.timeout(5):
        outcome = await streamer.run(never_admitted())
    await stopper
    assert gone.is_set() and outcome.stopped and not outcome.text
    assert bot.frames[0][0] == notice(4)
    [(text, _)] = bot.messages.values()
    return text


async def test_a_stop_while_waiting_leaves_the_line_and_says_stopped() -> None:
    assert await stop_while_waiting(TimedBot(), lambda s: s.stop()) == ENGLISH.stopped_notice


async def test_a_shutdown_while_waiting_asks_to_send_the_question_again() -> None:
    text = await stop_while_waiting(TimedBot(), lambda s: s.stop(interrupted=True))
    assert text == ENGLISH.unanswered


async def test_waiting_chats_share_a_pace_of_notices_front_first() -> None:
    clock = SystemClock()
    rate = streamer_module.NoticeRate(clock, rate=10.0)  # one notice per 0.1 s for all chats together
    bots = [TimedBot() for _ in range(5)]
    streamers = []
    for bot in bots:
        caller = ChatCaller(
            Pacer(0.01, clock), CallBudget(clock, rate=1000, burst=10), clock, 1, max_flood_wait=300
        )
        sender = Sender(bot, ChatTarget(1, True, reply_to_message_id=1), caller)  # type: ignore[arg-type]
        streamers.append(
            ReplyStreamer(
                ReplySurface(sender, stop_label="Stop"),
                ENGLISH,
                clock=clock,
                typing=TypingIndicator(bot, clock),  # type: ignore[arg-type]
                notice_rate=rate,
            )
        )
    # All five start waiting at once (places 1..5), then are admitted together much later.
    runs = [
        s.run(waiting_then_answer(s, [(0.0, place), (NOTICE_AFTER + 0.6, place)]))
        for place, s in enumerate(streamers, start=1)
    ]
    await asyncio.gather(*runs)
    firsts = [
        next(at for at, (text, _) in zip(b.times, b.frames, strict=True) if text.startswith("⏳"))
        for b in bots
    ]
    assert firsts == sorted(firsts), "the front of the line is told first"
    assert all(b - a >= 0.09 for a, b in pairwise(firsts)), firsts
