"""Per-user limits kept in Redis: messages per minute and an optional daily token budget, and what each
user asked and spent today (for /usage)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.metrics import Metrics

DAY = 86400


@dataclass(frozen=True, slots=True)
class UserUsage:
    """One user's day so far (UTC) and what the limits leave; None: that limit is off."""

    questions: int
    tokens: int
    per_minute: int | None
    left_this_minute: int | None
    daily_tokens: int | None
    tokens_left: int | None
    day_ends: float  # unix seconds of the next UTC midnight, when the day's counts start again


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
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._redis = redis
        self._keys = keys
        self._per_minute = per_minute
        self._daily_tokens = daily_tokens
        self._clock = clock

    async def admit(self, user_id: int) -> LimitHit | None:
        """Count one question; None when the user may ask it."""
        hit = await self._admit(user_id)
        if hit is not None:
            self._metrics.question_refused(hit.kind)
        return hit

    async def _admit(self, user_id: int) -> LimitHit | None:
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
        """Count the model's tokens of an answer (always: /usage shows them even without a budget)."""
        if tokens <= 0:
            return
        await self._count(self._tokens_key(user_id, self._clock()), tokens)

    async def count_questions(self, user_id: int, questions: int = 1) -> None:
        if questions > 0:
            await self._count(self._keys.questions(user_id, utc_day(self._clock())), questions)

    async def usage(self, user_id: int) -> UserUsage:
        now = self._clock()
        day = utc_day(now)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._keys.questions(user_id, day))
            pipe.get(self._keys.tokens(user_id, day))
            pipe.get(self._keys.rate(user_id, int(now // 60)))
            questions, tokens, this_minute = await pipe.execute()
        spent = int(tokens or 0)
        per_minute = self._per_minute or None
        daily = self._daily_tokens or None
        return UserUsage(
            questions=int(questions or 0),
            tokens=spent,
            per_minute=per_minute,
            left_this_minute=None if per_minute is None else max(0, per_minute - int(this_minute or 0)),
            daily_tokens=daily,
            tokens_left=None if daily is None else max(0, daily - spent),
            day_ends=_next_utc_midnight(now),
        )

    async def _count(self, key: str, amount: int) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, 2 * DAY)
            await pipe.execute()

    def _tokens_key(self, user_id: int, now: float) -> str:
        return self._keys.tokens(user_id, utc_day(now))


def utc_day(now: float) -> str:
    """The UTC day of a moment, as the day part of Redis keys (`20250301`)."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")


def _next_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()
