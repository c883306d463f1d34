"""Issue 10, defect 7 and the fault suite's Redis cases: a Redis restart or a ~10 s stall (SIGSTOP)
mid-answer. The process survives, questions asked meanwhile are answered once Redis is back (or get a
plain reply), no thread is corrupted and /history afterwards is intact."""

from __future__ import annotations

import asyncio
import json
import logging
import signal

import pytest
from redis.asyncio import Redis

from bot.keys import RedisKeys
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.faults.conftest import BotProcesses, RedisServer

CHAT = 5201
OTHER = 5202
SLOW = "A slow answer that keeps coming while Redis is away, word by word. " * 8
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again."


def echo(body: dict[str, object]) -> Reply:
    asked = body["input"][-1]["content"]  # type: ignore[index]
    if "slow" in str(asked):
        return Reply(text=SLOW, chunk_size=12, delay=0.15)
    return Reply(text=f"Answer to: {asked}")


async def thread_roles(redis_url: str, keys: RedisKeys, chat_key: str) -> list[tuple[str, str, str]]:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        thread_id = await client.get(keys.chat_thread(chat_key))
        assert thread_id is not None
        raw = await client.lrange(keys.thread_messages(thread_id), 0, -1)
    finally:
        await client.aclose()
    return [(m["role"], m["text"], m.get("status", "complete")) for m in map(json.loads, raw)]


async def test_a_redis_restart_between_two_questions_loses_neither(
    private_redis: RedisServer,  # first: torn down after the bot, which stops while Redis still runs
    telegram: FakeTelegram,
    yandex: FakeYandex,
    run_bot: BotRunner,
    keys: RedisKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    yandex.responder = echo
    await run_bot(redis_url=private_redis.url)
    telegram.user_message(CHAT, "first question")
    await telegram.wait_for_text("Answer to: first question", CHAT, timeout=20)

    caplog.clear()
    # A restart (same port, same data) that takes two seconds, the second question asked meanwhile:
    # every pooled connection is dead, and new ones are refused until Redis is back.
    await private_redis.stop()
    telegram.user_message(CHAT, "second question")
    await asyncio.sleep(2)
    await private_redis.start()
    await telegram.wait_for_text("Answer to: second question", CHAT, timeout=30)

    assert INTERNAL_ERROR not in telegram.bot_texts(CHAT)
    assert await thread_roles(private_redis.url, keys, str(CHAT)) == [
        ("user", "first question", "complete"),
        ("assistant", "Answer to: first question", "complete"),
        ("user", "second question", "complete"),
        ("assistant", "Answer to: second question", "complete"),
    ]
    # The stop channel's listener: one line when it lost Redis, one when it was back; no tracebacks.
    channel = [r for r in caplog.records if r.name == "bot.threads.signals"]
    assert len(channel) <= 2 and not any(r.exc_info for r in channel), [r.getMessage() for r in channel]


async def outage_mid_answer(
    telegram: FakeTelegram, bots: BotProcesses, private_redis: RedisServer, keys: RedisKeys, *, stall: bool
) -> str:
    process = await bots.start(REDIS_URL=private_redis.url, LOG_LEVEL="INFO")
    telegram.user_message(CHAT, "warm up")
    await telegram.wait_for_text("Answer to: warm up", CHAT, timeout=20)
    telegram.user_message(CHAT, "a slow one please")
    await telegram.wait_until(lambda: len(telegram.bot_texts(CHAT)) == 2, timeout=20)

    if stall:
        private_redis.pause()
    else:
        await private_redis.stop()
    await asyncio.sleep(1)
    # Asked while Redis is away: in the busy chat and in another one.
    telegram.user_message(CHAT, "asked during the outage")
    telegram.user_message(OTHER, "hello from elsewhere")
    await asyncio.sleep(9)
    if stall:
        private_redis.resume()
    else:
        await private_redis.start()

    # Answered once Redis is back (or, had it stayed away too long, told so in plain words).
    def settled(chat: int, text: str) -> bool:
        answered = f"Answer to: {text}" in telegram.bot_texts(chat)
        # A stall shorter than the socket timeout is waited out; a server down longer than the retries
        # (about 7 s) gets the plain reply.
        return answered or (not stall and INTERNAL_ERROR in telegram.bot_texts(chat))

    await telegram.wait_until(lambda: settled(OTHER, "hello from elsewhere"), timeout=60)
    await telegram.wait_until(lambda: settled(CHAT, "asked during the outage"), timeout=60)
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT)[1].startswith(SLOW.strip()[:200]), timeout=60)
    assert process.process is not None and process.process.returncode is None, "the process died"

    # The thread is whole: every question followed by its answer, none twice, in order.
    for _ in range(100):  # the last answer is saved just after its final frame
        roles = await thread_roles(private_redis.url, keys, str(CHAT))
        if len(roles) % 2 == 0 and len(roles) >= 4:
            break
        await asyncio.sleep(0.1)
    asked = [text for role, text, _ in roles if role == "user"]
    assert asked[:2] == ["warm up", "a slow one please"]
    assert len(asked) == len(set(asked)), f"a question saved twice: {roles}"
    assert [role for role, _, _ in roles] == ["user", "assistant"] * (len(roles) // 2)
    assert roles[3] == ("assistant", SLOW.strip(), "complete") or roles[3][1] == SLOW

    # /history afterwards shows the conversation.
    telegram.command(CHAT, "/history")
    await telegram.wait_until(
        lambda: any(
            "Conversation history" in t and "a slow one please" in t for t in telegram.bot_texts(CHAT)
        ),
        timeout=20,
    )
    # The same question now works as ever.
    telegram.user_message(OTHER, "after the outage")
    await telegram.wait_for_text("Answer to: after the outage", OTHER, timeout=20)
    process.signal(signal.SIGTERM)
    assert await process.wait() == 0
    return process.log


async def test_redis_stalled_for_ten_seconds_mid_answer(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    bots: BotProcesses,
    private_redis: RedisServer,
    keys: RedisKeys,
) -> None:
    yandex.responder = echo
    log = await outage_mid_answer(telegram, bots, private_redis, keys, stall=True)
    assert "Traceback" not in log, log


async def test_redis_restarted_mid_answer(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    bots: BotProcesses,
    private_redis: RedisServer,
    keys: RedisKeys,
) -> None:
    yandex.responder = echo
    log = await outage_mid_answer(telegram, bots, private_redis, keys, stall=False)
    # The stop channel said it lost Redis and got it back, each once, without a traceback.
    assert log.count("the stop channel (Redis pub/sub) lost") == 1, log
    assert log.count("the stop channel (Redis pub/sub) restored") == 1, log
    logging.getLogger(__name__).info("log of the process:\n%s", log)
