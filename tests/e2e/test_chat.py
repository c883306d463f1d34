"""End to end: the real bot (aiogram + openai + Redis) against the HTTP fakes of Telegram and Yandex."""

from __future__ import annotations

from itertools import pairwise

from bot.telegram.render import TELEGRAM_TEXT_LIMIT, render_markdown, split_rendered
from bot.threads.models import MessageStatus
from tests.conftest import BotRunner, Services
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import saved_thread, thread_of

CHAT = 1001


async def test_answer_streams_into_one_reply_with_intermediate_edits(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "Streaming is when the answer grows while the model writes it. " * 4
    yandex.script(Reply(text=answer, chunk_size=12, delay=0.03))
    await run_bot(stream_interval=0.1)
    question = telegram.user_message(CHAT, "What is streaming?")

    await telegram.wait_for_text(answer.strip(), CHAT)

    [reply] = telegram.bot_messages(CHAT)
    assert reply.reply_to_message_id == question["message_id"]
    versions = [text for text, _ in reply.history]
    assert len(versions) >= 3, "the reply should grow through several edits"
    for earlier, later in pairwise(versions):
        assert answer.strip().startswith(earlier.strip()) and len(earlier) <= len(later)
    assert "typing" in telegram.chat_actions(CHAT)
    # Pacing: no two updates of the reply closer than the interval (small scheduling slack).
    updates = [call.at for call in telegram.calls if call.method in {"sendMessage", "editMessageText"}]
    gaps = [b - a for a, b in pairwise(updates)]
    assert min(gaps) >= 0.09
    request = yandex.requests[-1]
    assert request.body["store"] is False
    assert request.body["model"] == f"gpt://{yandex.folder_id}/yandexgpt-5.1"
    assert request.headers["openai-project"] == yandex.folder_id


async def test_markdown_is_sent_as_entities_never_raw_markup(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("Use **bold** and `code` for List<String>.")
    await run_bot()
    telegram.user_message(CHAT, "format please")

    await telegram.wait_for_text("Use bold and code for List<String>.", CHAT)
    [reply] = telegram.bot_messages(CHAT)
    assert "**" not in reply.text
    kinds = {entity["type"] for entity in reply.entities}
    assert {"bold", "code"} <= kinds


async def test_ten_thousand_characters_are_split_without_loss(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    paragraph = "This sentence belongs to a long answer about splitting text. " * 8
    answer = "\n\n".join(f"Part {index}: {paragraph.strip()}" for index in range(21))
    assert len(answer) > 10_000
    yandex.script(Reply(text=answer, chunk_size=400))
    await run_bot()
    telegram.user_message(CHAT, "write a lot")

    rendered = render_markdown(answer)
    parts = split_rendered(rendered)
    # Telegram strips whitespace around a message's text; the parts themselves carry all of it.
    expected = [part.text.strip() for part in parts]
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == expected, timeout=15)
    assert len(parts) >= 3
    assert "".join(part.text for part in parts) == rendered.text
    assert all(len(message.text) <= TELEGRAM_TEXT_LIMIT for message in telegram.bot_messages(CHAT))
    # Split at paragraph boundaries: every part but the last ends a paragraph.
    assert all(part.text.endswith("\n\n") for part in parts[:-1])


async def test_follow_up_question_carries_the_conversation(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("Paris is the capital of France.", "About 2.1 million people.")
    await run_bot()
    telegram.user_message(CHAT, "What is the capital of France?")
    await telegram.wait_for_text("Paris is the capital of France.", CHAT)
    telegram.user_message(CHAT, "How many people live there?")
    await telegram.wait_for_text("About 2.1 million people.", CHAT)

    assert yandex.last_input() == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris is the capital of France."},
        {"role": "user", "content": "How many people live there?"},
    ]
    assert yandex.requests[-1].body["instructions"]


async def test_history_lists_the_thread_and_reset_erases_it(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    app = await run_bot()
    telegram.command(CHAT, "/history")
    await telegram.wait_for_text("The conversation is empty. Write me a question to start one.", CHAT)

    yandex.script("Hello there!")
    telegram.user_message(CHAT, "Hi bot")
    await telegram.wait_for_text("Hello there!", CHAT)
    telegram.command(CHAT, "/history")
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT)[-1].startswith("Conversation history"))
    listing = telegram.bot_texts(CHAT)[-1]
    assert listing.index("You ·") < listing.index("Hi bot") < listing.index("Assistant ·")
    assert listing.index("Assistant ·") < listing.index("Hello there!")

    telegram.command(CHAT, "/reset")
    await telegram.wait_for_text("Done: I forgot our conversation. Your next message starts a new one.", CHAT)
    assert await thread_of(app.store, str(CHAT)) == []
    yandex.script("Fresh start.")
    telegram.user_message(CHAT, "Who am I?")
    await telegram.wait_for_text("Fresh start.", CHAT)
    assert yandex.last_input() == [{"role": "user", "content": "Who am I?"}]
    # The old thread's messages are gone from Redis, not just unlinked.
    keys = [key async for key in app.redis.scan_iter(match=f"{app.settings.redis_prefix}thread:*")]
    assert len(keys) == 1


async def test_two_messages_in_one_chat_are_answered_in_order(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text="First answer, slowly.", chunk_size=4, delay=0.05), "Second answer.")
    await run_bot()
    first = telegram.user_message(CHAT, "first question")
    second = telegram.user_message(CHAT, "second question")

    await telegram.wait_for_text("Second answer.", CHAT)
    replies = telegram.bot_messages(CHAT)
    assert [reply.text for reply in replies] == ["First answer, slowly.", "Second answer."]
    assert [reply.reply_to_message_id for reply in replies] == [first["message_id"], second["message_id"]]
    # The second request went out after the first answer was finished, and includes it.
    assert yandex.last_input()[-3:] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "First answer, slowly."},
        {"role": "user", "content": "second question"},
    ]


