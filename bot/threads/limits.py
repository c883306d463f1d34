"""Per-user limits kept in Redis: messages per minute and an optional daily token budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from bot.keys import RedisKeys

DAY = 86400


@dataclass(frozen=True, slots=True)
class LimitHit:
    """Which limit was reached and when (unix seconds) the user can continue."""

    kind: str  # "rate" or "tokens"
    until: float


class UsageLimits:
    """Counts each user's questions per minute and model tokens per UTC day.

    Counters are fixed windows (a key per minute or per day with a TTL), so every bot process sharing the
    Redis sees the same counts, and a user over the limit is told exactly when the window ends.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        keys: RedisKeys,
        per_minute: int,
        daily_tokens: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._per_minute = per_minute
        self._daily_tokens = daily_tokens
        self._clock = clock

    async def admit(self, user_id: int) -> LimitHit | None:
        """Count one question; None when the user may ask it."""
        now = self._clock()
        if self._daily_tokens > 0:
            used = await self._redis.get(self._tokens_key(user_id, now))
            if used is not None and int(used) >= self._daily_tokens:
                return LimitHit("tokens", _next_utc_midnight(now))
        if self._per_minute > 0:
            minute = int(now // 60)
            key = self._keys.rate(user_id, minute)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
            if count > self._per_minute:
                return LimitHit("rate", (minute + 1) * 60)
        return None

    async def spend_tokens(self, user_id: int, tokens: int) -> None:
        if self._daily_tokens <= 0 or tokens <= 0:
            return
        key = self._tokens_key(user_id, self._clock())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, tokens)
            pipe.expire(key, 2 * DAY)
            await pipe.execute()

    def _tokens_key(self, user_id: int, now: float) -> str:
        day = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
        return self._keys.tokens(user_id, day)


def _next_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()
