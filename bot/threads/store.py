"""Threads in Redis: the chat's current thread id and the thread's messages (keys: `bot.keys`).

Both expire after the thread's idle time-to-live, renewed on every write.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.storage import text
from bot.threads.models import ThreadMessage

# Appends only while the thread is still the chat's current one: an answer that finishes after a /reset
# must not write into (or resurrect) the thread that was erased.
_APPEND_IF_CURRENT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

# /retry: the new answer takes the place of the thread's last answer, or follows the question when the
# last message is the question itself (its answer failed before any text). Same guard as appending.
_REPLACE_LAST_ANSWER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local last = redis.call('LINDEX', KEYS[2], -1)
if not last then return 0 end
if cjson.decode(last)['role'] == 'assistant' then
  redis.call('LSET', KEYS[2], -1, ARGV[2])
else
  redis.call('RPUSH', KEYS[2], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


class ThreadStore:
    """Maps a chat (or forum topic) to its current thread and keeps the thread's messages.

    Expects a client made with `decode_responses=True`.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        keys: RedisKeys,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl_seconds
        self._clock = clock
        self._append = redis.register_script(_APPEND_IF_CURRENT)
        self._replace_last = redis.register_script(_REPLACE_LAST_ANSWER)

    def now(self) -> float:
        return self._clock()

    async def current_thread(self, chat_key: str) -> str:
        """The chat's thread id, creating a thread when the chat has none (or it expired)."""
        key = self._keys.chat_thread(chat_key)
        fresh = uuid.uuid4().hex
        # SET NX keeps two processes that start the same chat at once on one thread.
        await self._redis.set(key, fresh, nx=True, ex=self._ttl)
        current = text(await self._redis.get(key))
        if current is None:  # expired between the two calls: take ours
            await self._redis.set(key, fresh, ex=self._ttl)
            return fresh
        return current

    async def append(self, chat_key: str, thread_id: str, message: ThreadMessage) -> bool:
        """Add a message to the thread; False when the chat moved to another thread meanwhile."""
        written = await self._append(
            keys=[self._keys.chat_thread(chat_key), self._keys.thread_messages(thread_id)],
            args=[thread_id, message.to_json(), self._ttl],
        )
        return bool(written)

    async def replace_last_answer(self, chat_key: str, thread_id: str, answer: ThreadMessage) -> bool:
        """Put `answer` in place of the thread's last answer (after the question when that has none);
        False when the chat moved to another thread meanwhile, or the thread is empty."""
        written = await self._replace_last(
            keys=[self._keys.chat_thread(chat_key), self._keys.thread_messages(thread_id)],
            args=[thread_id, answer.to_json(), self._ttl],
        )
        return bool(written)

    async def messages(self, thread_id: str) -> list[ThreadMessage]:
        raw = await self._redis.lrange(self._keys.thread_messages(thread_id), 0, -1)
        return [ThreadMessage.from_json(item) for item in raw]

    async def mark_trimmed(self, thread_id: str) -> bool:
        """True the first time a thread outgrows the context window (so the user is told once)."""
        key = self._keys.thread_trimmed(thread_id)
        return bool(await self._redis.set(key, 1, nx=True, ex=self._ttl))

    async def thread_id(self, chat_key: str) -> str | None:
        """The chat's current thread id; None when it has none (never started, or expired). Creates none."""
        return text(await self._redis.get(self._keys.chat_thread(chat_key)))

    async def reset(self, chat_key: str) -> str:
        """Start a new thread for the chat and delete the old one's messages; returns the new id."""
        key = self._keys.chat_thread(chat_key)
        new_id = uuid.uuid4().hex
        old_id = text(await self._redis.set(key, new_id, ex=self._ttl, get=True))
        if old_id is not None:
            await self._redis.delete(self._keys.thread_messages(old_id))
        return new_id
