"""What a spoken answer reads aloud, and which prompts /image refuses before any cost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.telegram.media import Pictures, spoken_text
from bot.texts import ENGLISH
from bot.threads.models import ThreadMessage


def test_markdown_is_not_read_aloud() -> None:
    text, cut = spoken_text("## Paris\n\n**Paris** is the `capital`.\n\n- one\n- two", 1000)
    assert not cut
    assert "*" not in text and "#" not in text and "`" not in text
    assert "Paris is the capital." in text


def test_a_long_answer_is_cut_after_a_sentence() -> None:
    answer = "First sentence here. Second sentence is longer than that. Third one."
    text, cut = spoken_text(answer, 40)
    assert cut and text == "First sentence here."


def test_without_a_sentence_end_the_cut_is_at_a_word() -> None:
    text, cut = spoken_text("word " * 50, 42)
    assert cut and len(text) <= 42 and text.endswith("word")


@given(st.text(min_size=1, max_size=400), st.integers(min_value=50, max_value=300))
def test_the_spoken_text_never_exceeds_the_limit(answer: str, limit: int) -> None:
    text, cut = spoken_text(answer, limit)
    assert len(text) <= limit
    if not cut:
        assert len(text) <= len(answer) + 10


def test_prompts_over_yandexarts_limit_are_refused_with_their_length() -> None:
    assert Pictures.too_long("a fox", ENGLISH) is None
    assert Pictures.too_long("x" * 500, ENGLISH) is None
    assert Pictures.too_long("x" * 501, ENGLISH) == ENGLISH.media.image_too_long.format(limit=500, length=501)


def test_how_a_message_came_is_kept_with_it() -> None:
    voice = ThreadMessage("user", "What time is it?", 1.0, via="voice")
    assert ThreadMessage.from_json(voice.to_json()) == voice
    plain = ThreadMessage("user", "hi", 1.0)
    assert "via" not in plain.to_json() and ThreadMessage.from_json(plain.to_json()).via is None
