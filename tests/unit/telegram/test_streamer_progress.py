"""The answer's record for crash recovery is never behind what the chat shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bot.assistant.events import AnswerEvent, Finished, TextDelta
from bot.clock import SystemClock
from bot.target import ChatTarget
from bot.telegram.budget import CallBudget
from bot.telegram.calls import ChatCaller
from bot.telegram.chat_action import TypingIndicator
from bot.telegram.pacing import Pacer
from bot.telegram.sender import Sender
from bot.telegram.streamer import ReplyStreamer
from bot.telegram.surface import ReplySurface
from bot.texts import ENGLISH
from tests.helpers import RecordingBot

WORDS = [f"word{n} " for n in range(40)]


class LoggingBot(RecordingBot):
    """Notes each text shown, in one log with the progress records."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        super().__init__()
        self.log = log

    def _record(self, text: str, entities: list[object] | None) -> None:
        self.log.append(("shown", text))
        super()._record(text, entities)  # type: ignore[arg-type]


async def slowly() -> AsyncIterator[AnswerEvent]:
    for word in WORDS:
        await asyncio.sleep(0.01)
        yield TextDelta(word)
    yield Finished()


async def test_each_frame_is_recorded_before_it_is_shown() -> None:
    # A process killed after Telegram took a frame but before the record was written left the record a
    # frame behind: the recovery put back less than the user had already read.
    log: list[tuple[str, str]] = []
    bot = LoggingBot(log)
    clock = SystemClock()
    caller = ChatCaller(
        Pacer(0.05, clock), CallBudget(clock, rate=1000, burst=10), clock, 1, max_flood_wait=300
    )
    sender = Sender(bot, ChatTarget(1, True, reply_to_message_id=1), caller)  # type: ignore[arg-type]

    async def record(message_ids: list[int], text: str) -> None:
        log.append(("recorded", text))

    streamer = ReplyStreamer(
        ReplySurface(sender, stop_label="Stop"),
        ENGLISH,
        clock=clock,
        typing=TypingIndicator(bot, clock),  # type: ignore[arg-type]
        on_progress=record,
    )
    outcome = await streamer.run(slowly())
    assert outcome.complete
    shown = [index for index, (kind, _) in enumerate(log) if kind == "shown"]
    assert len(shown) >= 3, "too few frames to tell"
    for index in shown[:-1]:  # the last is the final frame; the answer is saved right after it
        text = log[index][1].rstrip("…").strip()
        recorded = [saved for kind, saved in log[:index] if kind == "recorded"]
        assert recorded and recorded[-1].startswith(text), f"{text!r} was shown before it was recorded"