async def test_different_chats_stream_concurrently(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: Reply(text="Answer for everyone.", chunk_size=2, delay=0.05)
    await run_bot()
    for chat in (1, 2, 3):
        telegram.user_message(chat, "hello")
    await yandex.wait_until(lambda: yandex.open_streams == 3, timeout=5)
    for chat in (1, 2, 3):
        await telegram.wait_for_text("Answer for everyone.", chat_id=chat)


async def test_flood_control_is_honoured_and_the_final_text_delivered(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "One two three four five six seven eight nine ten eleven twelve."
    yandex.script(Reply(text=answer, chunk_size=5, delay=0.05))
    telegram.fail_next(
        "editMessageText", error_code=429, description="Too Many Requests: retry after 1", retry_after=1
    )
    await run_bot()
    telegram.user_message(CHAT, "count")

    await telegram.wait_for_text(answer, CHAT)
    edits = telegram.calls_of("editMessageText", chat_id=CHAT)
    flood = next(index for index, call in enumerate(edits) if call.status == 429)
    assert flood + 1 < len(edits) + 1
    later = edits[flood + 1 :]
    assert later, "the answer must be finished after the pause"
    assert later[0].at - edits[flood].at >= 0.95, "nothing may be sent before retry_after is over"


async def test_rejected_formatting_falls_back_to_plain_text(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("Some **bold** words.")
    telegram.fail_next(
        "sendMessage",
        error_code=400,
        description="Bad Request: can't parse entities: bad offset",
        chat_id=CHAT,
    )
    await run_bot()
    telegram.user_message(CHAT, "hi")
    await telegram.wait_for_text("Some bold words.", CHAT)
    [reply] = telegram.bot_messages(CHAT)
    assert reply.entities == []


async def test_model_error_mid_stream_keeps_partial_text_with_a_notice(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(
        Reply(text="The first part arrives, then the server fails.", chunk_size=5, fail_after=20),
        "Still here.",
    )
    app = await run_bot()
    telegram.user_message(CHAT, "tell me")
    notice = "⚠️ The answer was interrupted by an error and may be incomplete."
    await telegram.wait_until(lambda: any(notice in text for text in telegram.bot_texts(CHAT)))
    [reply] = telegram.bot_messages(CHAT)
    assert reply.text.startswith("The first part arriv")
    stored = await saved_thread(app.store, str(CHAT), 2)
    assert stored[-1].role == "assistant" and stored[-1].status is MessageStatus.INCOMPLETE

    telegram.user_message(CHAT, "again")
    await telegram.wait_for_text("Still here.", CHAT)


async def test_model_failure_before_any_text_gets_a_friendly_reply(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(
        Reply(http_status=429), Reply(http_status=500), Reply(text="x", failure="disconnect", fail_after=0)
    )
    # No patience for the 429 here (tests/e2e/test_yandex_limits.py has the retries).
    await run_bot(yandex_rate_limit_wait_seconds=0)
    for text in ("one", "two", "three"):
        telegram.user_message(CHAT, text)
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 3, timeout=10)
    assert telegram.bot_texts(CHAT) == [
        "The AI service is busy right now. Please try again in a minute.",
        "The AI service is unavailable right now. Please try again later.",
        "The AI service is unavailable right now. Please try again later.",
    ]


async def test_a_restart_keeps_the_thread(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, make_settings, services: Services
) -> None:
    first = await services.start(make_settings())
    yandex.script("Noted: your name is Ann.")
    telegram.user_message(CHAT, "My name is Ann.")
    await telegram.wait_for_text("Noted: your name is Ann.", CHAT)
    await services.stop(first)

    await run_bot()
    yandex.script("Your name is Ann.")
    telegram.user_message(CHAT, "What is my name?")
    await telegram.wait_for_text("Your name is Ann.", CHAT)
    assert [item["content"] for item in yandex.last_input()] == [
        "My name is Ann.",
        "Noted: your name is Ann.",
        "What is my name?",
    ]


async def test_non_text_messages_get_a_clear_reply(telegram: FakeTelegram, run_bot: BotRunner) -> None:
    await run_bot()
    sticker = {
        "file_id": "s1",
        "file_unique_id": "u1",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    telegram.user_message(CHAT, None, extra={"sticker": sticker})
    await telegram.wait_for_text(
        "Sorry, I can only read text messages. Please write your question as text.", CHAT
    )


async def test_russian_users_get_russian_texts_and_commands_are_registered(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    await run_bot()
    telegram.command(CHAT, "/history", language_code="ru")
    await telegram.wait_for_text("Разговор пуст. Напишите вопрос, чтобы начать.", CHAT)
    registered = {key: [item["command"] for item in value] for key, value in telegram.commands.items()}
    assert len(registered) == 2
    menu = ["start", "help", "history", "reset", "stop", "retry", "mode", "instructions", "model"]
    menu += ["settings", "usage", "stats", "kb", "voice", "image"]
    assert all(commands == menu for commands in registered.values())
    russian = {item["command"]: item["description"] for item in telegram.commands_for("ru")}
    assert russian["retry"] == "Ответить на последний вопрос заново"
    assert russian["mode"] == "Выбрать режим ассистента"


async def test_unknown_buttons_and_commands_get_an_answer(telegram: FakeTelegram, run_bot: BotRunner) -> None:
    await run_bot()
    sent = telegram.user_message(CHAT, "placeholder")  # any message to hang an old button on
    telegram.callback_query(CHAT, sent["message_id"], "some-old-button")
    await telegram.wait_until(lambda: len(telegram.callback_answers) == 1)
    telegram.command(CHAT, "/nonsense")
    await telegram.wait_until(
        lambda: any(text.startswith("Write a question") for text in telegram.bot_texts(CHAT))
    )


async def test_without_redis_url_the_embedded_store_works(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, caplog
) -> None:
    yandex.script("Kept in memory.", "Still remembered.")
    app = await run_bot(redis_url=None)
    telegram.user_message(CHAT, "remember this")
    await telegram.wait_for_text("Kept in memory.", CHAT)
    telegram.user_message(CHAT, "and now?")
    await telegram.wait_for_text("Still remembered.", CHAT)
    assert len(yandex.last_input()) == 3
    assert app.store_description == "in-memory (fakeredis)"
    assert "NOTHING SURVIVES A RESTART" in caplog.text
