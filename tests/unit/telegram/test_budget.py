"""The limits every Telegram call keeps to: each group's minute, each chat's flood ban, the bot's budget;
in memory (fake clock) and in Redis, shared by several processes (here: several budgets on one prefix)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from redis.asyncio import Redis

from bot.clock import SystemClock
from bot.keys import RedisKeys
from bot.telegram.budget import HEAD_FRESH_MS, CallBudget, RedisCallBudget
from tests.helpers import FakeClock

GROUP = -1001
OTHER_GROUP = -1002
PRIVATE = 42


async def test_a_groups_minute_is_shared_by_everything_sent_there() -> None:
    clock = FakeClock()
    budget = CallBudget(clock, rate=1000, burst=10, group_per_minute=3, group_window=10)
    times: list[float] = []

    async def send(chat: int) -> None:
        await budget.acquire(chat)
        times.append(round(clock.now() - 100.0, 6))

    # Two answers (topics) and a history page in one group: together at most 3 per 10 s.
    await asyncio.gather(*(send(GROUP) for _ in range(7)))
    assert sorted(times) == [0, 0, 0, 10, 10, 10, 20]
    times.clear()
    await send(OTHER_GROUP)  # another group has its own minute
    assert times == [20]


def within(times: list[float], span: float) -> int:
    """The most calls in any window of `span` seconds."""
    times = sorted(times)
    return max(sum(1 for other in times if start <= other < start + span) for start in times)


async def test_a_flood_ban_holds_every_call_to_that_chat_and_only_there() -> None:
    clock = FakeClock()
    budget = CallBudget(clock, rate=1000, burst=10)
    await budget.flooded(PRIVATE, 30)
    assert await budget.acquire(PRIVATE, max_ban=10) is False  # longer than allowed: no waiting at all
    assert clock.now() == 100.0
    assert await budget.acquire(PRIVATE + 1) is True and clock.now() == 100.0
    assert await budget.acquire(PRIVATE) is True
    assert clock.now() >= 130.0


async def test_private_chats_get_a_small_burst_then_about_one_call_a_second() -> None:
    clock = FakeClock()
    budget = CallBudget(clock, rate=1000, burst=10)
    times = []
    for _ in range(5):
        await budget.acquire(PRIVATE)
        times.append(clock.now() - 100.0)
    assert times[:2] == [0, 0]
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(times[1:]))


async def test_processes_share_a_groups_minute_through_redis(redis: Redis, keys: RedisKeys) -> None:
    clock = SystemClock()
    processes = [
        RedisCallBudget(redis, keys, clock, rate=1000, burst=10, group_per_minute=3, group_window=1.0)
        for _ in range(2)
    ]
    times: list[float] = []

    async def send(budget: RedisCallBudget) -> None:
        await budget.acquire(GROUP)
        times.append(time.monotonic())

    began = time.monotonic()
    await asyncio.gather(*(send(processes[n % 2]) for n in range(9)))
    assert within(times, 0.95) <= 3  # (measured after the round trip: a few ms of slack)
    assert time.monotonic() - began >= 1.9


async def test_processes_share_flood_bans_and_the_bot_wide_budget_through_redis(
    redis: Redis, keys: RedisKeys
) -> None:
    clock = SystemClock()
    first, second = (RedisCallBudget(redis, keys, clock, rate=10, burst=1) for _ in range(2))

    await first.flooded(PRIVATE, 1.0)
    assert await second.acquire(PRIVATE, max_ban=0.3) is False
    began = time.monotonic()
    assert await second.acquire(PRIVATE) is True
    assert time.monotonic() - began >= 0.8
    assert 0 < await redis.pttl(keys.telegram_chat(PRIVATE)) <= 60000

    times: list[float] = []

    async def send(budget: RedisCallBudget, chat: int) -> None:
        await budget.acquire(chat)
        times.append(time.monotonic())

    # 20 calls to 20 chats from two processes: together still 10 a second.
    await asyncio.gather(*(send((first, second)[n % 2], 1000 + n) for n in range(20)))
    assert max(times) - min(times) >= 1.7
    assert within(times, 1.0) <= 11


async def test_without_redis_a_process_keeps_to_the_limits_on_its_own(
    keys: RedisKeys, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 9: every script call fails at once, as during a Redis restart.
    unreachable = Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2)
    clock = FakeClock()
    budget = RedisCallBudget(
        unreachable, keys, clock, rate=1000, burst=10, group_per_minute=3, group_window=10
    )
    try:
        await budget.flooded(PRIVATE, 30.0)  # learnt locally even though Redis did not take it
        assert await budget.acquire(PRIVATE, max_ban=5.0) is False
        times: list[float] = []

        async def send() -> None:
            assert await budget.acquire(GROUP) is True
            times.append(round(clock.now() - 100.0, 6))

        await asyncio.gather(*(send() for _ in range(4)))
        assert sorted(times) == [0, 0, 0, 10]  # the group's minute, kept in memory
    finally:
        await unreachable.aclose()
    lost = [r.getMessage() for r in caplog.records if "shared Telegram limits" in r.getMessage()]
    assert len(lost) == 1 and "lost" in lost[0], lost


async def test_the_bot_wide_budget_goes_to_callers_in_the_order_they_came_across_processes(
    redis: Redis, keys: RedisKeys
) -> None:
    # Each process's first waiting caller used to poll the shared bucket on its own, so every process got
    # about the same share however many answers it carried: a busy process's callers waited longest.
    clock = SystemClock()
    busy, quiet = (RedisCallBudget(redis, keys, clock, rate=20, burst=1) for _ in range(2))
    order: list[str] = []

    async def send(budget: RedisCallBudget, name: str, chat: int) -> None:
        await budget.acquire(chat)
        order.append(name)

    tasks = [asyncio.create_task(send(busy, f"busy{n}", 2000 + n)) for n in range(6)]
    await asyncio.sleep(0.03)
    tasks += [asyncio.create_task(send(quiet, f"quiet{n}", 3000 + n)) for n in range(2)]
    began = time.monotonic()
    await asyncio.gather(*tasks)
    assert order == [f"busy{n}" for n in range(6)] + ["quiet0", "quiet1"]
    assert time.monotonic() - began < 0.7, "the order cost throughput"  # 7 calls at 20/s: 0.35 s


async def test_a_caller_that_stopped_asking_holds_the_others_up_only_briefly(
    redis: Redis, keys: RedisKeys
) -> None:
    clock = SystemClock()
    first, second = (RedisCallBudget(redis, keys, clock, rate=20, burst=1) for _ in range(2))
    assert await first.acquire(4000)  # the bucket's one token
    waiting = asyncio.create_task(first.acquire(4001))  # first's head, from now on
    await asyncio.sleep(0.01)
    waiting.cancel()  # e.g. its answer was stopped: it never asks again
    began = time.monotonic()
    assert await second.acquire(4002)
    assert time.monotonic() - began < 0.2 + HEAD_FRESH_MS / 1000
