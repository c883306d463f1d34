"""Property tests of the reply streamer: whatever the Markdown and however the model chunks it, every frame
is valid for Telegram and the final messages hold exactly the rendered answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.assistant.events import AnswerEvent, Finished, TextDelta
from bot.target import ChatTarget
from bot.telegram.budget import CallBudget
from bot.telegram.calls import ChatCaller
from bot.telegram.chat_action import TypingIndicator
from bot.telegram.pacing import Pacer
from bot.telegram.render import render_markdown, split_rendered
from bot.telegram.sender import Sender
from bot.telegram.streamer import ReplyStreamer
from bot.telegram.surface import ReplySurface
from bot.texts import ENGLISH
from tests.helpers import MARKDOWN, FakeClock, RecordingBot


async def events(chunks: list[str]) -> AsyncIterator[AnswerEvent]:
    for chunk in chunks:
        yield TextDelta(chunk)
        await asyncio.sleep(0)
    yield Finished()


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(cut % (len(text) + 1) for cut in cuts)})
    return [text[a:b] for a, b in pairwise(points) if b > a]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MARKDOWN, st.lists(st.integers(min_value=0, max_value=10**6), max_size=40), st.booleans())
def test_any_chunking_ends_with_exactly_the_rendered_answer(
    markdown: str, cuts: list[int], drafts: bool
) -> None:
    answer = markdown * 40  # long enough to cross the 4096 limit often
    bot = RecordingBot()
    clock = FakeClock()
    caller = ChatCaller(Pacer(0.5, clock), CallBudget(clock), clock, 1, max_flood_wait=300)
    sender = Sender(bot, ChatTarget(1, True, reply_to_message_id=1), caller)  # type: ignore[arg-type]
    surface = ReplySurface(sender, stop_label="Stop", draft_id=7 if drafts else None)
    typing = TypingIndicator(bot, clock)  # type: ignore[arg-type]
    streamer = ReplyStreamer(surface, ENGLISH, clock=clock, typing=typing)
    outcome = asyncio.run(streamer.run(events(chunked(answer, cuts))))

    assert outcome.text == answer
    expected = split_rendered(render_markdown(answer)) if answer.strip() else []
    shown = [bot.messages[key][0] for key in sorted(bot.messages)]
    if expected:
        assert shown == [part.text for part in expected]
        assert "".join(shown) == render_markdown(answer).text
    else:
        assert shown == [ENGLISH.empty_answer]
