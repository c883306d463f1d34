"""KeyedLock: FIFO per key, early release, and nothing kept for idle keys."""

from __future__ import annotations

import asyncio

from bot.keyed_lock import KeyedLock


async def test_one_holder_per_key_in_arrival_order_and_keys_are_independent() -> None:
    locks: KeyedLock[str] = KeyedLock()
    order: list[str] = []

    async def user(key: str, name: str, hold: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(hold)
            order.append(f"{name}-")

    tasks = [asyncio.create_task(user("a", f"a{i}", 0.01)) for i in range(3)]
    other = asyncio.create_task(user("b", "b0", 0.0))
    await asyncio.gather(*tasks, other)
    a_events = [event for event in order if event.startswith("a")]
    assert a_events == ["a0+", "a0-", "a1+", "a1-", "a2+", "a2-"]
    assert order.index("b0+") < order.index("a0-"), "another key does not wait"
    assert not locks.busy("a") and not locks.busy("b") and not locks._entries


async def test_busy_from_the_first_await_and_early_release_lets_the_next_go_on() -> None:
    locks: KeyedLock[int] = KeyedLock()
    released = asyncio.Event()
    second_in = asyncio.Event()

    async def first() -> None:
        async with locks.hold(1) as release:
            release()
            release()  # idempotent
            released.set()
            await second_in.wait()  # the key stays busy while this block runs
            assert locks.busy(1)

    async def second() -> None:
        await released.wait()
        async with locks.hold(1):
            second_in.set()

    task = asyncio.create_task(first())
    await asyncio.sleep(0)
    assert locks.busy(1)
    await asyncio.gather(task, second())
    assert not locks.busy(1)


async def test_a_cancelled_waiter_leaves_no_trace() -> None:
    locks: KeyedLock[str] = KeyedLock()
    held = asyncio.Event()
    done = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            held.set()
            await done.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    waiter = asyncio.create_task(locks.hold("k").__aenter__())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    done.set()
    await task
    assert not locks.busy("k")


async def test_waiting_counts_those_behind_the_holder() -> None:
    locks: KeyedLock[str] = KeyedLock()
    assert locks.waiting("a") == 0
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def user() -> None:
        async with locks.hold("a"):
            inside.set()
            await leave.wait()

    tasks = [asyncio.create_task(user()) for _ in range(3)]
    await inside.wait()
    assert locks.waiting("a") == 2
    leave.set()
    await asyncio.gather(*tasks)
    assert locks.waiting("a") == 0
