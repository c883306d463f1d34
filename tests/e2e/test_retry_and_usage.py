"""End to end: /retry and the ↻ button, /usage, /stats and /help, with Telegram's flood limits on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.threads.models import MessageStatus
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import callback_data, saved_thread, thread_of

CHAT = 6006
OTHER = 6007
GROUP = -1006006
ADMIN = 4242
SLOW = "A slow answer that takes its time to arrive, word by word, sentence by sentence. " * 10


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """Flood control as Telegram has it: every test here must also pass under its limits."""
    fake = FakeTelegram(private_interval=1.0, group_per_minute=20, global_per_second=30)
    await fake.start()
    yield fake
    await fake.stop()


def answer_to(telegram: FakeTelegram, chat: int, text: str) -> SentMessage:
    return next(m for m in telegram.bot_messages(chat) if m.text == text)


async def retry_button_on(telegram: FakeTelegram, chat: int, text: str) -> SentMessage:
    """The answer showing `text`, once it carries the ↻ button."""
    await telegram.wait_until(
        lambda: any(m.text == text and "retry" in callback_data(m) for m in telegram.bot_messages(chat)),
        timeout=15,
    )
    return answer_to(telegram, chat, text)


async def press(telegram: FakeTelegram, chat: int, message: SentMessage, data: str) -> dict[str, Any]:
    query = telegram.callback_query(chat, message.message_id, data)
    await telegram.wait_until(
        lambda: any(answer["callback_query_id"] == query["id"] for answer in telegram.callback_answers),
        timeout=15,
    )
    return next(answer for answer in telegram.callback_answers if answer["callback_query_id"] == query["id"])


# ---------------------------------------------------------------------------------------- /retry and ↻


async def test_retry_answers_the_last_question_again_in_place_of_its_answer(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("Paris is the capital.", "Rome, then.", "Second take on Rome.")
    app = await run_bot()
    telegram.user_message(CHAT, "capital of France?")
    first = await retry_button_on(telegram, CHAT, "Paris is the capital.")
    await saved_thread(app.store, str(CHAT), 2)
    telegram.user_message(CHAT, "and Italy?")
    second = await retry_button_on(telegram, CHAT, "Rome, then.")
    await telegram.wait_until(lambda: "retry" not in callback_data(first), timeout=15)
    await saved_thread(app.store, str(CHAT), 4)

    telegram.command(CHAT, "/retry")
    again = await retry_button_on(telegram, CHAT, "Second take on Rome.")
    assert [item["content"] for item in yandex.last_input()] == [
        "capital of France?",
        "Paris is the capital.",
        "and Italy?",
    ], "the answer being replaced is not sent to the model"
    await telegram.wait_until(lambda: "retry" not in callback_data(second), timeout=15)
    assert second.text == "Rome, then.", "the old answer stays on screen; the thread keeps only the new one"
    for _ in range(200):
        thread = await thread_of(app.store, str(CHAT))
        if thread[-1].text == "Second take on Rome.":
            break
        await asyncio.sleep(0.02)
    assert [message.text for message in thread] == [
        "capital of France?",
        "Paris is the capital.",
        "and Italy?",
        "Second take on Rome.",
    ]
    assert "retry" in callback_data(again)

    telegram.command(CHAT, "/history")
    await telegram.wait_until(
        lambda: any((m.text or "").startswith("Conversation history") for m in telegram.bot_messages(CHAT)),
        timeout=15,
    )
    listing = next(
        m for m in telegram.bot_messages(CHAT) if (m.text or "").startswith("Conversation history")
    )
    assert "Second take on Rome." in (listing.text or "") and "Rome, then." not in (listing.text or "")


async def test_the_retry_button_regenerates_and_an_older_one_is_refused(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("One.", "Two.", "Two, better.")
    app = await run_bot()
    telegram.user_message(CHAT, "first")
    one = await retry_button_on(telegram, CHAT, "One.")
    await saved_thread(app.store, str(CHAT), 2)
    telegram.user_message(CHAT, "second")
    two = await retry_button_on(telegram, CHAT, "Two.")
    await saved_thread(app.store, str(CHAT), 4)

    # A client that still shows the old button (or a press racing the move) is told, not obeyed.
    stale = await press(telegram, CHAT, one, "retry")
    assert stale["text"] == "Only the last answer can be answered again."
    assert len(yandex.requests) == 2

    pressed = await press(telegram, CHAT, two, "retry")
    assert pressed["text"] == "Answering it again."
    await retry_button_on(telegram, CHAT, "Two, better.")
    assert [message.text for message in await saved_thread(app.store, str(CHAT), 4)][-1] in (
        "Two.",
        "Two, better.",
    )
    for _ in range(200):
        if (await thread_of(app.store, str(CHAT)))[-1].text == "Two, better.":
            break
        await asyncio.sleep(0.02)
    assert [message.text for message in await thread_of(app.store, str(CHAT))] == [
        "first",
        "One.",
        "second",
        "Two, better.",
    ]


async def test_answers_to_quick_questions_leave_the_button_to_the_last(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: f"re: {body['input'][-1]['content']}"
    app = await run_bot()
    for number in range(4):
        telegram.user_message(CHAT, f"quick {number}")
    last = await retry_button_on(telegram, CHAT, "re: quick 3")
    await saved_thread(app.store, str(CHAT), 8)
    assert [m.message_id for m in telegram.bot_messages(CHAT) if "retry" in callback_data(m)] == [
        last.message_id
    ]
    # Answers a newer question was already waiting for never got the button: no calls to add and remove it.
    assert len(telegram.calls_of("editMessageReplyMarkup", chat_id=CHAT)) <= 3


async def test_retry_after_a_failure_and_with_nothing_to_answer(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    app = await run_bot()
    telegram.command(CHAT, "/retry")
    await telegram.wait_for_text(
        "There is nothing to answer again yet: ask me a question first.", CHAT, timeout=15
    )
    assert not yandex.requests

    yandex.script(Reply(http_status=503), "It works now.")
    telegram.user_message(CHAT, "are you there?")
    failed = await retry_button_on(
        telegram, CHAT, "The AI service is unavailable right now. Please try again later."
    )
    pressed = await press(telegram, CHAT, failed, "retry")
    assert pressed["text"] == "Answering it again."
    await retry_button_on(telegram, CHAT, "It works now.")
    thread = await saved_thread(app.store, str(CHAT), 2)
    assert [(m.role, m.text) for m in thread] == [("user", "are you there?"), ("assistant", "It works now.")]


async def test_a_retry_waits_its_turn_and_can_be_stopped(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(
        Reply(text="Short first answer, slowly.", chunk_size=4, delay=0.1),
        Reply(text=SLOW, chunk_size=10, delay=0.1),
    )
    app = await run_bot()
    telegram.user_message(CHAT, "tell me")
    await yandex.wait_until(lambda: len(yandex.requests) == 1)
    telegram.command(CHAT, "/retry")  # while the first answer is still being written
    await yandex.wait_until(lambda: len(yandex.requests) == 2, timeout=15)
    assert await saved_thread(app.store, str(CHAT), 2), "the retry began only after the answer was saved"
    assert [item["content"] for item in yandex.last_input()] == ["tell me"]

    await telegram.wait_until(lambda: any(SLOW[:30] in (m.text or "") for m in telegram.bot_messages(CHAT)))
    telegram.command(CHAT, "/stop")
    await telegram.wait_for_text("Stopping the answer.", CHAT, timeout=15)
    await yandex.wait_until(lambda: yandex.closed_by_client == 1, timeout=5)
    for _ in range(300):
        last = (await thread_of(app.store, str(CHAT)))[-1]
        if last.status is MessageStatus.INCOMPLETE:
            break
        await asyncio.sleep(0.02)
    thread = await thread_of(app.store, str(CHAT))
    assert (
        len(thread) == 2
        and SLOW.startswith(thread[-1].text)
        and thread[-1].status is MessageStatus.INCOMPLETE
    )


# ---------------------------------------------------------------------------------------- /usage, /stats


async def test_usage_shows_questions_tokens_and_what_the_limits_leave(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: "Fine."
    app = await run_bot(rate_limit_per_minute=10, daily_token_budget=100000)
    for number in range(2):
        telegram.user_message(CHAT, f"question {number}")
        await saved_thread(app.store, str(CHAT), 2 * (number + 1))
    # The ↻ button comes after the answer is counted: once the last answer has it, /usage has the day.
    await telegram.wait_until(lambda: "retry" in callback_data(telegram.bot_messages(CHAT)[-1]), timeout=15)
    tokens = sum(yandex.reported_tokens)
    assert len(yandex.reported_tokens) == 2
    telegram.command(CHAT, "/usage")
    await telegram.wait_for_text(
        "Your usage today (UTC)\n"
        "Questions: 2\n"
        f"Tokens: {tokens}\n"
        "Questions per minute: at most 10, 8 left this minute.\n"
        f"Tokens per day: at most 100000, {100000 - tokens} left until 00:00 UTC.",
        CHAT,
        timeout=15,
    )
    telegram.command(OTHER, "/usage", language_code="ru")
    await telegram.wait_for_text(
        "Ваше использование за сегодня (UTC)\nВопросов: 0\nТокенов: 0\n"
        "Вопросов в минуту: не больше 10, в эту минуту осталось 10.\n"
        "Токенов в день: не больше 100000, осталось 100000 до 00:00 UTC.",
        OTHER,
        timeout=15,
    )


async def test_usage_of_an_admin_and_without_limits(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    await run_bot(rate_limit_per_minute=0, admin_user_ids=str(ADMIN))
    telegram.command(CHAT, "/usage")
    await telegram.wait_for_text("Your usage today (UTC)\nQuestions: 0\nTokens: 0\nNo limits are set.", CHAT)
    telegram.command(ADMIN, "/usage")
    await telegram.wait_for_text(
        "Your usage today (UTC)\nQuestions: 0\nTokens: 0\n"
        "You are an admin of the bot: no limits apply to you.",
        ADMIN,
        timeout=15,
    )


async def test_stats_are_for_admins_and_count_chats_users_answers_and_failures(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("One.", Reply(http_status=503), "Three.")
    app = await run_bot(admin_user_ids=str(ADMIN))
    telegram.user_message(CHAT, "hi")
    await saved_thread(app.store, str(CHAT), 2)
    telegram.user_message(OTHER, "hello")
    await retry_button_on(telegram, OTHER, "The AI service is unavailable right now. Please try again later.")
    telegram.user_message(CHAT, "again")
    await retry_button_on(telegram, CHAT, "Three.")  # it comes after the answer's statistics
    await app.redis.hset(app.keys.kb_documents, "file-1", '{"name": "a.pdf", "size": 2048}')
    await yandex.wait_until(lambda: len(yandex.reported_tokens) == 2)
    tokens = sum(yandex.reported_tokens)

    telegram.command(CHAT, "/stats")
    await telegram.wait_for_text("Sorry, the statistics are for the bot's admins only.", CHAT, timeout=15)
    telegram.command(ADMIN, "/stats")
    await telegram.wait_for_text(
        "Bot statistics (UTC days)\n"
        "Active chats: 2 today, 2 in 7 days\n"
        "Active users: 2 today, 2 in 7 days\n"
        "Answers: 3 today, 3 in 7 days\n"
        f"Tokens: {tokens} today, {tokens} in 7 days\n"
        "Stopped answers: 0 today, 0 in 7 days\n"
        "Failures in 7 days: service unavailable 1\n"
        "Knowledge base: 1 document(s), 2.0 KB",
        ADMIN,
        timeout=15,
    )


async def test_help_explains_the_new_commands_in_both_languages(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    await run_bot()
    telegram.command(CHAT, "/help")
    telegram.command(OTHER, "/help", language_code="ru")
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) and telegram.bot_texts(OTHER), timeout=15)
    english, russian = telegram.bot_texts(CHAT)[0], telegram.bot_texts(OTHER)[0]
    for command in ("/retry", "/mode", "/instructions", "/model", "/settings", "/usage", "/reset"):
        assert command in english and command in russian
    assert "in groups only admins may change it" in english
    assert "в группах менять его могут только администраторы" in russian
