"""Bot-wide daily statistics for /stats, written as answers finish and cheap to read back.

Per UTC day: a hash of totals (answers, tokens, stopped answers, failures by kind) and two HyperLogLogs
of the chats and users answered, so "active in the last 7 days" is one PFCOUNT over seven keys instead of
a scan. Everything expires a little after the 7-day window. Keys: `bot.keys`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.threads.limits import DAY, utc_day

log = logging.getLogger(__name__)

WINDOW_DAYS = 7
KEEP_SECONDS = (WINDOW_DAYS + 1) * DAY
_ANSWERS, _TOKENS, _STOPPED, _FAILED = "answers", "tokens", "stopped", "failed:"


@dataclass(frozen=True, slots=True)
class FinishedTurn:
    """What one finished turn adds to the day's statistics."""

    chat_key: str
    user_id: int | None
    tokens: int = 0
    failure: str | None = None  # a FailureKind value
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class Totals:
    answers: int = 0
    tokens: int = 0
    stopped: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatsSummary:
    """Today (UTC) and the last 7 days including today."""

    chats_today: int
    chats_week: int
    users_today: int
    users_week: int
    today: Totals
    week: Totals


class UsageStats:
    def __init__(self, redis: Redis, *, keys: RedisKeys, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock

    async def record(self, turn: FinishedTurn) -> None:
        """Count a finished turn; a Redis failure is logged, never raised (the answer is already shown)."""
        day = utc_day(self._clock())
        totals, chats, users = (
            self._keys.stats_totals(day),
            self._keys.stats_chats(day),
            self._keys.stats_users(day),
        )
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(totals, _ANSWERS, 1)
                if turn.tokens > 0:
                    pipe.hincrby(totals, _TOKENS, turn.tokens)
                if turn.stopped:
                    pipe.hincrby(totals, _STOPPED, 1)
                if turn.failure is not None:
                    pipe.hincrby(totals, _FAILED + turn.failure, 1)
                pipe.pfadd(chats, turn.chat_key)
                if turn.user_id is not None:
                    pipe.pfadd(users, str(turn.user_id))
                for key in (totals, chats, users):
                    pipe.expire(key, KEEP_SECONDS)
                await pipe.execute()
        except Exception:
            log.warning(
                "could not record the statistics of an answer in chat %s", turn.chat_key, exc_info=True
            )

    async def summary(self) -> StatsSummary:
        now = self._clock()
        days = [utc_day(now - offset * DAY) for offset in range(WINDOW_DAYS)]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.pfcount(self._keys.stats_chats(days[0]))
            pipe.pfcount(*(self._keys.stats_chats(day) for day in days))
            pipe.pfcount(self._keys.stats_users(days[0]))
            pipe.pfcount(*(self._keys.stats_users(day) for day in days))
            for day in days:
                pipe.hgetall(self._keys.stats_totals(day))
            chats_today, chats_week, users_today, users_week, *daily = await pipe.execute()
        return StatsSummary(
            chats_today=chats_today,
            chats_week=chats_week,
            users_today=users_today,
            users_week=users_week,
            today=_totals([daily[0]]),
            week=_totals(daily),
        )


def _totals(days: list[dict[str, str]]) -> Totals:
    answers = tokens = stopped = 0
    failures: dict[str, int] = {}
    for raw in days:
        answers += int(raw.get(_ANSWERS, 0))
        tokens += int(raw.get(_TOKENS, 0))
        stopped += int(raw.get(_STOPPED, 0))
        for name, value in raw.items():
            if name.startswith(_FAILED):
                kind = name.removeprefix(_FAILED)
                failures[kind] = failures.get(kind, 0) + int(value)
    return Totals(answers, tokens, stopped, dict(sorted(failures.items())))
