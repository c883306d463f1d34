"""A record in Redis of every answer being streamed, so a crashed process's answers can be closed off."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from bot.keys import RedisKeys


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


class AnswerJournal:
    """Hash `answering`: chat key → the answer streaming there (one at a time per chat)."""

    def __init__(self, redis: Redis, *, keys: RedisKeys) -> None:
        self._redis = redis
        self._key = keys.answering

    async def write(self, record: AnswerRecord) -> None:
        await self._redis.hset(self._key, record.chat_key, json.dumps(asdict(record), ensure_ascii=False))

    async def remove(self, chat_key: str) -> None:
        await self._redis.hdel(self._key, chat_key)

    async def all(self) -> list[AnswerRecord]:
        raw = await self._redis.hgetall(self._key)
        return [_record(json.loads(value)) for value in raw.values()]


def _record(data: dict[str, Any]) -> AnswerRecord:
    # Records written before topics were called topics (and before privacy was recorded) still close.
    if "message_thread_id" in data:
        data["topic_id"] = data.pop("message_thread_id")
    data.setdefault("is_private", data["chat_id"] > 0)
    return AnswerRecord(**data)
