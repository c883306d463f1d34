"""Rendering model Markdown for Telegram, and splitting it into messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from telegramify_markdown import utf16_len

from bot.telegram.render import Rendered, render_markdown, split_rendered, styled
from tests.helpers import MARKDOWN


def entities_fit(rendered: Rendered) -> bool:
    length = utf16_len(rendered.text)
    return all(e.offset >= 0 and e.length > 0 and e.offset + e.length <= length for e in rendered.entities)


def test_angle_brackets_outside_code_survive() -> None:
    assert render_markdown("Use List<String> when a < b.").text == "Use List<String> when a < b."
    assert render_markdown("<div>x</div> and <br>").text == "<div>x</div> and <br>"
    assert render_markdown("`List<String>`").text == "List<String>"


def test_markdown_becomes_entities() -> None:
    rendered = render_markdown("Some **bold** and `code`")
    assert rendered.text == "Some bold and code"
    assert [(e.type, e.offset, e.length) for e in rendered.entities] == [("bold", 5, 4), ("code", 14, 4)]


@settings(max_examples=200, deadline=None)
@given(MARKDOWN, st.integers(min_value=0, max_value=2000))
def test_every_prefix_renders_to_valid_entities(markdown: str, cut: int) -> None:
    rendered = render_markdown(markdown[:cut])
    assert entities_fit(rendered)
    assert "**" not in rendered.text or "**" in markdown


@settings(max_examples=200, deadline=None)
@given(MARKDOWN, st.integers(min_value=40, max_value=500))
def test_split_parts_fit_and_concatenate_to_the_whole(markdown: str, limit: int) -> None:
    rendered = render_markdown(markdown * 3)
    parts = split_rendered(rendered, limit)
    assert "".join(part.text for part in parts) == rendered.text
    for part in parts:
        assert utf16_len(part.text) <= limit
        assert entities_fit(part)


def test_split_prefers_paragraphs_then_lines_then_sentences() -> None:
    text = "a" * 50 + "\n\n" + "b" * 30 + "\n" + "c" * 10 + ". " + "d" * 40
    parts = split_rendered(Rendered(text), 100)
    assert parts[0].text == "a" * 50 + "\n\n"
    parts = split_rendered(Rendered("x" * 40 + "\n" + "y" * 30 + ". " + "z" * 50), 100)
    assert parts[0].text == "x" * 40 + "\n"
    parts = split_rendered(Rendered("x" * 60 + ". " + "y" * 30 + " " + "z" * 50), 100)
    assert parts[0].text == "x" * 60 + ". "
    parts = split_rendered(Rendered("x" * 60 + " " + "y" * 80), 100)
    assert parts[0].text == "x" * 60 + " "
    assert split_rendered(Rendered("x" * 250), 100)[0].text == "x" * 100


def test_split_clips_an_entity_into_both_parts() -> None:
    code = styled("line one\n" * 20, "pre")
    parts = split_rendered(code, 50)
    assert len(parts) > 1
    assert all(len(part.entities) == 1 and part.entities[0].type == "pre" for part in parts)


def test_split_counts_utf16_like_telegram() -> None:
    emoji = "😀" * 3000  # 6000 UTF-16 units, 3000 Python characters
    parts = split_rendered(Rendered(emoji))
    assert len(parts) == 2 and all(utf16_len(part.text) <= 4096 for part in parts)


def test_split_keeps_every_message_within_telegrams_entity_limit() -> None:
    # 300 links and code spans in a text shorter than 4096 characters: one message would lose 200.
    markdown = "\n".join(f"{n}: [doc](https://example.com/{n}) `c{n}`" for n in range(150))
    rendered = render_markdown(markdown)
    assert rendered.length <= 4096 and len(rendered.entities) == 300
    parts = split_rendered(rendered)
    assert len(parts) >= 3
    assert all(len(part.entities) <= 100 for part in parts)
    assert "".join(part.text for part in parts) == rendered.text
    assert sum(len(part.entities) for part in parts) == 300  # no entity lost, none cut in two
    assert all(part.text.endswith("\n") or part is parts[-1] for part in parts), "split at line ends"


@settings(max_examples=150, deadline=None)
@given(MARKDOWN, st.integers(min_value=3, max_value=12))  # (entities nest at most 2 deep here)
def test_split_by_entity_count_loses_nothing(markdown: str, max_entities: int) -> None:
    rendered = render_markdown(markdown)
    parts = split_rendered(rendered, max_entities=max_entities)
    assert "".join(part.text for part in parts) == rendered.text
    for part in parts:
        assert entities_fit(part)
        assert len(part.entities) <= max_entities
