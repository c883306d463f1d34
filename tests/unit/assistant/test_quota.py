"""GenerationQuota against the real Redis: the limit, arrival order across processes, leases, heartbeats."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from bot.assistant.quota import DuplicateTicket, GenerationQuota
from bot.keys import RedisKeys
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[1]


class WallClock:
    """A wall clock that only moves when told (the quota compares leases and heartbeats with it)."""

    def __init__(self) -> None:
        self.time = 1_700_000_000.0

    def __call__(self) -> float:
        return self.time


class CountingRedis(Redis):
    """Counts the commands sent (pub/sub deliveries come on their own connection and are not commands)."""

    commands = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        type(self).commands += 1
        return await super().execute_command(*args, **options)


@pytest.fixture
async def other_redis() -> AsyncIterator[Redis]:
    """A second client: another bot process."""
    client = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


def quota(redis: Redis, prefix: str, **options: Any) -> GenerationQuota:
    options.setdefault("lease_seconds", 1.5)
    options.setdefault("poll_seconds", 0.05)
    return GenerationQuota(redis, keys=RedisKeys(prefix), **options)


class Holder:
    """Holds a slot in a task until released; records the places it was told while waiting."""

    def __init__(self, q: GenerationQuota, ticket: str) -> None:
        self.places: list[int] = []
        self.admitted = asyncio.Event()
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self._run(q, ticket))

    async def _run(self, q: GenerationQuota, ticket: str) -> None:
        async with q.slot(ticket, on_position=self.places.append):
            self.admitted.set()
            await self.release.wait()

    async def told(self, *places: int) -> None:
        async with asyncio.timeout(3):
            while True:
                if self.places == list(places):
                    return
                await asyncio.sleep(0.005)


async def test_never_more_than_limit_holders_across_two_processes(
    redis: Redis, other_redis: Redis, redis_prefix: str
) -> None:
    processes = [quota(redis, redis_prefix, limit=4), quota(other_redis, redis_prefix, limit=4)]
    inside = 0
    peak = 0
    observed: list[int] = []

    async def generate(index: int) -> None:
        nonlocal inside, peak
        async with processes[index % 2].slot(f"t{index}"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(random.uniform(0, 0.02))
            inside -= 1

    async def sample() -> None:
        while True:
            observed.append(await processes[0].running())
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    async with asyncio.timeout(10):
        await asyncio.gather(*(generate(i) for i in range(60)))
    sampler.cancel()
    assert peak == 4, "the limit is reached and never exceeded"
    assert max(observed) <= 4
    assert await processes[0].running() == 0
    assert await processes[0].waiting() == 0


async def test_waiters_are_served_in_arrival_order_across_processes(
    redis: Redis, other_redis: Redis, redis_prefix: str
) -> None:
    a, b = quota(redis, redis_prefix, limit=1), quota(other_redis, redis_prefix, limit=1)
    first = Holder(a, "first")
    await first.admitted.wait()
    waiters = []
    for index in range(10):
        waiter = Holder((a, b)[index % 2], f"w{index}")
        await waiter.told(index + 1)  # registered, at the end of the line
        waiters.append(waiter)
    served: list[int] = []
    first.release.set()
    async with asyncio.timeout(10):
        for _ in waiters:
            while True:
                admitted = [i for i, w in enumerate(waiters) if w.admitted.is_set() and not w.task.done()]
                if admitted:
                    break
                await asyncio.sleep(0.002)
            assert len(admitted) == 1, "one slot, one holder"
            served.append(admitted[0])
            waiters[admitted[0]].release.set()
            await waiters[admitted[0]].task
    assert served == list(range(10))


async def test_places_are_reported_as_the_line_moves(
    redis: Redis, other_redis: Redis, redis_prefix: str
) -> None:
    a, b = quota(redis, redis_prefix, limit=1), quota(other_redis, redis_prefix, limit=1)
    holder = Holder(a, "holder")
    await holder.admitted.wait()
    w1, w2, w3 = Holder(a, "w1"), None, None
    await w1.told(1)
    w2 = Holder(b, "w2")
    await w2.told(2)
    w3 = Holder(a, "w3")
    await w3.told(3)
    assert [await a.position(t) for t in ("w1", "w2", "w3", "holder")] == [1, 2, 3, None]
    assert await b.waiting() == 3 and await b.running() == 1

    w2.task.cancel()  # /stop while waiting: w3 moves up at once
    await w3.told(3, 2)
    holder.release.set()
    await w1.admitted.wait()
    await w3.told(3, 2, 1)
    assert w1.places == [1], "a holder is never told a place"
    assert await a.position("w3") == 1
    w1.release.set()
    await w3.admitted.wait()
    w3.release.set()
    await asyncio.gather(holder.task, w1.task, w3.task)


async def test_cancelled_waiter_leaves_the_line_immediately(redis: Redis, redis_prefix: str) -> None:
    q = quota(redis, redis_prefix, limit=1)
    holder = Holder(q, "holder")
    await holder.admitted.wait()
    waiter = Holder(q, "waiter")
    await waiter.told(1)
    waiter.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    assert await q.position("waiter") is None
    assert await q.waiting() == 0
    assert await redis.zcard(f"{redis_prefix}quota:queue") == 0
    holder.release.set()
    await holder.task
    assert await q.running() == 0


async def test_an_error_in_the_body_gives_the_slot_back(redis: Redis, redis_prefix: str) -> None:
    q = quota(redis, redis_prefix, limit=1)
    with pytest.raises(ValueError, match="boom"):
        async with q.slot("t"):
            raise ValueError("boom")
    assert await q.running() == 0
    async with asyncio.timeout(1), q.slot("t2"):
        pass


async def test_a_holder_that_stops_renewing_loses_its_slot_after_the_lease(
    redis: Redis, other_redis: Redis, redis_prefix: str
) -> None:
    clock = WallClock()
    a = quota(redis, redis_prefix, limit=1, lease_seconds=3.0, clock=clock)
    b = quota(other_redis, redis_prefix, limit=1, lease_seconds=3.0, clock=clock)
    stuck = Holder(a, "stuck")
    await stuck.admitted.wait()
    await a.aclose()  # its process froze: no more renewals
    clock.time += 2.9
    waiter = Holder(b, "next")
    await waiter.told(1)
    assert not waiter.admitted.is_set(), "still within the lease"
    clock.time += 0.2
    async with asyncio.timeout(1):
        await waiter.admitted.wait()
    waiter.release.set()
    await waiter.task
    stuck.task.cancel()


async def test_a_crashed_process_frees_its_slot_within_the_lease(redis: Redis, redis_prefix: str) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASHING_HOLDER,
        TEST_REDIS_URL,
        redis_prefix,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 10)
    assert line.strip() == b"held"
    assert await asyncio.wait_for(child.wait(), 10) == 1
    crashed_at = time.monotonic()
    q = quota(redis, redis_prefix, limit=1, lease_seconds=1.0)
    assert await q.running() == 1, "the dead process's slot is still counted"
    async with asyncio.timeout(3), q.slot("next"):
        waited = time.monotonic() - crashed_at
    assert waited <= 1.0 + 0.3, f"slot came back after {waited:.2f} s"


_CRASHING_HOLDER = """
import asyncio, os, sys
from redis.asyncio import BlockingConnectionPool, Redis
from bot.assistant.quota import GenerationQuota
from bot.keys import RedisKeys

