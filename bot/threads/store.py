"""Threads in Redis.

Keys (all under the configured prefix):
  chat:<chat key>:thread      -> the id of the chat's current thread
  thread:<thread id>:messages -> a list of JSON messages, oldest first
Both expire after the thread's idle time-to-live, renewed on every write.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from redis.asyncio import Redis

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


class ThreadStore:
    """Maps a chat (or forum topic) to its current thread and keeps the thread's messages.

    Expects a client made with `decode_responses=True`.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._clock = clock
        self._append = redis.register_script(_APPEND_IF_CURRENT)

    def _chat_key(self, chat_key: str) -> str:
        return f"{self._prefix}chat:{chat_key}:thread"

    def _messages_key(self, thread_id: str) -> str:
        return f"{self._prefix}thread:{thread_id}:messages"

    def now(self) -> float:
        return self._clock()

    async def current_thread(self, chat_key: str) -> str:
        """The chat's thread id, creating a thread when the chat has none (or it expired)."""
        key = self._chat_key(chat_key)
        fresh = uuid.uuid4().hex
        # SET NX keeps two processes that start the same chat at once on one thread.
        await self._redis.set(key, fresh, nx=True, ex=self._ttl)
        current: str | None = await self._redis.get(key)
        if current is None:  # expired between the two calls: take ours
            await self._redis.set(key, fresh, ex=self._ttl)
            return fresh
        return current

    async def append(self, chat_key: str, thread_id: str, message: ThreadMessage) -> bool:
        """Add a message to the thread; False when the chat moved to another thread meanwhile."""
        written = await self._append(
            keys=[self._chat_key(chat_key), self._messages_key(thread_id)],
            args=[thread_id, message.to_json(), self._ttl],
        )
        return bool(written)

    async def messages(self, thread_id: str) -> list[ThreadMessage]:
        raw = await self._redis.lrange(self._messages_key(thread_id), 0, -1)
        return [ThreadMessage.from_json(item) for item in raw]

    async def mark_trimmed(self, thread_id: str) -> bool:
        """True the first time a thread outgrows the context window (so the user is told once)."""
        key = f"{self._prefix}thread:{thread_id}:trimmed"
        return bool(await self._redis.set(key, 1, nx=True, ex=self._ttl))

    async def thread_id(self, chat_key: str) -> str | None:
        """The chat's current thread id; None when it has none (never started, or expired). Creates none."""
        return await self._redis.get(self._chat_key(chat_key))

    async def history(self, chat_key: str) -> list[ThreadMessage]:
        """The chat's current thread, oldest first (empty when there is none)."""
        thread_id: str | None = await self._redis.get(self._chat_key(chat_key))
        return [] if thread_id is None else await self.messages(thread_id)

    async def reset(self, chat_key: str) -> str:
        """Start a new thread for the chat and delete the old one's messages; returns the new id."""
        key = self._chat_key(chat_key)
        new_id = uuid.uuid4().hex
        old_id: str | None = await self._redis.set(key, new_id, ex=self._ttl, get=True)
        if old_id is not None:
            await self._redis.delete(self._messages_key(old_id))
        return new_id
