"""End to end: stream modes, stopping, citations, tool status and closing notices."""

from __future__ import annotations

import pytest

from bot.telegram import streamer as streamer_module
from bot.telegram.render import render_markdown, split_rendered
from bot.threads.models import MessageStatus
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import callback_data, saved_thread

CHAT = 2002
GROUP = -100777
LONG = "This answer is long and slow so that there is time to stop it. " * 30


def answer_messages(telegram: FakeTelegram, chat_id: int = CHAT) -> list:
    return [message for message in telegram.bot_messages(chat_id) if message.reply_to_message_id != -1]


async def test_intermediate_frames_end_at_word_boundaries(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho."
    yandex.script(Reply(text=answer, chunk_size=3, delay=0.03))
    await run_bot(stream_interval=0.1)
    telegram.user_message(CHAT, "letters")
    await telegram.wait_for_text(answer, CHAT)
    [reply] = telegram.bot_messages(CHAT)
    intermediate = [text for text, _ in reply.history[:-1]]
    assert intermediate, "the answer should have been shown before it was finished"
    for text in intermediate:
        assert answer.startswith(text) and answer[len(text)] == " ", f"frame cut mid-word: {text!r}"


async def test_stop_command_closes_the_model_stream_and_keeps_the_partial_answer(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text=LONG, chunk_size=10, delay=0.1))
    app = await run_bot(stream_interval=0.1)
    telegram.user_message(CHAT, "talk slowly")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    [reply] = telegram.bot_messages(CHAT)
    assert reply.reply_markup is not None, "a streaming reply carries a Stop button in edit mode"

    telegram.command(CHAT, "/stop")
    await telegram.wait_for_text("Stopping the answer.", CHAT)
    await telegram.wait_until(lambda: telegram.bot_messages(CHAT)[0].text.endswith("⏹ Stopped."), timeout=2)
    await yandex.wait_until(lambda: yandex.closed_by_client == 1, timeout=2)

    stopped = telegram.bot_messages(CHAT)[0]
    assert "stop" not in callback_data(stopped), "the Stop button goes when the answer ends"
    partial = stopped.text.removesuffix("⏹ Stopped.").strip()
    assert partial and LONG.startswith(partial) and len(partial) < len(LONG.strip())
    history = await saved_thread(app.store, str(CHAT), 2)
    assert history[-1].role == "assistant" and history[-1].status is MessageStatus.INCOMPLETE
    assert LONG.startswith(history[-1].text)


async def test_stop_button_stops_the_answer(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text=LONG, chunk_size=10, delay=0.1))
    await run_bot(stream_interval=0.1)
    telegram.user_message(CHAT, "talk slowly")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    reply = telegram.bot_messages(CHAT)[0]
    telegram.callback_query(CHAT, reply.message_id, "stop")
    await telegram.wait_until(lambda: telegram.bot_messages(CHAT)[0].text.endswith("⏹ Stopped."), timeout=2)
    assert telegram.callback_answers, "the button press is answered"


async def test_stop_with_nothing_running_says_so(telegram: FakeTelegram, run_bot: BotRunner) -> None:
    await run_bot()
    telegram.command(CHAT, "/stop")
    await telegram.wait_for_text("Nothing to stop: no answer is being written right now.", CHAT)


async def test_draft_mode_streams_drafts_then_sends_the_answer(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "Drafts animate the answer as it grows, word after word, until it is sent for real."
    # Slow enough for several drafts at Telegram's pace of about one call a second per chat.
    yandex.script(Reply(text=answer, chunk_size=6, delay=0.3, first_delay=0.2))
    await run_bot(stream_mode="draft", stream_interval=0.1)
    question = telegram.user_message(CHAT, "show drafts")
    await telegram.wait_for_text(answer, CHAT)

    drafts = telegram.drafts(CHAT)
    assert drafts[0]["text"] == "", "an empty first draft shows 'Thinking…'"
    assert len(drafts) >= 3
    assert len({draft["draft_id"] for draft in drafts}) == 1 and drafts[0]["draft_id"] != 0
    assert all(draft["can_stop"] for draft in drafts)
    assert not telegram.calls_of("editMessageText")
    [reply] = telegram.bot_messages(CHAT)
    assert reply.reply_to_message_id == question["message_id"]


async def test_draft_mode_long_answer_becomes_several_messages(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "\n\n".join(f"Paragraph {n}: " + "words in a long answer " * 20 for n in range(25))
    yandex.script(Reply(text=answer, chunk_size=300, delay=0.01))
    await run_bot(stream_mode="auto", stream_interval=0.05)
    telegram.user_message(CHAT, "long one")
    expected = [part.text.strip() for part in split_rendered(render_markdown(answer))]
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == expected, timeout=15)
    assert len(expected) >= 3


async def test_draft_stop_button_keeps_what_was_written(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text=LONG, chunk_size=10, delay=0.1))
    await run_bot(stream_mode="draft", stream_interval=0.1)
    telegram.user_message(CHAT, "talk slowly")
    await telegram.wait_until(lambda: any(draft["text"] for draft in telegram.drafts(CHAT)))
    draft_id = telegram.drafts(CHAT)[-1]["draft_id"]
    telegram.add_update(
        {
            "stopped_message_generation": {
                "chat": {"id": CHAT, "type": "private", "first_name": "Alice"},
                "draft_id": draft_id,
            }
        }
    )
    await telegram.wait_until(
        lambda: any(text.endswith("⏹ Stopped.") for text in telegram.bot_texts(CHAT)), timeout=2
    )
    await yandex.wait_until(lambda: yandex.closed_by_client == 1, timeout=2)


