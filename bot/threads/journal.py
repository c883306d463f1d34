"""A record in Redis of every answer being streamed, so a crashed process's answers can be closed off."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from bot.keys import RedisKeys

# Progress is written only while this process still owns the answer (begin() is what creates a record):
# after a sweeper of another process took it over and closed it (this one's heartbeat had lapsed), a
# late frame must not bring the record back.
_WRITE_IF_OWNER = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
_REMOVE_IF_OWNER = """
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner and owner ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


@dataclass(slots=True)
class AnswerRecord:
    """Enough to finish an interrupted answer: where it is shown, what it said so far, which thread."""

    chat_key: str
    chat_id: int
    is_private: bool
    topic_id: int | None
    thread_id: str
    language: str
    message_ids: list[int] = field(default_factory=list)
    text: str = ""


@dataclass(frozen=True, slots=True)
class OwnedRecord:
    """A journalled answer and the process streaming it ("" for records written before owners were)."""

    record: AnswerRecord
    owner: str


class AnswerJournal:
    """Hash `answering`: chat key → the answer streaming there (one at a time per chat); hash
    `answering:owners`: chat key → the process that streams it (`owner`, this process's id)."""

    def __init__(self, redis: Redis, *, keys: RedisKeys, owner: str = "") -> None:
        self._redis = redis
        self._key = keys.answering
        self._owners = keys.answering_owners
        self.owner = owner

    async def begin(self, record: AnswerRecord) -> None:
        """A new answer in the chat, streamed by this process (it holds the chat's turn)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key, record.chat_key, _encode(record))
            pipe.hset(self._owners, record.chat_key, self.owner)
            await pipe.execute()

    async def write(self, record: AnswerRecord) -> bool:
        """The answer's progress; False when another process has taken the answer over."""
        written = await self._redis.eval(
            _WRITE_IF_OWNER, 2, self._key, self._owners, record.chat_key, self.owner, _encode(record)
        )
        return bool(written)

    async def remove(self, chat_key: str) -> None:
        """The answer ended here (left alone when another process has taken it over)."""
        await self._redis.eval(_REMOVE_IF_OWNER, 2, self._key, self._owners, chat_key, self.owner)

    async def all(self) -> list[AnswerRecord]:
        return [owned.record for owned in await self.owned()]

    async def owned(self) -> list[OwnedRecord]:
        """Every journalled answer with its owner."""
        return await self.records(await self.owners())

    async def owners(self) -> dict[str, str]:
        """Chat key → the process streaming there, for every journalled answer ("" without an owner).

        Small next to the records themselves, which carry each answer's text so far."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hkeys(self._key)
            pipe.hgetall(self._owners)
            chat_keys, owners = await pipe.execute()
        return {str(chat_key): str(owners.get(chat_key, "")) for chat_key in chat_keys}

    async def records(self, owners: dict[str, str]) -> list[OwnedRecord]:
        """The records of these chats (chat key → owner, as `owners()` gave), those still journalled."""
        if not owners:
            return []
        chat_keys = list(owners)
        values = await self._redis.hmget(self._key, chat_keys)
        return [
            OwnedRecord(_record(json.loads(value)), owners[chat_key])
            for chat_key, value in zip(chat_keys, values, strict=True)
            if value is not None
        ]


def _encode(record: AnswerRecord) -> str:
    return json.dumps(asdict(record), ensure_ascii=False)


def _record(data: dict[str, Any]) -> AnswerRecord:
    # Records written before topics were called topics (and before privacy was recorded) still close.
    if "message_thread_id" in data:
        data["topic_id"] = data.pop("message_thread_id")
    data.setdefault("is_private", data["chat_id"] > 0)
    return AnswerRecord(**data)
