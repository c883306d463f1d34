"""Issue 10, defect 1: a half-written answer of a dead process gets its "interrupted" notice within
about PROCESS_HEARTBEAT_SECONDS + RECOVERY_SWEEP_SECONDS of the crash, however fast the restart, and in
a multi-process deployment also when nothing restarts (a live process closes it)."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.threads.models import MessageStatus
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.faults.conftest import BotProcesses, free_port, post_update, webhook_env
from tests.helpers import question

CHAT = 5101
SLOW = "A slow answer that takes its time to arrive, word by word, sentence by sentence. " * 12
NOTICE = "⚠️ Interrupted: the bot was restarted while writing this answer."


async def saved_messages(redis: Redis, keys: RedisKeys, chat_key: str) -> list[dict[str, object]]:
    thread_id = await redis.get(keys.chat_thread(chat_key))
    if thread_id is None:
        return []
    return [json.loads(raw) for raw in await redis.lrange(keys.thread_messages(thread_id), 0, -1)]


async def saved_after(redis: Redis, keys: RedisKeys, chat_key: str, length: int) -> list[dict[str, object]]:
    """The thread once it holds `length` messages: the notice is shown just before the answer is saved."""
    for _ in range(200):
        if len(messages := await saved_messages(redis, keys, chat_key)) >= length:
            return messages
        await asyncio.sleep(0.05)
    return await saved_messages(redis, keys, chat_key)


async def wait_for_notice(telegram: FakeTelegram, chat: int, index: int, timeout: float) -> float:  # noqa: ASYNC109
    started = time.monotonic()
    await telegram.wait_until(
        lambda: len(telegram.bot_messages(chat)) > index and telegram.bot_texts(chat)[index].endswith(NOTICE),
        timeout=timeout,
    )
    return time.monotonic() - started


async def test_a_restart_one_second_after_sigkill_still_marks_the_frozen_answer(
    telegram: FakeTelegram, yandex: FakeYandex, bots: BotProcesses, redis: Redis, keys: RedisKeys
) -> None:
    yandex.responder = lambda body: Reply(text=SLOW, chunk_size=10, delay=0.1)
    # The defaults: heartbeat TTL 8 s, a sweep every 5 s.
    defaults = {"PROCESS_HEARTBEAT_SECONDS": "8", "RECOVERY_SWEEP_SECONDS": "5"}
    first = await bots.start(**defaults)
    telegram.user_message(CHAT, "slow one")
    await telegram.wait_until(
        lambda: len(telegram.bot_texts(CHAT)) == 1 and len(telegram.bot_texts(CHAT)[0]) > 40, timeout=20
    )
    await first.kill()
    killed_at = time.monotonic()
    frozen = telegram.bot_texts(CHAT)[0]
    assert not frozen.endswith(NOTICE)

    await asyncio.sleep(1)
    second = await bots.start(**defaults)  # its start-up finds the dead process's lease still held
    await wait_for_notice(telegram, CHAT, 0, timeout=30)
    since_crash = time.monotonic() - killed_at
    [reply] = telegram.bot_messages(CHAT)
    partial = reply.text.removesuffix("\n\n" + NOTICE)
    assert SLOW.startswith(partial) and len(partial) >= len(frozen.rstrip("…").rstrip()) - 1
    # Within heartbeat TTL + one sweep (13 s) plus start-up on a loaded machine.
    assert since_crash < 25, f"the notice came {since_crash:.1f} s after the crash"
    print(f"notice {since_crash:.1f} s after the SIGKILL (restart after 1 s)")

    saved = await saved_after(redis, keys, str(CHAT), 2)
    assert [m["role"] for m in saved] == ["user", "assistant"]
    assert saved[1]["status"] == MessageStatus.INCOMPLETE.value and SLOW.startswith(str(saved[1]["text"]))
    await second.wait_for_log("marked 1 answer(s) interrupted by a process that is gone")  # after the removal
    assert not await redis.hgetall(keys.answering)

    # The chat is free again: the next question is answered by the new process.
    yandex.responder = lambda body: Reply(text="The next answer.")
    telegram.user_message(CHAT, "and now?")
    await telegram.wait_for_text("The next answer.", CHAT, timeout=20)
    assert "Traceback" not in second.log


async def test_a_live_process_closes_the_answer_of_one_that_died_without_any_restart(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    bots: BotProcesses,
    redis: Redis,
    keys: RedisKeys,
    http: aiohttp.ClientSession,
) -> None:
    yandex.responder = lambda body: Reply(text=SLOW, chunk_size=10, delay=0.1)
    ports = [free_port(), free_port()]
    doomed, survivor = [await bots.start(**webhook_env(port)) for port in ports]
    assert await post_update(http, ports[0], question(telegram, CHAT, "slow one")) == 200
    await telegram.wait_until(
        lambda: len(telegram.bot_texts(CHAT)) == 1 and len(telegram.bot_texts(CHAT)[0]) > 40, timeout=20
    )
    await doomed.kill()

    waited = await wait_for_notice(telegram, CHAT, 0, timeout=20)
    print(f"the survivor closed the dead process's answer {waited:.1f} s after the SIGKILL")
    await survivor.wait_for_log("marked 1 answer(s) interrupted by a process that is gone")
    saved = await saved_messages(redis, keys, str(CHAT))
    assert [m["status"] for m in saved] == [MessageStatus.COMPLETE.value, MessageStatus.INCOMPLETE.value]
    assert not await redis.hgetall(keys.answering)
    assert not await redis.exists(keys.turn(str(CHAT)))

    yandex.responder = lambda body: Reply(text="Answered by the survivor.")
    assert await post_update(http, ports[1], question(telegram, CHAT, "still there?")) == 200
    await telegram.wait_for_text("Answered by the survivor.", CHAT, timeout=20)


async def test_an_answer_taken_over_by_another_process_is_ended_here_and_not_saved_twice(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, redis: Redis, keys: RedisKeys
) -> None:
    # What a sweeper of another process does when this one's heartbeat lapsed (Redis stalled longer
    # than PROCESS_HEARTBEAT_SECONDS) and it closed the answer: the journal's owner is no longer us.
    yandex.script(Reply(text=SLOW, chunk_size=10, delay=0.1), "Next.")
    app = await run_bot()
    telegram.user_message(CHAT, "slow one")
    await telegram.wait_until(lambda: len(telegram.bot_texts(CHAT)) == 1, timeout=20)
    await redis.hset(keys.answering_owners, str(CHAT), "another-process")
    await wait_for_notice(telegram, CHAT, 0, timeout=20)
    await asyncio.sleep(0.5)
    thread = await saved_messages(redis, keys, str(CHAT))
    assert [m["role"] for m in thread] == ["user"], "the other process saves the answer, not this one"
    telegram.user_message(CHAT, "and next?")
    await telegram.wait_for_text("Next.", CHAT, timeout=20)
    assert app.process_id != "another-process"