async def test_refused_drafts_fall_back_to_editing_without_losing_text(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "When drafts are refused the reply is edited instead, and nothing is lost at all."
    yandex.script(Reply(text=answer, chunk_size=5, delay=0.03))
    telegram.fail_next(
        "sendMessageDraft", error_code=400, description="Bad Request: TEXTDRAFT_PEER_INVALID", times=100
    )
    await run_bot(stream_mode="draft", stream_interval=0.05)
    telegram.user_message(CHAT, "no drafts here")
    await telegram.wait_for_text(answer, CHAT)
    assert telegram.calls_of("editMessageText"), "the fallback streams by editing"


async def test_groups_use_edits_even_in_draft_mode(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text="Groups get an edited reply, since drafts are private-only.", chunk_size=5))
    await run_bot(stream_mode="draft")
    telegram.user_message(
        GROUP,
        "@test_assistant_bot hello group",
        chat_type="supergroup",
        user_id=5,
        entities=[{"type": "mention", "offset": 0, "length": 19}],
    )
    await telegram.wait_for_text("Groups get an edited reply, since drafts are private-only.", chat_id=GROUP)
    assert not telegram.calls_of("sendMessageDraft")


async def test_long_pause_refreshes_the_draft(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streamer_module, "DRAFT_REFRESH_SECONDS", 0.3)
    yandex.script(Reply(text="Slow start.", first_delay=1.2, chunk_size=20))
    await run_bot(stream_mode="draft", stream_interval=0.05)
    telegram.user_message(CHAT, "think hard")
    await telegram.wait_for_text("Slow start.", CHAT)
    empty = [draft for draft in telegram.drafts(CHAT) if draft["text"] == ""]
    assert len(empty) >= 3, "the 'Thinking…' draft is re-sent before it expires"


async def test_citations_are_listed_once_and_saved_with_the_answer(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    citations = [
        {"type": "file_citation", "file_id": "f1", "filename": "handbook.pdf", "index": 0},
        {"type": "file_citation", "file_id": "f1", "filename": "handbook.pdf", "index": 5},
        {"type": "url_citation", "url": "https://example.com/page"},
    ]
    yandex.script(Reply(text="Vacation is 28 days.", citations=citations, tool_calls=["file_search"]))
    app = await run_bot()
    telegram.user_message(CHAT, "how long is vacation?")
    await telegram.wait_until(lambda: "Sources:" in "".join(telegram.bot_texts(CHAT)))
    [reply] = telegram.bot_messages(CHAT)
    assert reply.text == ("Vacation is 28 days.\n\nSources:\n1. handbook.pdf\n2. https://example.com/page")
    assert any(e["type"] == "text_link" and e["url"] == "https://example.com/page" for e in reply.entities)
    [_, answer] = await saved_thread(app.store, str(CHAT), 2)
    assert answer.citations == ("handbook.pdf", "https://example.com/page")

    telegram.command(CHAT, "/history")
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT)[-1].startswith("Conversation history"))
    assert "Sources: handbook.pdf, https://example.com/page" in telegram.bot_texts(CHAT)[-1]


async def test_tool_activity_shows_a_status_until_text_arrives(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text="Found it in the documents.", tool_calls=["file_search"], first_delay=0.5))
    await run_bot()
    telegram.user_message(CHAT, "search")
    await telegram.wait_for_text("Found it in the documents.", CHAT)
    [reply] = telegram.bot_messages(CHAT)
    assert reply.history[0][0] == "🔎 Searching the knowledge base…"


