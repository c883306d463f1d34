"""Fault suite, Telegram's side: server errors and dropped connections mid-stream, fuzzed and malformed
updates through the real dispatcher, model output that looks like markup, and many chats at once.

Run by plain pytest (so `make test` runs them), with the fake's flood control on; docs/reliability.md
lists each case, its command, what the user sees and the result.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.factory import App
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import saved_thread

CHAT = 5001


# ------------------------------------------------------------------- 5xx and drops in the middle


async def test_server_errors_and_dropped_connections_mid_stream_show_the_answer_once_and_complete(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "A complete answer, despite Telegram failing several calls while it was being written. " * 3
    yandex.script(Reply(text=answer, chunk_size=10, delay=0.05))
    app = await run_bot()
    telegram.user_message(CHAT, "stream through trouble")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)

    # Three 5xx answers, then two dropped connections, for the edits that follow.
    telegram.fail_next("editMessageText", error_code=502, description="Bad Gateway", times=3, chat_id=CHAT)
    telegram.drop_next("editMessageText", times=2, chat_id=CHAT)

    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == [answer.strip()], timeout=40)
    statuses = [call.status for call in telegram.calls_of("editMessageText", CHAT)]
    assert statuses.count(502) == 3 and statuses.count(-1) == 2
    assert len(telegram.calls_of("sendMessage", CHAT)) == 1, "no duplicate message"
    [_, saved] = await saved_thread(app.store, str(CHAT), 2)
    assert saved.text == answer
    assert telegram.flood_count() == 0


# ----------------------------------------------------------------------- fuzzed and odd updates

_ids = itertools.count(700_000)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
ENTITY = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["bold", "mention", "bot_command", "url", "text_link", "code", "hashtag"]),
        "offset": st.integers(0, 80),
        "length": st.integers(1, 40),
    }
)
COMMANDS = st.sampled_from(["/start", "/help", "/stop", "/reset", "/history", "/mode", "/settings", "/usage"])


def _chat(chat_id: int, kind: str) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "type": kind}
    if kind == "private":
        chat["first_name"] = "Fuzz"
    else:
        chat["title"] = "Fuzz group"
    return chat


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    number = next(_ids)
    private = draw(st.booleans())
    chat_id = number if private else -number
    chat = _chat(chat_id, "private" if private else "supergroup")
    user = {"id": number, "is_bot": False, "first_name": draw(TEXT) or "U"}
    text = draw(st.one_of(TEXT, COMMANDS, st.builds(lambda c, t: f"{c} {t}", COMMANDS, TEXT)))
    message: dict[str, Any] = {"message_id": draw(st.integers(1, 10**6)), "date": 1, "chat": chat}
    sender = draw(st.sampled_from(["user", "none", "sender_chat"]))
    if sender == "user":
        message["from"] = user
    elif sender == "sender_chat":
        message["sender_chat"] = _chat(-number - 1, "channel")
    if draw(st.booleans()):
        message["text"] = text
        size = draw(st.sampled_from([0, 1, 5, 300]))  # huge entity arrays too
        if size:
            message["entities"] = draw(st.lists(ENTITY, min_size=size, max_size=size))
    elif draw(st.booleans()):
        message["sticker"] = {
            "file_id": "S",
            "file_unique_id": "SU",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        }
    if draw(st.booleans()) and not private:
        message["message_thread_id"] = draw(st.integers(1, 50))
        message["is_topic_message"] = True
    kind = draw(
        st.sampled_from(
            ["message", "edited_message", "channel_post", "callback_query", "my_chat_member", "stopped"]
        )
    )
    if kind in ("message", "edited_message"):
        if kind == "edited_message":
            message["edit_date"] = 2
        return {kind: message}
    if kind == "channel_post":
        message["chat"] = _chat(-number, "channel")
        message.pop("from", None)
        return {"channel_post": message}
    if kind == "callback_query":
        query: dict[str, Any] = {
            "id": f"fuzz-{number}",
            "from": user,
            "chat_instance": "x",
            "data": draw(st.text(alphabet=string.printable, max_size=64)),
        }
        if draw(st.booleans()):
            query["message"] = {**message, "from": {"id": 123456, "is_bot": True, "first_name": "Bot"}}
        return {"callback_query": query}
    if kind == "my_chat_member":
        member = {"status": "member", "user": {"id": 123456, "is_bot": True, "first_name": "Bot"}}
        return {
            "my_chat_member": {
                "chat": chat,
                "from": user,
                "date": 1,
                "old_chat_member": {**member, "status": "left"},
                "new_chat_member": member,
            }
        }
    return {
        "stopped_message_generation": {"chat": _chat(number, "private"), "draft_id": draw(st.integers(1, 99))}
    }


def _chat_of(update: dict[str, Any]) -> int | None:
    for value in update.values():
        if isinstance(value, dict):
            if "chat" in value:
                return int(value["chat"]["id"])
            if isinstance(value.get("message"), dict):
                return int(value["message"]["chat"]["id"])
    return None


@pytest.fixture
def bot_once(run_bot: BotRunner) -> list[App]:
    return []


@pytest.fixture
def seen() -> set[int]:
    """The chats the fuzzed updates came from, over all examples of one test."""
    return set()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(update=updates())
async def test_fuzzed_updates_never_crash_and_get_at_most_one_reply(
    update: dict[str, Any],
    telegram: FakeTelegram,
    yandex: FakeYandex,
    run_bot: BotRunner,
    bot_once: list[App],
    seen: set[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not bot_once:
        yandex.responder = lambda body: Reply(text="A short answer.")
        bot_once.append(await run_bot(rate_limit_per_minute=0, queue_notice_seconds=0))
    caplog.clear()
    update_id = telegram.add_update(update)
    await telegram.wait_until(lambda: all(u["update_id"] != update_id for u in telegram.pending_updates()))
    await asyncio.sleep(0.5)  # whatever the handler does takes well under this (a short answer)
    # Every example has chats of its own: none of them, now or from earlier examples, got two replies.
    sent: dict[int, int] = {}
    for call in telegram.calls_of("sendMessage"):
        if call.status == 200:
            sent[call.params["chat_id"]] = sent.get(call.params["chat_id"], 0) + 1
    assert all(count <= 1 for count in sent.values()), sent
    if (chat := _chat_of(update)) is not None:
        seen.add(chat)
    assert set(sent) <= seen, "a reply went to a chat no update came from"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert telegram.flood_count() == 0


# ------------------------------------------------------------------ model output that looks like markup

MARKUP = (
    'Raw HTML: <b>not bold</b>, <a href="tg://user?id=777">not a link</a> and <script>x()</script>.\n\n'
    "MarkdownV2 control characters: _ * [ ] ( ) ~ ` > # + - = | { } . ! \\\\ and \\*escaped\\*.\n\n"
    "A bare link tg://resolve?domain=evil and tg://user?id=42 stays text."
)


async def test_model_output_with_html_markdownv2_and_tg_links_is_shown_as_text(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text=MARKUP, chunk_size=7, delay=0.02))
    await run_bot()
    telegram.user_message(CHAT, "show me markup")
    await telegram.wait_until(lambda: any("stays text" in text for text in telegram.bot_texts(CHAT)))
    [reply] = telegram.bot_messages(CHAT)
    shown = reply.text or ""
    for visible in (
        "<b>not bold</b>",
        '<a href="tg://user?id=777">not a link</a>',
        "<script>x()</script>",
        "tg://resolve?domain=evil",
        "tg://user?id=42",
        "_ * [ ] ( ) ~ ` > # + - = | { } . !",
    ):
        assert visible in shown, f"{visible!r} is not shown as text in {shown!r}"
    # Nothing the Markdown did not make: no links, mentions or formatting from the raw HTML.
    assert [e for e in reply.entities if e["type"] in ("text_link", "text_mention", "url", "bold")] == []
    # And the bot never sent markup for Telegram to parse (the fake refuses parse_mode outright).
    assert all(not call.params.get("parse_mode") for call in telegram.calls)


# ------------------------------------------------------------------------- many chats at once


ANSWER = ("Answered: " + "streamed words " * 12).strip()


async def test_sixty_chats_with_three_quick_messages_each_are_all_answered_without_a_429(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: Reply(
        text="Answered: " + "streamed words " * 12, chunk_size=12, delay=0.05
    )
    await run_bot(burst_seconds=0.5, queue_notice_seconds=0, rate_limit_per_minute=0)
    chats = [6000 + n for n in range(60)]
    for round_ in range(3):
        for chat in chats:
            telegram.user_message(chat, f"chat {chat} question {round_}")

    def all_asked() -> bool:
        asked = " ".join(str(request.body["input"]) for request in yandex.requests)
        return all(f"chat {chat} question {round_}" in asked for chat in chats for round_ in range(3))

    await yandex.wait_until(all_asked, timeout=150)

    def all_shown() -> bool:  # every answer the model wrote shows in full (bursts may have merged)
        shown = sum(telegram.bot_texts(chat).count(ANSWER) for chat in chats)
        return shown == len(yandex.requests)

    await telegram.wait_until(all_shown, timeout=150)
    assert all(ANSWER in telegram.bot_texts(chat) for chat in chats)
    assert len(yandex.requests) >= 60
    assert telegram.flood_count() == 0
