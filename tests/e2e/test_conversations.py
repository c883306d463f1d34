"""End to end: topics, bursts, queues, context window, expiry, access, limits, groups, shutdown, recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from bot.keys import RedisKeys
from bot.threads.journal import AnswerJournal, AnswerRecord
from bot.threads.models import MessageStatus
from tests.conftest import TEST_REDIS_URL, BotRunner, Services
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import mention, saved_thread, thread_of

CHAT = 3003
FORUM = -1003003
GROUP = -1004004
SLOW = "A slow answer that takes its time to arrive, word by word, sentence by sentence. " * 10


async def test_each_forum_topic_has_its_own_thread(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("Answer in topic 10.", "Answer in topic 20.", "Second answer in topic 10.")
    app = await run_bot()
    for topic, question in ((10, "first in ten"), (20, "first in twenty")):
        text, entities = mention(question)
        telegram.user_message(
            FORUM,
            text,
            chat_type="supergroup",
            user_id=7,
            message_thread_id=topic,
            is_topic_message=True,
            entities=entities,
        )
        await telegram.wait_until(lambda t=topic: len(telegram.bot_messages(FORUM, t)) == 1)
    text, entities = mention("again in ten")
    telegram.user_message(
        FORUM,
        text,
        chat_type="supergroup",
        user_id=7,
        message_thread_id=10,
        is_topic_message=True,
        entities=entities,
    )
    await telegram.wait_until(
        lambda: telegram.bot_texts(FORUM, 10) == ["Answer in topic 10.", "Second answer in topic 10."],
        timeout=30,
    )
    # Topics share the group's flood limit: topic 20's final frame may still be waiting out a pause.
    await telegram.wait_until(lambda: telegram.bot_texts(FORUM, 20) == ["Answer in topic 20."], timeout=30)
    assert [item["content"] for item in yandex.last_input()] == [
        "Alice: first in ten",
        "Answer in topic 10.",
        "Alice: again in ten",
    ]
    actions = telegram.calls_of("sendChatAction", chat_id=FORUM)
    assert actions and all(call.params.get("message_thread_id") in (10, 20) for call in actions)
    assert len(await saved_thread(app.store, f"{FORUM}:20", 2)) == 2


async def test_reset_mid_stream_cancels_the_answer_and_nothing_leaks(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text=SLOW, chunk_size=10, delay=0.1), "A fresh answer.")
    app = await run_bot()
    telegram.user_message(CHAT, "slow please")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    telegram.command(CHAT, "/reset")
    await telegram.wait_for_text("Done: I forgot our conversation. Your next message starts a new one.", CHAT)
    await telegram.wait_until(lambda: telegram.bot_messages(CHAT)[0].text.endswith("⏹ Stopped."))
    await asyncio.sleep(0.3)
    assert await thread_of(app.store, str(CHAT)) == []
    telegram.user_message(CHAT, "new topic")
    await telegram.wait_for_text("A fresh answer.", CHAT)
    assert yandex.last_input() == [{"role": "user", "content": "new topic"}]


async def test_a_burst_of_messages_is_one_turn(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("One answer for the whole thought.")
    await run_bot(burst_seconds=0.5)
    for part in ("I have a question", "about Redis", "and its locks"):
        telegram.user_message(CHAT, part)
        await asyncio.sleep(0.1)
    await telegram.wait_for_text("One answer for the whole thought.", CHAT)
    await asyncio.sleep(0.7)
    assert len(yandex.requests) == 1
    assert yandex.last_input() == [
        {"role": "user", "content": "I have a question\nabout Redis\nand its locks"}
    ]
    assert telegram.bot_texts(CHAT) == ["One answer for the whole thought."]


async def test_a_long_wait_in_the_queue_is_announced_once(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    # Slow enough that the notice gets its turn in the chat's pace (about a call a second) while it waits.
    yandex.script(Reply(text="Slow first answer, done.", chunk_size=2, delay=0.4), "Quick second answer.")
    await run_bot(queue_notice_seconds=0.4)
    telegram.user_message(CHAT, "first")
    await telegram.wait_until(lambda: len(yandex.requests) == 1)
    second = telegram.user_message(CHAT, "second")
    await telegram.wait_for_text("Quick second answer.", CHAT)
    queued = [m for m in telegram.bot_messages(CHAT) if m.text.startswith("⏳")]
    assert len(queued) == 1 and queued[0].reply_to_message_id == second["message_id"]


async def test_a_short_wait_is_not_announced(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text="Fast.", chunk_size=2, delay=0.02), "Also fast.")
    await run_bot(queue_notice_seconds=3)
    telegram.user_message(CHAT, "first")
    telegram.user_message(CHAT, "second")
    await telegram.wait_for_text("Also fast.", CHAT)
    assert telegram.bot_texts(CHAT) == ["Fast.", "Also fast."]


async def test_user_is_told_once_when_old_turns_leave_the_context(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: "Noted."
    app = await run_bot(history_max_messages=3)
    notice = "ℹ️ This conversation has grown long: I now only see its recent part. /reset starts a fresh one."
    for number in range(4):
        telegram.user_message(CHAT, f"fact {number}")
        await telegram.wait_until(lambda n=number: len(telegram.bot_messages(CHAT)) == n + 1)
    assert [notice in text for text in telegram.bot_texts(CHAT)] == [False, False, True, False]
    assert len(yandex.last_input()) == 3
    for _ in range(100):  # the last answer is saved just after it is shown
        if len(await thread_of(app.store, str(CHAT))) == 8:
            break
        await asyncio.sleep(0.02)
    assert len(await thread_of(app.store, str(CHAT))) == 8, "/history still has everything"


async def test_an_idle_thread_expires(telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner) -> None:
    yandex.script("Remember me.")
    app = await run_bot(thread_ttl_days=1.5 / 86400)
    telegram.user_message(CHAT, "hello")
    await telegram.wait_for_text("Remember me.", CHAT)
    await asyncio.sleep(2)
    assert await thread_of(app.store, str(CHAT)) == []
    telegram.command(CHAT, "/history")
    await telegram.wait_for_text("The conversation is empty. Write me a question to start one.", CHAT)


async def test_strangers_get_one_refusal_and_cost_nothing(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    await run_bot(allowed_user_ids="1,2", admin_user_ids="99")
    for text in ("hi", "hello?", "/history"):
        telegram.user_message(555, text)
    await telegram.wait_for_text("Sorry, this bot is private. Ask its owner for access.", chat_id=555)
    await asyncio.sleep(0.3)
    assert telegram.bot_texts(555) == ["Sorry, this bot is private. Ask its owner for access."]
    assert not yandex.requests

    yandex.script("Welcome, admin.")
    telegram.user_message(99, "I am the admin")
    await telegram.wait_for_text("Welcome, admin.", chat_id=99)


async def test_allowed_chats_let_their_members_in(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("Hello group.")
    await run_bot(allowed_chat_ids=str(GROUP))
    text, entities = mention("hi")
    telegram.user_message(GROUP, text, chat_type="supergroup", user_id=42, entities=entities)
    await telegram.wait_for_text("Hello group.", chat_id=GROUP)


async def test_rate_limit_says_when_to_continue(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: "ok"
    await run_bot(rate_limit_per_minute=2)
    for number in range(3):
        telegram.user_message(CHAT, f"q{number}")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 3)
    refusals = [
        text for text in telegram.bot_texts(CHAT) if text.startswith("You are sending messages too fast")
    ]
    assert len(refusals) == 1 and "UTC" in refusals[0]
    assert len(yandex.requests) == 2


async def test_daily_token_budget_is_enforced(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(Reply(text="An answer that costs tokens.", usage_output_tokens=50))
    await run_bot(daily_token_budget=40)
    telegram.user_message(CHAT, "first")
    await telegram.wait_for_text("An answer that costs tokens.", CHAT)
    telegram.user_message(CHAT, "second")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 2)
    assert telegram.bot_texts(CHAT)[1].startswith("You have used today's limit of the AI service.")
    assert len(yandex.requests) == 1


async def test_groups_answer_only_mentions_and_replies(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script("Answer to the mention.", "Answer to the reply.")
    await run_bot()
    telegram.user_message(GROUP, "people talking among themselves", chat_type="supergroup", user_id=5)
    telegram.user_message(
        GROUP,
        "/help@other_bot",
        chat_type="supergroup",
        user_id=5,
        entities=[{"type": "bot_command", "offset": 0, "length": 15}],
    )
    sticker = {
        "file_id": "s",
        "file_unique_id": "s",
        "type": "regular",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
    }
    telegram.user_message(GROUP, None, chat_type="supergroup", user_id=5, extra={"sticker": sticker})
    await asyncio.sleep(0.3)
    assert not telegram.calls_of("sendChatAction", chat_id=GROUP), (
        "no 'typing…' for talk not meant for the bot"
    )
    text, entities = mention("what is 2+2?")
    asked = telegram.user_message(
        GROUP, text, chat_type="supergroup", user_id=5, first_name="Bob", entities=entities
    )
    await telegram.wait_for_text("Answer to the mention.", chat_id=GROUP)
    answer = telegram.bot_messages(GROUP)[0]
    assert answer.reply_to_message_id == asked["message_id"]
    assert yandex.last_input() == [{"role": "user", "content": "Bob: what is 2+2?"}]

    telegram.user_message(
        GROUP,
        "and 3+3?",
        chat_type="supergroup",
        user_id=6,
        first_name="Carol",
        reply_to_message_id=answer.message_id,
    )
    await telegram.wait_for_text("Answer to the reply.", chat_id=GROUP)
    assert yandex.last_input()[-1] == {"role": "user", "content": "Carol: and 3+3?"}
    assert telegram.bot_texts(GROUP) == ["Answer to the mention.", "Answer to the reply."]
    assert len(yandex.requests) == 2


async def test_shutdown_interrupts_answers_after_the_grace_period(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, make_settings, services: Services
) -> None:
    yandex.script(Reply(text=SLOW, chunk_size=10, delay=0.1))
    service = await services.start(make_settings(shutdown_grace_seconds=0.3))
    telegram.user_message(CHAT, "slow please")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    waiting = telegram.user_message(CHAT, "and this one waits in the queue")
    await asyncio.sleep(0.2)
    await services.stop(service)

    notice = "⚠️ Interrupted: the bot was restarted while writing this answer."
    reply, unanswered = telegram.bot_messages(CHAT)
    assert reply.text.endswith(notice)
    assert unanswered.text == "⚠️ The bot was restarted before it could answer this. Please send it again."
    assert unanswered.reply_to_message_id == waiting["message_id"]
    assert len(yandex.requests) == 1
    app2 = await run_bot()
    history = await thread_of(app2.store, str(CHAT))
    assert history[-1].status is MessageStatus.INCOMPLETE and SLOW.startswith(history[-1].text)


async def test_start_marks_answers_left_by_a_dead_process(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, redis, redis_prefix: str
) -> None:
    # What a killed process leaves behind: a half-written reply and its journal record, no turn lock.
    sent = await _send_as_bot(telegram, CHAT, "The first half of an answ")
    journal = AnswerJournal(redis, keys=RedisKeys(redis_prefix))
    await journal.begin(
        AnswerRecord(str(CHAT), CHAT, True, None, "t-dead", "en", [sent], "The first half of an answ")
    )
    await redis.set(f"{redis_prefix}chat:{CHAT}:thread", "t-dead")

    app = await run_bot()
    [reply] = telegram.bot_messages(CHAT)
    assert (
        reply.text
        == "The first half of an answ\n\n⚠️ Interrupted: the bot was restarted while writing this answer."
    )
    assert not await journal.all()
    [saved] = await thread_of(app.store, str(CHAT))
    assert saved.status is MessageStatus.INCOMPLETE


async def test_sigterm_stops_the_process_cleanly_and_a_killed_one_is_recovered(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, redis_prefix: str
) -> None:
    yandex.responder = lambda body: Reply(text=SLOW, chunk_size=10, delay=0.1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "YANDEX_", "REDIS_"))},
        "BOT_TOKEN": telegram.token,
        "TELEGRAM_API_URL": telegram.base_url,
        "YANDEX_API_KEY": yandex.api_key,
        "YANDEX_FOLDER_ID": yandex.folder_id,
        "YANDEX_BASE_URL": yandex.base_url,
        "REDIS_URL": TEST_REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
        "STREAM_INTERVAL": "0.1",
        "SHUTDOWN_GRACE_SECONDS": "0.3",
        "TURN_LEASE_SECONDS": "5",
        "BURST_SECONDS": "0",
    }

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    # SIGTERM: running answers are ended with a notice and the process exits 0.
    process = await start()
    telegram.user_message(CHAT, "slow one")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1, timeout=20)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    assert telegram.bot_messages(CHAT)[0].text.endswith("restarted while writing this answer.")

    # SIGKILL: the next start finds the half-written answer and marks it.
    process = await start()
    telegram.user_message(CHAT, "another slow one")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 2, timeout=20)
    await asyncio.sleep(0.5)  # a frame or two, so the journal has text
    process.kill()
    await process.wait()
    await asyncio.sleep(5.2)  # the dead process's turn lease runs out
    await run_bot()
    await telegram.wait_until(
        lambda: telegram.bot_messages(CHAT)[1].text.endswith("restarted while writing this answer."),
        timeout=10,
    )


async def _send_as_bot(telegram: FakeTelegram, chat_id: int, text: str) -> int:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    bot = Bot(telegram.token, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)))
    try:
        return (await bot.send_message(chat_id, text)).message_id
    finally:
        await bot.session.close()


async def test_many_quick_messages_keep_their_order(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: Reply(text=f"re: {body['input'][-1]['content']}", chunk_size=50)
    await run_bot(queue_notice_seconds=0)  # at Telegram's pace the last ones wait long enough for a notice
    questions = [f"question {number}" for number in range(8)]
    for question in questions:
        telegram.user_message(CHAT, question)
    await telegram.wait_until(
        lambda: len(telegram.bot_messages(CHAT)) == 8 and "re: question 7" in telegram.bot_texts(CHAT),
        timeout=60,  # eight answers with their ↻ buttons, at Telegram's pace of about one call a second
    )
    asked = [request.body["input"][-1]["content"] for request in yandex.requests]
    assert asked == questions
    assert telegram.bot_texts(CHAT) == [f"re: {question}" for question in questions]
