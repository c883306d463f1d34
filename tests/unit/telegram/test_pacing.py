"""Pacing and the bot-wide budget, with a fake clock."""

from __future__ import annotations

import asyncio

from bot.telegram.budget import CallBudget
from bot.telegram.pacing import Pacer
from tests.helpers import FakeClock


def test_first_call_is_immediate_then_spaced_by_the_interval() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock)
    assert pacer.delay() == 0
    pacer.spent()
    assert pacer.delay() == 1.0
    clock.time += 0.4
    assert abs(pacer.delay() - 0.6) < 1e-9


def test_flood_pause_wins_and_slows_the_rest_of_the_answer() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock)
    pacer.spent()
    pacer.flooded(7)
    assert pacer.delay() == 7
    pacer.spent()  # a call made early (it failed) never shortens the pause
    assert pacer.delay() == 7
    clock.time += 7
    pacer.spent()
    assert pacer.delay() == 1.5, "after a 429 the chat is paced more slowly"
    for _ in range(10):
        pacer.flooded(0)
    assert pacer.interval == 4.0, "the slowdown is bounded"


async def test_budget_spaces_calls_at_its_rate_after_the_burst() -> None:
    clock = FakeClock()
    budget = CallBudget(clock, rate=10, burst=2)
    times = []
    for _ in range(6):
        await budget.acquire()
        times.append(round(clock.now() - 100.0, 6))
    assert times == [0.0, 0.0, 0.1, 0.2, 0.3, 0.4]


async def test_budget_serves_waiters_in_arrival_order() -> None:
    clock = FakeClock()
    budget = CallBudget(clock, rate=5, burst=1)
    order: list[int] = []

    async def caller(number: int) -> None:
        await budget.acquire()
        order.append(number)

    await asyncio.gather(*(caller(number) for number in range(8)))
    assert order == list(range(8))
    assert abs(clock.now() - 100.0 - 7 / 5) < 1e-6
