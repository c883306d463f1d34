"""/history's page building: packing, fitting, shortening and the Markdown export (no Telegram)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.telegram.history_pages import (
    build_book,
    export_markdown,
    pack_pages,
    render_entry,
    shorten,
    wants_export,
)
from bot.telegram.render import TELEGRAM_TEXT_LIMIT
from bot.texts import ENGLISH, RUSSIAN
from bot.threads.models import ThreadMessage
from tests.helpers import START, entry_text


def test_pack_pages_fills_pages_in_order_up_to_the_budget() -> None:
    assert pack_pages([], 100) == []
    assert pack_pages([10, 20, 30], 100) == [range(0, 3)]
    # 40 + 2 + 40 = 82 fits; one more entry would need 124.
    assert pack_pages([40, 40, 40, 40, 40], 100) == [range(0, 2), range(2, 4), range(4, 5)]
    assert pack_pages([49, 49], 100) == [range(0, 2)]  # exactly the budget: separator counted
    assert pack_pages([49, 50], 100) == [range(0, 1), range(1, 2)]
    assert pack_pages([10, 500, 10], 100) == [range(0, 1), range(1, 2), range(2, 3)]  # oversized: alone


@given(
    st.lists(st.integers(min_value=1, max_value=120), max_size=60), st.integers(min_value=50, max_value=300)
)
def test_pack_pages_partitions_within_budget_and_earlier_pages_stay_put(
    sizes: list[int], budget: int
) -> None:
    pages = pack_pages(sizes, budget)
    assert [index for page in pages for index in page] == list(range(len(sizes)))
    for page in pages:
        used = sum(sizes[index] for index in page) + 2 * (len(page) - 1)
        assert used <= budget or len(page) == 1
    # A thread that grows only changes its last page: old buttons keep showing the same entries.
    grown = pack_pages([*sizes, 30], budget)
    assert grown[: max(len(pages) - 1, 0)] == pages[:-1]


def test_every_page_fits_telegram_with_wide_characters_and_citations() -> None:
    emoji = "😀" * 700  # 1400 UTF-16 units, shortened to 600 characters
    messages = [
        ThreadMessage(
            "assistant" if index % 2 else "user",
            emoji if index % 3 == 0 else entry_text(index),
            START + index,
            citations=tuple(f"source-{n}.pdf" for n in range(index % 40)),
        )
        for index in range(120)
    ]
    for texts in (ENGLISH, RUSSIAN):
        book = build_book("f" * 32, messages, texts)
        assert book is not None and len(book.pages) > 10
        assert all(page.length <= TELEGRAM_TEXT_LIMIT for page in book.pages)
        assert book == build_book("f" * 32, messages, texts), "pages are deterministic"
        for page in range(len(book.pages)):
            for row in book.keyboard(page).inline_keyboard:
                assert all(len((item.callback_data or "").encode()) <= 64 for item in row)


def test_an_entry_too_big_for_a_page_is_clipped_to_fit() -> None:
    message = ThreadMessage("user", "word " * 2000, START)
    book = build_book("a" * 32, [message], ENGLISH, limit=300, preview_chars=5000)
    assert book is not None
    [page] = book.pages
    assert page.length <= 300 and page.text.endswith("…")


def test_shorten_cuts_at_a_word_and_marks_the_cut() -> None:
    assert shorten("  short  ", 10) == "short"
    assert shorten("alpha beta gamma delta", 13) == "alpha beta…"
    assert shorten("x" * 20, 10) == "x" * 10 + "…"
    entry = render_entry(ThreadMessage("user", "y" * 1000, START), ENGLISH)
    assert entry.text.endswith("y" * 600 + "…")


def test_export_keeps_full_text_and_lists_sources() -> None:
    messages = [
        ThreadMessage("user", "q" * 5000, START),
        ThreadMessage("assistant", "answer", START + 60, citations=("a.pdf",)),
    ]
    at = datetime(2024, 5, 6, 7, 8, tzinfo=UTC).timestamp()
    content = export_markdown(messages, ENGLISH, exported_at=at)
    assert "q" * 5000 in content
    assert "_Exported: 2024-05-06 07:08 UTC_" in content
    assert "**Sources:**\n- a.pdf" in content


@pytest.mark.parametrize("args", ["file", "FILE", " md ", "export", "файл"])
def test_history_arguments_that_ask_for_the_file(args: str) -> None:
    assert wants_export(args)
    assert not wants_export(None) and not wants_export("") and not wants_export("page 2")