async def main():
    redis = Redis.from_url(sys.argv[1], decode_responses=True)
    quota = GenerationQuota(redis, keys=RedisKeys(sys.argv[2]), limit=1, lease_seconds=1.0, poll_seconds=0.05)
    async with quota.slot("crashing"):
        print("held", flush=True)
        os._exit(1)  # no cleanup at all, as in a crash

asyncio.run(main())
"""


async def test_a_dead_process_waiters_do_not_block_the_line(
    redis: Redis, other_redis: Redis, redis_prefix: str
) -> None:
    clock = WallClock()
    a = quota(redis, redis_prefix, limit=1, clock=clock, waiter_ttl_seconds=2.0)
    b = quota(other_redis, redis_prefix, limit=1, clock=clock, waiter_ttl_seconds=2.0)
    holder = Holder(b, "holder")
    await holder.admitted.wait()
    ghost = Holder(a, "ghost")
    await ghost.told(1)
    await a.aclose()  # the ghost's process died: no more heartbeats
    alive = Holder(b, "alive")
    await alive.told(2)
    holder.release.set()
    await holder.task
    await asyncio.sleep(0.2)
    assert not alive.admitted.is_set(), "the ghost is first in line until its heartbeat runs out"
    clock.time += 2.1
    async with asyncio.timeout(1):
        await alive.admitted.wait()
    alive.release.set()
    await alive.task
    ghost.task.cancel()


async def test_a_ticket_id_can_be_in_line_only_once(
    redis: Redis, other_redis: Redis, redis_prefix: str
) -> None:
    a, b = quota(redis, redis_prefix, limit=2), quota(other_redis, redis_prefix, limit=2)
    holder = Holder(a, "same")
    await holder.admitted.wait()
    with pytest.raises(DuplicateTicket):
        async with b.slot("same"):
            pass
    with pytest.raises(DuplicateTicket):
        async with a.slot("same"):
            pass
    assert await a.running() == 1, "the refused duplicate did not free the holder's slot"
    holder.release.set()
    await holder.task


async def test_500_waiters_cost_a_few_commands_each(redis_prefix: str, redis: Redis) -> None:
    CountingRedis.commands = 0
    # Blocking pools as the bot has (bot/storage.py): a burst waits for a connection instead of failing.
    clients = [
        CountingRedis(connection_pool=BlockingConnectionPool.from_url(TEST_REDIS_URL, decode_responses=True))
        for _ in range(2)
    ]
    processes = [quota(client, redis_prefix, limit=10, poll_seconds=0.5) for client in clients]
    inside = 0
    peak = 0

    async def generate(index: int) -> None:
        nonlocal inside, peak
        async with processes[index % 2].slot(f"t{index}"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    started = time.monotonic()
    async with asyncio.timeout(15):
        await asyncio.gather(*(generate(i) for i in range(500)))
    elapsed = time.monotonic() - started
    commands = CountingRedis.commands
    for client in clients:
        await client.aclose()
    print(f"500 waiters, limit 10, two processes: {commands} commands in {elapsed:.2f} s")
    assert peak == 10
    # Registering and leaving are one command each; the rest is a round per process per move of the line.
    assert commands <= 6 * 500, commands


async def test_the_arrival_given_orders_the_line_whatever_order_tickets_register_in(
    redis: Redis, other_redis: Redis, redis_prefix: str
) -> None:
    # Two processes; questions reach the line in a scrambled order (Redis round trips before it finish
    # in any order), each carrying the moment it arrived: they are served by arrival.
    one, two = quota(redis, redis_prefix, limit=1), quota(other_redis, redis_prefix, limit=1)
    admitted: list[int] = []
    release = asyncio.Event()

    async def ask(q: GenerationQuota, arrival: int) -> None:
        async with q.slot(f"t{arrival}", arrival=1_700_000_000_000_000 + arrival):
            admitted.append(arrival)
            if arrival == 0:
                await release.wait()

    tasks = [asyncio.create_task(ask(one, 0))]
    for _ in range(300):
        if admitted:
            break
        await asyncio.sleep(0.01)
    for arrival in (5, 2, 7, 1, 4, 3, 6):
        tasks.append(asyncio.create_task(ask(one if arrival % 2 else two, arrival)))
        await asyncio.sleep(0.02)
    for _ in range(300):
        if await one.waiting() == 7:
            break
        await asyncio.sleep(0.01)
    release.set()
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks)
    assert admitted == [0, 1, 2, 3, 4, 5, 6, 7]
    await one.aclose()
    await two.aclose()
