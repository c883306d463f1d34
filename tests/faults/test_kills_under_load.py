"""The fault suite: SIGTERM and SIGKILL while 20 chats are being answered. Nothing is lost: every
interrupted answer keeps its text, is marked "interrupted" in Telegram and saved as incomplete."""

from __future__ import annotations

import asyncio
import json
import signal
import time

from redis.asyncio import Redis

from bot.keys import RedisKeys
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.fakes.yandex.quota import GenerationQuotaFake
from tests.faults.conftest import BotProcesses

CHATS = [5600 + n for n in range(20)]
SLOW = "Under load every answer streams slowly, one short piece after another, for a long while. " * 12
NOTICE = "⚠️ Interrupted: the bot was restarted while writing this answer."
LOAD = {"YANDEX_MAX_CONCURRENT_GENERATIONS": "20", "QUEUE_NOTICE_SECONDS": "600"}


async def ask_everyone(telegram: FakeTelegram, text: str, answers: int) -> None:
    for chat in CHATS:
        telegram.user_message(chat, text)

    def all_streaming() -> bool:
        return all(len(t := telegram.bot_texts(chat)) == answers and len(t[-1]) > 20 for chat in CHATS)

    await telegram.wait_until(all_streaming, timeout=60)


async def saved(redis: Redis, keys: RedisKeys, chat: int) -> list[dict[str, str]]:
    thread_id = await redis.get(keys.chat_thread(str(chat)))
    if thread_id is None:
        return []
    return [json.loads(raw) for raw in await redis.lrange(keys.thread_messages(thread_id), 0, -1)]


async def assert_all_interrupted_and_saved(
    telegram: FakeTelegram, redis: Redis, keys: RedisKeys, answers: int
) -> None:
    for chat in CHATS:
        reply = telegram.bot_texts(chat)[answers - 1]
        assert reply.endswith(NOTICE), f"chat {chat}: {reply[-80:]!r}"
        assert SLOW.startswith(reply.removesuffix("\n\n" + NOTICE))
    for _ in range(100):
        threads = [await saved(redis, keys, chat) for chat in CHATS]
        if all(len(thread) == 2 * answers for thread in threads):
            break
        await asyncio.sleep(0.1)
    for chat, thread in zip(CHATS, threads, strict=True):
        assert [m["role"] for m in thread] == ["user", "assistant"] * answers, f"chat {chat}: {thread}"
        last = thread[-1]
        assert last["status"] == "incomplete" and SLOW.startswith(last["text"]), f"chat {chat}"
    for _ in range(100):  # each record is removed just after its answer is saved
        if not await redis.hgetall(keys.answering):
            break
        await asyncio.sleep(0.1)
    assert not await redis.hgetall(keys.answering)


async def test_sigterm_and_sigkill_mid_stream_in_20_chats_lose_nothing(
    telegram: FakeTelegram, yandex: FakeYandex, bots: BotProcesses, redis: Redis, keys: RedisKeys
) -> None:
    yandex.quota = GenerationQuotaFake(limit=20)
    yandex.responder = lambda body: Reply(text=SLOW, chunk_size=10, delay=0.2)

    # SIGTERM: the grace period, then every running answer ends with the notice; exit code 0.
    process = await bots.start(**LOAD)
    await ask_everyone(telegram, "slow one", answers=1)
    process.signal(signal.SIGTERM)
    assert await process.wait(timeout=60) == 0
    await assert_all_interrupted_and_saved(telegram, redis, keys, answers=1)
    assert "Traceback" not in process.log

    # SIGKILL, and a restart one second later: the new process closes all 20 once the dead one's
    # heartbeat has expired.
    process = await bots.start(**LOAD)
    await ask_everyone(telegram, "another slow one", answers=2)
    await process.kill()
    killed_at = time.monotonic()
    await asyncio.sleep(1)
    await bots.start(**LOAD)
    await telegram.wait_until(
        lambda: all(telegram.bot_texts(chat)[1].endswith(NOTICE) for chat in CHATS), timeout=60
    )
    print(f"all 20 answers marked {time.monotonic() - killed_at:.1f} s after the SIGKILL")
    await assert_all_interrupted_and_saved(telegram, redis, keys, answers=2)
