"""A record in Redis of every answer being streamed, so a crashed process's answers can be closed off."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis


@dataclass(slots=True)
class AnswerRecord:
    """Enough to finish an interrupted answer: where it is shown, what it said so far, which thread."""

    chat_key: str
    chat_id: int
    message_thread_id: int | None
    thread_id: str
    language: str
    message_ids: list[int] = field(default_factory=list)
    text: str = ""


class AnswerJournal:
    """Hash `<prefix>answering`: chat key → the answer streaming there (one at a time per chat)."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._key = f"{prefix}answering"

    async def write(self, record: AnswerRecord) -> None:
        await self._redis.hset(self._key, record.chat_key, json.dumps(asdict(record), ensure_ascii=False))

    async def remove(self, chat_key: str) -> None:
        await self._redis.hdel(self._key, chat_key)

    async def all(self) -> list[AnswerRecord]:
        raw = await self._redis.hgetall(self._key)
        return [AnswerRecord(**json.loads(value)) for value in raw.values()]