@pytest.mark.parametrize(
    ("failure", "notice"),
    [
        ("incomplete_max_tokens", "✂️ The answer was cut at the length limit."),
        ("incomplete_content_filter", "⚠️ The answer was stopped by the content filter."),
        ("response_failed", "⚠️ The answer was interrupted by an error and may be incomplete."),
        ("sse_error_nested", "⚠️ The answer was interrupted by an error and may be incomplete."),
    ],
)
async def test_how_an_answer_ended_is_said_under_it(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, failure: str, notice: str
) -> None:
    yandex.script(Reply(text="Part of an answer that goes on", fail_after=14, failure=failure))
    await run_bot()
    telegram.user_message(CHAT, "go")
    await telegram.wait_until(lambda: any(text.endswith(notice) for text in telegram.bot_texts(CHAT)))
    assert telegram.bot_texts(CHAT) == [f"Part of an ans\n\n{notice}"]


async def test_minimal_event_streams_work(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text="Only deltas and completed.", minimal_events=True, chunk_size=0))
    await run_bot()
    telegram.user_message(CHAT, "minimal")
    await telegram.wait_for_text("Only deltas and completed.", CHAT)


# ------------------------------------------------------------- the final frame always reaches the user


async def test_entities_too_long_on_the_final_frame_sends_it_as_plain_text(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "Some **bold** words and `code` in an answer that is refused with its formatting."
    yandex.script(Reply(text=answer, chunk_size=8, delay=0.02))
    telegram.fail_next(
        "editMessageText",
        error_code=400,
        description="Bad Request: ENTITIES_TOO_LONG",
        times=1000,
        when=lambda params: bool(params.get("entities")),
    )
    await run_bot()
    telegram.user_message(CHAT, "format it")
    shown = render_markdown(answer).text
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == [shown], timeout=10)


async def test_an_unrecognised_refusal_of_the_final_edit_sends_a_new_message_instead(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    answer = "An answer whose message Telegram will not let us edit, for a reason we never heard of."
    yandex.script(Reply(text=answer, chunk_size=8, delay=0.05))
    await run_bot()
    question = telegram.user_message(CHAT, "edit fails")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    telegram.fail_next(
        "editMessageText", error_code=400, description="Bad Request: SOMETHING_NEW_IN_BOT_API", times=1000
    )
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == [answer], timeout=10)
    [reply] = telegram.bot_messages(CHAT)  # the stale half-written message is gone: shown once
    assert reply.reply_to_message_id == question["message_id"]
    assert "sending it as a new message" in caplog.text


async def test_a_closed_topic_gives_up_with_one_log_line_and_keeps_the_answer(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    answer = "Nobody can read this in a closed topic."
    yandex.script(Reply(text=answer))
    telegram.fail_next("sendMessage", error_code=400, description="Bad Request: TOPIC_CLOSED", times=1000)
    app = await run_bot()
    telegram.user_message(
        GROUP,
        "@test_assistant_bot are you there?",
        chat_type="supergroup",
        message_thread_id=7,
        entities=[{"type": "mention", "offset": 0, "length": 19}],
    )
    history = await saved_thread(app.store, f"{GROUP}:7", 2)
    assert history[-1].text == answer
    sends = telegram.calls_of("sendMessage", GROUP)
    # (formatted, then plain when it had entities), then a new message without the reply; no more.
    assert all(call.status == 400 for call in sends) and len(sends) <= 3
    assert not sends[-1].params.get("reply_parameters"), "the last try is a new message, not a reply"
    assert caplog.text.count("could not deliver the final answer") == 1


async def test_an_answer_full_of_links_and_code_loses_no_formatting(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    # 300 entities in under 4096 characters: as one message Telegram would drop 200 of them.
    answer = "\n".join(f"{n}: [doc](https://example.com/{n}) `c{n}`" for n in range(150))
    yandex.script(Reply(text=answer, chunk_size=400, delay=0.01))
    await run_bot()
    telegram.user_message(CHAT, "links please")
    expected = [part.text.strip() for part in split_rendered(render_markdown(answer))]
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == expected, timeout=15)
    assert len(expected) >= 3
    assert telegram.ignored_entities == []
    links = [e for m in telegram.bot_messages(CHAT) for e in m.entities if e["type"] == "text_link"]
    assert len(links) == 150
