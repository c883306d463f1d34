"""/history end to end (pages, buttons, export, stale buttons, topics) and the page packing underneath."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.telegram.history import (
    HistoryPage,
    build_book,
    export_markdown,
    pack_pages,
    render_entry,
    shorten,
)
from bot.telegram.render import TELEGRAM_TEXT_LIMIT
from bot.telegram.texts import ENGLISH, RUSSIAN
from bot.threads.models import MessageStatus, ThreadMessage
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram, SentMessage, utf16_len

CHAT = 2002
GROUP = -1002003
START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def entry_text(index: int) -> str:
    return f"Message {index:02d}: " + "words about the topic " * 20


def seeded_messages(count: int) -> list[ThreadMessage]:
    return [
        ThreadMessage(
            role="user" if index % 2 == 0 else "assistant",
            text=entry_text(index),
            time=START + 60 * index,
        )
        for index in range(count)
    ]


async def seed(app: App, chat_key: str, messages: list[ThreadMessage]) -> str:
    thread_id = await app.store.current_thread(chat_key)
    for message in messages:
        assert await app.store.append(chat_key, thread_id, message)
    return thread_id


def buttons(message: SentMessage) -> list[dict[str, Any]]:
    markup = message.reply_markup or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def button(message: SentMessage, label: str) -> dict[str, Any]:
    return next(item for item in buttons(message) if label in item["text"])


def has_button(message: SentMessage, label: str) -> bool:
    return any(label in item["text"] for item in buttons(message))


def markers(text: str) -> list[int]:
    return [int(number) for number in re.findall(r"Message (\d\d):", text)]


async def open_listing(telegram: FakeTelegram, chat_id: int = CHAT, **kw: Any) -> SentMessage:
    before = len(telegram.bot_messages(chat_id))
    telegram.command(chat_id, "/history", **kw)
    await telegram.wait_until(lambda: len(telegram.bot_messages(chat_id)) > before, timeout=10)
    return telegram.bot_messages(chat_id)[-1]


async def press(telegram: FakeTelegram, message: SentMessage, data: str, user_id: int | None = None) -> str:
    """Press a button under `message`; waits for the answer and returns its text ("" for none)."""
    answered = len(telegram.callback_answers)
    telegram.callback_query(message.chat_id, message.message_id, data, user_id=user_id)
    await telegram.wait_until(lambda: len(telegram.callback_answers) > answered, timeout=10)
    return str(telegram.callback_answers[-1].get("text") or "")


async def press_and_wait_for_edit(telegram: FakeTelegram, message: SentMessage, data: str) -> str:
    versions = len(message.history)
    answer = await press(telegram, message, data)
    await telegram.wait_until(lambda: len(message.history) > versions, timeout=10)
    return answer


def assert_fits(message: SentMessage) -> None:
    assert message.text is not None and utf16_len(message.text) <= TELEGRAM_TEXT_LIMIT
    for item in buttons(message):
        assert len(item["callback_data"].encode()) <= 64


# ------------------------------------------------------------------------------------------ end to end


async def test_long_thread_opens_on_the_last_page_and_buttons_turn_pages_in_place(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    app = await run_bot()
    count = 40
    await seed(app, str(CHAT), seeded_messages(count))

    listing = await open_listing(telegram)
    assert_fits(listing)
    title = re.match(r"Conversation history · (\d+) of (\d+)", listing.text or "")
    assert title is not None
    pages = int(title.group(2))
    assert pages >= 3 and title.group(1) == title.group(2), "opens on the latest page"
    assert markers(listing.text or "")[-1] == count - 1
    assert has_button(listing, "Older") and not has_button(listing, "Newer")
    assert has_button(listing, f"{pages} of {pages}") and has_button(listing, "Export .md")
    assert {"type": "bold", "offset": 0, "length": utf16_len(title.group(0))} in listing.entities
    last_page = listing.text
    # The "x of y" button re-shows its own page: unchanged, so the press is just answered.
    assert await press(telegram, listing, button(listing, f"{pages} of {pages}")["callback_data"]) == ""
    assert listing.text == last_page and len(listing.history) == 1

    # Walk to the oldest page: every press edits this same message, never sends a new one.
    seen = [markers(listing.text or "")]
    for _ in range(pages - 1):
        answer = await press_and_wait_for_edit(telegram, listing, button(listing, "Older")["callback_data"])
        assert answer == ""
        assert_fits(listing)
        seen.insert(0, markers(listing.text or ""))
    assert len(telegram.bot_messages(CHAT)) == 1
    assert (listing.text or "").startswith(f"Conversation history · 1 of {pages}")
    assert not has_button(listing, "Older") and has_button(listing, "Newer")
    # Pages partition the thread, oldest first, every entry exactly once.
    assert [index for page in seen for index in page] == list(range(count))

    await press_and_wait_for_edit(telegram, listing, button(listing, "Newer")["callback_data"])
    assert markers(listing.text or "") == seen[1]
    assert (listing.text or "").startswith(f"Conversation history · 2 of {pages}")

    # Jump straight to the newest page with its data: the pages are computed the same way every time.
    newest = HistoryPage.unpack(button(listing, "Newer")["callback_data"]).model_copy(
        update={"page": pages - 1}
    )
    await press_and_wait_for_edit(telegram, listing, newest.pack())
    assert listing.text == last_page
    assert len(telegram.calls_of("answerCallbackQuery")) == pages + 2


async def test_entries_show_who_when_status_and_sources_as_plain_data(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    app = await run_bot()
    long_text = "A long question that keeps going. " * 100  # 3400 characters
    await seed(
        app,
        str(CHAT),
        [
            ThreadMessage("user", long_text, START),
            ThreadMessage(
                "assistant",
                "Use **stars** and <b>tags</b> here.",
                START + 61,
                MessageStatus.INCOMPLETE,
                ("guide.pdf", "https://example.com/page"),
            ),
        ],
    )

    listing = await open_listing(telegram)
    text = listing.text or ""
    assert text.startswith("Conversation history\n\nYou · 2023-11-14 22:13 UTC\nA long question")
    assert "Assistant · 2023-11-14 22:14 UTC (incomplete)" in text
    # Stored text is data: markup characters are shown as they are, with no entities of their own.
    assert "Use **stars** and <b>tags</b> here." in text
    assert "Sources: guide.pdf, https://example.com/page" in text
    shortened = text.split("\n")[3]
    assert shortened.endswith("…") and len(shortened) <= 601
    assert long_text.strip() not in text
    kinds = sorted(entity["type"] for entity in listing.entities)
    assert kinds == ["bold", "bold", "bold", "italic"]
    # One page: no page buttons, only the export.
    assert [item["text"] for item in buttons(listing)] == ["📄 Export .md"]

    telegram.command(CHAT, "/history", "file")
    await telegram.wait_until(lambda: bool(telegram.calls_of("sendDocument", chat_id=CHAT)), timeout=10)
    [upload] = telegram.calls_of("sendDocument", chat_id=CHAT)
    document = upload.params["document"]
    assert re.fullmatch(r"conversation-\d{8}-\d{4}\.md", document["file_name"])
    content = document["content"].decode()
    assert content.startswith("# Conversation history\n")
    assert "## You · 2023-11-14 22:13 UTC\n\n" + long_text.strip() in content
    assert "## Assistant · 2023-11-14 22:14 UTC (incomplete)" in content
    assert "Use **stars** and <b>tags</b> here." in content
    assert "- guide.pdf\n- https://example.com/page" in content
    sent = telegram.bot_messages(CHAT)[-1]
    assert sent.document is not None and sent.caption == "The whole conversation as a Markdown file."
    assert sent.reply_to_message_id is not None


async def test_export_button_sends_every_message_in_full(telegram: FakeTelegram, run_bot: BotRunner) -> None:
    app = await run_bot()
    messages = seeded_messages(25)
    await seed(app, str(CHAT), messages)
    listing = await open_listing(telegram)

    answer = await press(telegram, listing, button(listing, "Export .md")["callback_data"])
    assert answer == ""
    await telegram.wait_until(lambda: bool(telegram.calls_of("sendDocument", chat_id=CHAT)), timeout=10)
    content = telegram.calls_of("sendDocument", chat_id=CHAT)[-1].params["document"]["content"].decode()
    positions = [content.index(message.text.strip()) for message in messages]
    assert positions == sorted(positions)
    assert content.count("\n## ") == len(messages)


async def test_empty_thread_says_so_for_the_listing_and_the_file(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    await run_bot()
    empty = "The conversation is empty. Write me a question to start one."
    listing = await open_listing(telegram)
    assert listing.text == empty and listing.reply_markup is None
    telegram.command(CHAT, "/history", "file")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 2, timeout=10)
    assert telegram.bot_messages(CHAT)[-1].text == empty
    assert not telegram.calls_of("sendDocument")


async def test_a_button_from_before_reset_says_the_history_is_gone(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    app = await run_bot()
    await seed(app, str(CHAT), seeded_messages(30))
    listing = await open_listing(telegram)
    older = button(listing, "Older")["callback_data"]
    export = button(listing, "Export .md")["callback_data"]

    telegram.command(CHAT, "/reset")
    await telegram.wait_until(lambda: (telegram.bot_messages(CHAT)[-1].text or "").startswith("Done"))
    # The new thread has messages too: a stale button must still not show them.
    await seed(app, str(CHAT), [ThreadMessage("user", "Message 99: the new thread", START)])

    gone = ENGLISH.history_gone
    assert await press_and_wait_for_edit(telegram, listing, older) == gone
    assert listing.text == gone and listing.reply_markup is None
    assert await press(telegram, listing, export) == gone
    assert not telegram.calls_of("sendDocument")
    assert all("Message 99" not in (message.text or "") for message in telegram.bot_messages(CHAT))


async def test_a_button_of_an_expired_thread_says_the_history_is_gone(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    app = await run_bot()
    thread_id = await seed(app, str(CHAT), seeded_messages(30))
    listing = await open_listing(telegram)
    older = button(listing, "Older")["callback_data"]
    prefix = app.settings.redis_prefix
    await app.redis.delete(f"{prefix}chat:{CHAT}:thread", f"{prefix}thread:{thread_id}:messages")

    assert await press_and_wait_for_edit(telegram, listing, older) == ENGLISH.history_gone


async def test_a_press_on_an_inaccessible_message_is_still_answered(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    app = await run_bot()
    thread_id = await seed(app, str(CHAT), seeded_messages(4))
    telegram.user_message(CHAT, "make the chat exist")  # the fake sends no `message` for unknown ids
    telegram.callback_query(CHAT, 999, HistoryPage(thread=thread_id[:12], page=0).pack())
    await telegram.wait_until(lambda: bool(telegram.callback_answers), timeout=10)
    assert telegram.callback_answers[-1]["text"] == ENGLISH.history_unavailable


async def test_forum_topics_have_their_own_history_and_buttons(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    app = await run_bot()
    await seed(app, f"{GROUP}:7", seeded_messages(30))
    topic = {"chat_type": "supergroup", "message_thread_id": 7}

    listing = await open_listing(telegram, GROUP, **topic)
    assert listing.message_thread_id == 7
    assert markers(listing.text or "")[-1] == 29
    versions = len(listing.history)
    telegram.callback_query(GROUP, listing.message_id, button(listing, "Older")["callback_data"], user_id=5)
    await telegram.wait_until(lambda: len(listing.history) > versions, timeout=10)
    assert 29 not in markers(listing.text or "")

    other = await open_listing(telegram, GROUP, chat_type="supergroup", message_thread_id=8)
    assert other.message_thread_id == 8
    assert other.text == ENGLISH.history_empty


async def test_russian_listing_has_russian_buttons(telegram: FakeTelegram, run_bot: BotRunner) -> None:
    app = await run_bot()
    await seed(app, str(CHAT), seeded_messages(30))
    listing = await open_listing(telegram, language_code="ru")
    assert (listing.text or "").startswith("История разговора · ")
    labels = [item["text"] for item in buttons(listing)]
    assert labels[0] == "◀ Раньше" and labels[-1] == "📄 Скачать .md"
    assert re.fullmatch(r"\d+ из \d+", labels[1])


# ------------------------------------------------------------------------------------------ packing


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
    from bot.telegram.history import wants_export

    assert wants_export(args)
    assert not wants_export(None) and not wants_export("") and not wants_export("page 2")
