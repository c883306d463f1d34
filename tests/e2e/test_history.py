"""/history end to end: pages, buttons, export, stale buttons, topics."""

from __future__ import annotations

import re
from typing import Any

from bot.telegram.history import (
    HistoryPage,
)
from bot.telegram.render import TELEGRAM_TEXT_LIMIT
from bot.texts import ENGLISH
from bot.threads.models import MessageStatus, ThreadMessage
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram, SentMessage, utf16_len
from tests.helpers import START, buttons, seed, seeded_messages

CHAT = 2002
GROUP = -1002003


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
    await seed(app.store, str(CHAT), seeded_messages(count))

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
        app.store,
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
    await seed(app.store, str(CHAT), messages)
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
    await seed(app.store, str(CHAT), seeded_messages(30))
    listing = await open_listing(telegram)
    older = button(listing, "Older")["callback_data"]
    export = button(listing, "Export .md")["callback_data"]

    telegram.command(CHAT, "/reset")
    await telegram.wait_until(lambda: (telegram.bot_messages(CHAT)[-1].text or "").startswith("Done"))
    # The new thread has messages too: a stale button must still not show them.
    await seed(app.store, str(CHAT), [ThreadMessage("user", "Message 99: the new thread", START)])

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
    thread_id = await seed(app.store, str(CHAT), seeded_messages(30))
    listing = await open_listing(telegram)
    older = button(listing, "Older")["callback_data"]
    prefix = app.settings.redis_prefix
    await app.redis.delete(f"{prefix}chat:{CHAT}:thread", f"{prefix}thread:{thread_id}:messages")

    assert await press_and_wait_for_edit(telegram, listing, older) == ENGLISH.history_gone


async def test_a_press_on_an_inaccessible_message_is_still_answered(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    app = await run_bot()
    thread_id = await seed(app.store, str(CHAT), seeded_messages(4))
    telegram.user_message(CHAT, "make the chat exist")  # the fake sends no `message` for unknown ids
    telegram.callback_query(CHAT, 999, HistoryPage(thread=thread_id[:12], page=0).pack())
    await telegram.wait_until(lambda: bool(telegram.callback_answers), timeout=10)
    assert telegram.callback_answers[-1]["text"] == ENGLISH.history_unavailable


async def test_forum_topics_have_their_own_history_and_buttons(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    app = await run_bot()
    await seed(app.store, f"{GROUP}:7", seeded_messages(30))
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
    await seed(app.store, str(CHAT), seeded_messages(30))
    listing = await open_listing(telegram, language_code="ru")
    assert (listing.text or "").startswith("История разговора · ")
    labels = [item["text"] for item in buttons(listing)]
    assert labels[0] == "◀ Раньше" and labels[-1] == "📄 Скачать .md"
    assert re.fullmatch(r"\d+ из \d+", labels[1])
