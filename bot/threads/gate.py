"""One answer at a time per chat, across every bot process sharing the Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from bot.keyed_lock import KeyedLock
from bot.keys import RedisKeys
from bot.log_context import ChatRef

log = logging.getLogger(__name__)


class TurnGate:
    """Serialises the turns of each chat.

    Inside one process an asyncio.Lock per chat keeps waiting messages in arrival order (its waiters are
    woken first-in, first-out). Across processes a Redis lock with a lease guards the chat; the lease is
    renewed while the answer streams, so a long answer keeps it, and a crashed process frees it within one
    lease. The lock is released on every exit path, cancellation included.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        keys: RedisKeys,
        lease_seconds: float,
        max_wait_seconds: float = 600.0,
        poll_seconds: float = 0.05,
        owner: str = "",
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._lease = lease_seconds
        self._max_wait = max_wait_seconds
        self._poll = poll_seconds
        self._local: KeyedLock[str] = KeyedLock()
        # The lock's token starts with the process id: crash recovery can tell whose lease it is.
        self.owner = owner

    @property
    def lease_seconds(self) -> float:
        return self._lease

    def busy(self, chat_key: str) -> bool:
        """Whether a turn of this chat is running or waiting in this process."""
        return self._local.busy(chat_key)

    def queued(self, chat_key: str) -> bool:
        """Whether another turn of this chat waits in this process behind the running one."""
        return self._local.waiting(chat_key) > 0

    async def held(self, chat_key: str) -> bool:
        """Whether any process is answering in this chat right now."""
        return bool(await self._redis.exists(self._keys.turn(chat_key)))

    @contextlib.asynccontextmanager
    async def turn(self, chat_key: str) -> AsyncIterator[None]:
        # The local lock registers the turn before its first await: `busy()` is true from here on.
        async with self._local.hold(chat_key), self._redis_lock(chat_key):
            yield

    @contextlib.asynccontextmanager
    async def _redis_lock(self, chat_key: str) -> AsyncIterator[None]:
        lock = self._redis.lock(
            self._keys.turn(chat_key),
            timeout=self._lease,
            sleep=self._poll,
            blocking_timeout=self._max_wait,
        )
        if not await lock.acquire(token=f"{self.owner}:{uuid.uuid4().hex}"):
            raise TimeoutError(f"chat {chat_key} stayed busy for {self._max_wait:.0f} s")
        renewer = asyncio.create_task(self._renew(lock, chat_key))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            try:
                # Shielded: a cancelled turn must still free the chat for the next one.
                await asyncio.shield(lock.release())
            except LockError:
                log.warning("turn lease of %s had already expired", ChatRef(chat_key))

    async def _renew(self, lock: Lock, chat_key: str) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await lock.reacquire()
            except LockError:
                log.warning("lost the turn lease of %s", ChatRef(chat_key))
                return
            except Exception:  # a Redis hiccup must not kill the answer; retry next round
                log.warning("could not renew the turn lease of %s", ChatRef(chat_key), exc_info=True)
