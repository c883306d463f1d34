"""Answers a dead process left half-written get their end: the text so far, with an "interrupted" notice.

Every process keeps a heartbeat key with a short TTL (`Heartbeat`) and records the owner of each answer
it streams in the journal. `InterruptedAnswers.sweep()` runs at start and then every few seconds in every
process: an answer whose owner's heartbeat has expired is taken over with one atomic claim (the journal's
owner and the chat's turn lock change hands together, so two sweepers never both close it), closed off in
Telegram, saved to its thread, and the chat's turn released. So a crashed answer is closed within the
heartbeat's TTL plus one sweep interval, whether the process restarts at once, later, or never.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.log_context import ChatRef
from bot.metrics import Metrics
from bot.outage import OutageLog, every
from bot.target import ChatTarget
from bot.texts import texts_for
from bot.threads.gate import TurnGate
from bot.threads.journal import AnswerJournal, AnswerRecord, OwnedRecord
from bot.threads.store import ThreadStore
from bot.turns.streaming import StreamerFactory

log = logging.getLogger(__name__)

# KEYS: answering, answering:owners, the owner's heartbeat, the chat's turn lock.
# ARGV: chat key, the dead owner ("" for a record without one), this process, its lock token, lease (ms).
# The answer is taken only while it is still the dead owner's, the owner's heartbeat is gone, and the
# chat's turn is free or held by the dead owner (not by a live process that just started a new answer).
_CLAIM = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local owner = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if owner ~= ARGV[2] then return 0 end
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local holder = redis.call('GET', KEYS[4])
if holder then
  if ARGV[2] == '' or string.sub(holder, 1, string.len(ARGV[2]) + 1) ~= ARGV[2] .. ':' then return 0 end
end
redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[5])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def new_process_id() -> str:
    """A bot process's id: its heartbeat key, the owner of its answers, the prefix of its turn locks."""
    return uuid.uuid4().hex[:16]


class Heartbeat:
    """`process:<id>:alive`, set with a TTL and refreshed four times per TTL while the process runs."""

    def __init__(self, redis: Redis, *, keys: RedisKeys, process_id: str, ttl_seconds: float) -> None:
        self._redis = redis
        self._key = keys.process_alive(process_id)
        self._ttl_ms = max(1000, int(ttl_seconds * 1000))
        self._outage = OutageLog(log, "the process heartbeat in Redis")

    async def beat(self) -> None:
        await self._redis.set(self._key, "1", px=self._ttl_ms)

    async def run(self) -> None:
        """Beat until cancelled; a Redis outage is logged once, when it starts and when it ends."""
        await every(self._ttl_ms / 4000, self.beat, self._outage)

    async def end(self) -> None:
        """The process is leaving: its answers are closed, others need not wait for the TTL."""
        await self._redis.delete(self._key)


class InterruptedAnswers:
    """Finds answers whose process is gone and closes them off (see the module's docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        keys: RedisKeys,
        journal: AnswerJournal,
        gate: TurnGate,
        store: ThreadStore,
        streamers: StreamerFactory,
        metrics: Metrics | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._journal = journal
        self._gate = gate
        self._store = store
        self._streamers = streamers
        self._me = journal.owner
        self._metrics = metrics or Metrics()
        self._outage = OutageLog(log, "the crash-recovery sweep")

    async def sweep(self) -> int:
        """Close every answer of a dead process now; returns how many were closed."""
        closed = 0
        for owned in await self._of_dead_owners():
            chat_key = owned.record.chat_key
            token = f"{self._me}:{uuid.uuid4().hex}"
            if not await self._claim(owned, token):
                continue
            try:
                await _close(owned.record, self._store, self._streamers)
            except Exception:  # one chat's trouble must not keep the others frozen, or the bot from starting
                log.warning("could not mark the interrupted answer in %s", ChatRef(chat_key), exc_info=True)
            finally:
                await self._journal.remove(chat_key)
                await self._redis.eval(_RELEASE, 1, self._keys.turn(chat_key), token)
            closed += 1
        if closed:
            self._metrics.recovered(closed)
            log.info("marked %d answer(s) interrupted by a process that is gone", closed)
        return closed

    async def _of_dead_owners(self) -> list[OwnedRecord]:
        """The journalled answers of other processes whose heartbeat is gone (and those without owner).

        Every process sweeps every few seconds, and with many answers streaming across many processes
        a claim attempt per record would be most of the bot's Redis traffic, nearly all of it refused
        (the owner alive). So the owners' heartbeats are read first, one round trip for all, and only
        the answers of those that are gone are read and claimed; the claim checks again, atomically."""
        others = {chat: owner for chat, owner in (await self._journal.owners()).items() if owner != self._me}
        owners = sorted(set(others.values()) - {""})
        if owners:
            async with self._redis.pipeline(transaction=False) as pipe:
                for owner in owners:
                    pipe.exists(self._keys.process_alive(owner))
                alive = {
                    owner for owner, beating in zip(owners, await pipe.execute(), strict=True) if beating
                }
        else:
            alive = set()
        return await self._journal.records(
            {chat: owner for chat, owner in others.items() if owner not in alive}
        )

    async def run(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled (the first sweep is the caller's, at start)."""
        await asyncio.sleep(interval)
        await every(interval, self.sweep, self._outage)

    async def _claim(self, owned: OwnedRecord, token: str) -> bool:
        chat_key = owned.record.chat_key
        claimed = await self._redis.eval(
            _CLAIM,
            4,
            self._keys.answering,
            self._keys.answering_owners,
            self._keys.process_alive(owned.owner),
            self._keys.turn(chat_key),
            chat_key,
            owned.owner,
            self._me,
            token,
            int(self._gate.lease_seconds * 1000),
        )
        return bool(claimed)


async def _close(record: AnswerRecord, store: ThreadStore, streamers: StreamerFactory) -> None:
    target = ChatTarget(record.chat_id, record.is_private, record.topic_id)
    streamer = streamers(target, texts_for(record.language), message_ids=record.message_ids)
    outcome = await streamer.close_interrupted(record.text)
    answer = outcome.thread_message(store.now())
    if answer is not None:
        await store.append(record.chat_key, record.thread_id, answer)
