"""Per-user usage (/usage) and the bot-wide daily statistics (/stats), on a real Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.threads.limits import DAY, UsageLimits
from bot.threads.usage import KEEP_SECONDS, FinishedTurn, UsageStats

NOON = 1_700_049_600.0  # 2023-11-15 12:00 UTC


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_usage_counts_questions_and_tokens_and_what_the_limits_leave(
    redis: Redis, keys: RedisKeys
) -> None:
    clock = Clock(NOON)
    limits = UsageLimits(redis, keys=keys, per_minute=5, daily_tokens=1000, clock=clock)
    for _ in range(2):
        assert await limits.admit(42) is None
    await limits.count_questions(42, 3)  # a burst of three messages answered as one turn
    await limits.spend_tokens(42, 300)
    usage = await limits.usage(42)
    assert (usage.questions, usage.tokens) == (3, 300)
    assert (usage.per_minute, usage.left_this_minute) == (5, 3)
    assert (usage.daily_tokens, usage.tokens_left) == (1000, 700)
    assert usage.day_ends == NOON + DAY / 2

    clock.now += DAY  # the next UTC day starts from nothing
    fresh = await limits.usage(42)
    assert (fresh.questions, fresh.tokens, fresh.left_this_minute, fresh.tokens_left) == (0, 0, 5, 1000)


async def test_tokens_are_counted_without_a_budget_too(redis: Redis, keys: RedisKeys) -> None:
    limits = UsageLimits(redis, keys=keys, per_minute=0, daily_tokens=0, clock=Clock(NOON))
    await limits.spend_tokens(7, 120)
    usage = await limits.usage(7)
    assert usage.tokens == 120
    assert usage.per_minute is None and usage.tokens_left is None and usage.left_this_minute is None


async def test_stats_sum_today_and_the_last_seven_days(redis: Redis, keys: RedisKeys) -> None:
    clock = Clock(NOON)
    stats = UsageStats(redis, keys=keys, clock=clock)
    await stats.record(FinishedTurn("100", 1, tokens=50))
    await stats.record(FinishedTurn("100", 1, tokens=70, stopped=True))
    await stats.record(FinishedTurn("-200:5", 2, failure="timeout"))
    clock.now -= 3 * DAY
    await stats.record(FinishedTurn("300", 3, tokens=10, failure="timeout"))
    await stats.record(FinishedTurn("console:ops", None, tokens=5, failure="unavailable"))
    clock.now -= 7 * DAY  # outside the window
    await stats.record(FinishedTurn("999", 9, tokens=1000))
    clock.now = NOON

    summary = await stats.summary()
    assert (summary.chats_today, summary.users_today) == (2, 2)
    assert (summary.chats_week, summary.users_week) == (4, 3)
    assert (summary.today.answers, summary.today.tokens, summary.today.stopped) == (3, 120, 1)
    assert summary.today.failures == {"timeout": 1}
    assert (summary.week.answers, summary.week.tokens) == (5, 135)
    assert summary.week.failures == {"timeout": 2, "unavailable": 1}
    day = keys.stats_totals("20231115")
    assert 0 < await redis.ttl(day) <= KEEP_SECONDS


async def test_stats_survive_a_redis_failure_without_raising(keys: RedisKeys) -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=0.2)
    try:
        await UsageStats(broken, keys=keys).record(FinishedTurn("1", 1, tokens=1))
    finally:
        await broken.aclose()
