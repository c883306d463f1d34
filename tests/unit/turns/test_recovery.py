"""Crash recovery's claim: an answer is taken over only when its owner's heartbeat is gone and the chat
is not held by a live process, and two sweepers never both close it."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.target import ChatTarget
from bot.texts import Texts
from bot.threads.gate import TurnGate
from bot.threads.journal import AnswerJournal, AnswerRecord
from bot.threads.store import ThreadStore
from bot.turns.recovery import Heartbeat, InterruptedAnswers
from bot.turns.streaming import StreamOutcome

CHAT = "4242"


class ClosingStreamers:
    """Records every answer closed off (what Telegram would show), slowly, as a real edit is."""

    def __init__(self) -> None:
        self.closed: list[tuple[int, str]] = []

    def __call__(self, target: ChatTarget, texts: Texts, **_: Any) -> ClosingStreamers:
        self._target = target
        return self

    async def close_interrupted(self, text: str) -> StreamOutcome:
        await asyncio.sleep(0.05)
        self.closed.append((self._target.chat_id, text))
        return StreamOutcome(text=text, interrupted=True, delivered=True)


def process(redis: Redis, keys: RedisKeys, name: str, streamers: ClosingStreamers) -> InterruptedAnswers:
    journal = AnswerJournal(redis, keys=keys, owner=name)
    gate = TurnGate(redis, keys=keys, lease_seconds=30, owner=name)
    store = ThreadStore(redis, keys=keys, ttl_seconds=3600)
    return InterruptedAnswers(redis, keys=keys, journal=journal, gate=gate, store=store, streamers=streamers)  # type: ignore[arg-type]


async def start_answer(redis: Redis, keys: RedisKeys, owner: str) -> AnswerRecord:
    """What a process leaves while it streams: its heartbeat, its turn lock, its journal record."""
    await Heartbeat(redis, keys=keys, process_id=owner, ttl_seconds=30).beat()
    await redis.set(keys.turn(CHAT), f"{owner}:token", px=30_000)
    await redis.set(keys.chat_thread(CHAT), "t-1")
    record = AnswerRecord(CHAT, 4242, True, None, "t-1", "en", [7], "half an answ")
    await AnswerJournal(redis, keys=keys, owner=owner).begin(record)
    return record


async def test_a_live_owners_answer_is_left_alone(redis: Redis, keys: RedisKeys) -> None:
    await start_answer(redis, keys, "dead")
    streamers = ClosingStreamers()
    assert await process(redis, keys, "live", streamers).sweep() == 0
    assert streamers.closed == [] and await redis.hlen(keys.answering) == 1


async def test_a_dead_owners_answer_is_closed_once_by_one_of_many_sweepers(
    redis: Redis, keys: RedisKeys
) -> None:
    await start_answer(redis, keys, "dead")
    await redis.delete(keys.process_alive("dead"))  # its heartbeat expired; its turn lease has not
    streamers = ClosingStreamers()
    sweepers = [process(redis, keys, f"live-{n}", streamers) for n in range(5)]
    for n in range(5):  # live sweepers have heartbeats: one closing the answer is not taken over in turn
        await Heartbeat(redis, keys=keys, process_id=f"live-{n}", ttl_seconds=30).beat()
    closed = await asyncio.gather(*(sweeper.sweep() for sweeper in sweepers))
    assert sorted(closed) == [0, 0, 0, 0, 1]
    assert streamers.closed == [(4242, "half an answ")]
    assert not await redis.hgetall(keys.answering) and not await redis.hgetall(keys.answering_owners)
    assert not await redis.exists(keys.turn(CHAT)), "the chat's turn is released after closing"
    [saved] = await ThreadStore(redis, keys=keys, ttl_seconds=3600).messages("t-1")
    assert saved.text == "half an answ" and saved.status.value == "incomplete"


async def test_a_chat_already_taken_by_a_live_process_is_not_touched(redis: Redis, keys: RedisKeys) -> None:
    await start_answer(redis, keys, "dead")
    await redis.delete(keys.process_alive("dead"))
    # The dead lease expired and a live process started the next answer (its record not written yet).
    await Heartbeat(redis, keys=keys, process_id="other", ttl_seconds=30).beat()
    await redis.set(keys.turn(CHAT), "other:token", px=30_000)
    streamers = ClosingStreamers()
    assert await process(redis, keys, "sweeper", streamers).sweep() == 0
    assert streamers.closed == [] and await redis.get(keys.turn(CHAT)) == "other:token"


async def test_a_late_write_of_the_old_owner_does_not_bring_the_record_back(
    redis: Redis, keys: RedisKeys
) -> None:
    record = await start_answer(redis, keys, "stalled")
    await redis.delete(keys.process_alive("stalled"))
    assert await process(redis, keys, "sweeper", ClosingStreamers()).sweep() == 1
    assert not await AnswerJournal(redis, keys=keys, owner="stalled").write(record)
    assert not await redis.hgetall(keys.answering)


async def test_records_without_an_owner_close_once_their_chat_is_free(redis: Redis, keys: RedisKeys) -> None:
    # Written by a bot from before owners were recorded.
    record = AnswerRecord(CHAT, 4242, True, None, "t-1", "en", [7], "old")
    await AnswerJournal(redis, keys=keys).begin(record)
    await redis.set(keys.turn(CHAT), "some-old-token", px=30_000)
    streamers = ClosingStreamers()
    sweeper = process(redis, keys, "new", streamers)
    assert await sweeper.sweep() == 0
    await redis.delete(keys.turn(CHAT))
    assert await sweeper.sweep() == 1 and streamers.closed == [(4242, "old")]


async def test_a_sweep_reads_and_claims_only_the_answers_of_dead_owners(
    redis: Redis, keys: RedisKeys, monkeypatch: Any
) -> None:
    # Each process sweeps every few seconds: with hundreds of answers streaming in other, live
    # processes, one claim script per record was most of the bot's Redis traffic, all of it refused.
    await Heartbeat(redis, keys=keys, process_id="live", ttl_seconds=30).beat()
    live = AnswerJournal(redis, keys=keys, owner="live")
    for chat in range(50):
        await live.begin(AnswerRecord(f"{chat}", chat, True, None, "t-1", "en", [7], "streaming on"))
    await AnswerJournal(redis, keys=keys, owner="dead").begin(
        AnswerRecord(CHAT, 4242, True, None, "t-1", "en", [7], "half an answ")
    )
    await redis.set(keys.chat_thread(CHAT), "t-1")
    scripts: list[Any] = []
    read: list[Any] = []
    real_eval, real_hmget = redis.eval, redis.hmget

    def counted_eval(script: str, keys_count: int, *args: Any) -> Any:
        scripts.append(args[:keys_count])
        return real_eval(script, keys_count, *args)

    def counted_hmget(name: str, chat_keys: list[str]) -> Any:
        read.extend(chat_keys)
        return real_hmget(name, chat_keys)

    monkeypatch.setattr(redis, "eval", counted_eval)
    monkeypatch.setattr(redis, "hmget", counted_hmget)
    streamers = ClosingStreamers()
    assert await process(redis, keys, "sweeper", streamers).sweep() == 1
    assert streamers.closed == [(4242, "half an answ")]
    assert read == [CHAT], "records of a live process were read"
    claims = [script_keys for script_keys in scripts if keys.process_alive("live") in script_keys]
    assert claims == [], "a live process's answers were claimed"
    assert await redis.hlen(keys.answering) == 50
