"""Per-key asyncio locks that exist only while someone holds or waits for them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holding or waiting


class KeyedLock(Generic[K]):
    """One FIFO lock per key (asyncio.Lock wakes its waiters first-in, first-out).

    A key's lock is made on first use and forgotten when its last user leaves, so a bot that has seen a
    million chats keeps locks only for the few that are busy right now.
    """

    def __init__(self) -> None:
        self._entries: dict[K, _Entry] = {}

    def busy(self, key: K) -> bool:
        """Whether anyone holds the key's lock or waits for it."""
        return key in self._entries

    def waiting(self, key: K) -> int:
        """How many wait for the key's lock behind the one holding it."""
        entry = self._entries.get(key)
        return max(0, entry.users - 1) if entry is not None else 0

    @contextlib.asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[Callable[[], None]]:
        """Hold the key's lock for the block; the yielded function releases it early (idempotent).

        Releasing early lets the next waiter go on while this user still has work to finish; the key
        stays busy until the block is left.
        """
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        held = False

        def release() -> None:
            nonlocal held
            if held:
                held = False
                entry.lock.release()

        try:
            await entry.lock.acquire()
            held = True
            yield release
        finally:
            release()
            entry.users -= 1
            if not entry.users:
                del self._entries[key]
