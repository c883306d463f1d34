"""Threads, context windows and the turn gate, on a real Redis."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.threads.gate import TurnGate
from bot.threads.models import MessageStatus, ThreadMessage, context_window
from bot.threads.store import ThreadStore
from tests.helpers import thread_of


def message(text: str, role: str = "user") -> ThreadMessage:
    return ThreadMessage(role, text, 0.0)  # type: ignore[arg-type]


def test_context_window_drops_oldest_first() -> None:
    messages = [message(f"m{i}" + "x" * 8) for i in range(10)]  # 10 chars each
    assert [m.text[:2] for m in context_window(messages, max_messages=3, max_chars=1000)] == [
        "m7",
        "m8",
        "m9",
    ]
    assert [m.text[:2] for m in context_window(messages, max_messages=100, max_chars=35)] == [
        "m7",
        "m8",
        "m9",
    ]


def test_context_window_always_keeps_the_question() -> None:
    window = context_window([message("old"), message("q" * 500)], max_messages=10, max_chars=100)
    assert window == [ThreadMessage("user", "q" * 100, 0.0)]


async def test_store_appends_reads_and_resets(redis: Redis, redis_prefix: str) -> None:
    store = ThreadStore(redis, keys=RedisKeys(redis_prefix), ttl_seconds=3600, clock=lambda: 1234.5)
    thread = await store.current_thread("42")
    assert await store.current_thread("42") == thread
    stored = ThreadMessage("assistant", "hi", 1234.5, MessageStatus.INCOMPLETE, ("a.pdf",))
    assert await store.append("42", thread, message("hello"))
    assert await store.append("42", thread, stored)
    assert await thread_of(store, "42") == [ThreadMessage("user", "hello", 0.0), stored]
    assert 0 < await redis.ttl(f"{redis_prefix}thread:{thread}:messages") <= 3600

    new_thread = await store.reset("42")
    assert new_thread != thread
    assert await thread_of(store, "42") == []
    assert not await redis.exists(f"{redis_prefix}thread:{thread}:messages")
    # An answer that finishes after the reset must not write into the erased thread.
    assert not await store.append("42", thread, message("late"))
    assert not await redis.exists(f"{redis_prefix}thread:{thread}:messages")


async def test_topics_have_their_own_threads(redis: Redis, redis_prefix: str) -> None:
    store = ThreadStore(redis, keys=RedisKeys(redis_prefix), ttl_seconds=60)
    assert await store.current_thread("-100:1") != await store.current_thread("-100:2")


async def test_gate_serialises_a_chat_across_processes(redis: Redis, redis_prefix: str) -> None:
    # Two gates on one Redis stand for two bot processes.
    gates = [
        TurnGate(redis, keys=RedisKeys(redis_prefix), lease_seconds=5, poll_seconds=0.01) for _ in range(2)
    ]
    inside = 0
    most = 0

    async def turn(gate: TurnGate) -> None:
        nonlocal inside, most
        async with gate.turn("chat"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(turn(gates[i % 2]) for i in range(8)))
    assert most == 1


async def test_gate_keeps_arrival_order_and_frees_on_cancel(redis: Redis, redis_prefix: str) -> None:
    gate = TurnGate(redis, keys=RedisKeys(redis_prefix), lease_seconds=5, poll_seconds=0.01)
    order: list[int] = []

    async def turn(number: int, hold: float) -> None:
        async with gate.turn("chat"):
            order.append(number)
            await asyncio.sleep(hold)

    stuck = asyncio.create_task(turn(0, 60))
    await asyncio.sleep(0.05)
    waiting = [asyncio.create_task(turn(number, 0)) for number in range(1, 5)]
    await asyncio.sleep(0.05)
    stuck.cancel()
    await asyncio.gather(*waiting)
    assert order == [0, 1, 2, 3, 4]
    assert not await redis.exists(f"{redis_prefix}turn:chat")


async def test_gate_lease_is_renewed_during_a_long_turn(redis: Redis, redis_prefix: str) -> None:
    gate = TurnGate(redis, keys=RedisKeys(redis_prefix), lease_seconds=0.3, poll_seconds=0.01)
    async with gate.turn("chat"):
        await asyncio.sleep(0.8)  # well past one lease
        assert await redis.exists(f"{redis_prefix}turn:chat")


async def test_retry_replaces_the_last_answer_only_while_the_thread_is_current(
    redis: Redis, redis_prefix: str
) -> None:
    store = ThreadStore(redis, keys=RedisKeys(redis_prefix), ttl_seconds=3600)
    thread = await store.current_thread("7")
    assert not await store.replace_last_answer("7", thread, message("nothing yet", "assistant"))
    for text, role in (("q1", "user"), ("a1", "assistant"), ("q2", "user"), ("a2", "assistant")):
        assert await store.append("7", thread, message(text, role))

    assert await store.replace_last_answer("7", thread, message("a2 again", "assistant"))
    assert [m.text for m in await thread_of(store, "7")] == ["q1", "a1", "q2", "a2 again"]

    # The question's answer failed before any text: the new answer follows the question.
    assert await store.append("7", thread, message("q3"))
    assert await store.replace_last_answer("7", thread, message("a3", "assistant"))
    assert [m.text for m in await thread_of(store, "7")] == ["q1", "a1", "q2", "a2 again", "q3", "a3"]

    await store.reset("7")
    assert not await store.replace_last_answer("7", thread, message("late", "assistant"))
    assert not await redis.exists(f"{redis_prefix}thread:{thread}:messages")
