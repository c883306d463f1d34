"""The pacer with a fake clock."""

from __future__ import annotations

from bot.telegram.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.time = 100.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += max(0.0, seconds)


def test_first_call_is_immediate_then_spaced_by_the_interval() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock)
    assert pacer.delay() == 0
    pacer.spent()
    assert pacer.delay() == 1.0
    clock.time += 0.4
    assert abs(pacer.delay() - 0.6) < 1e-9


def test_flood_pause_wins_over_the_interval() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock)
    pacer.spent()
    pacer.back_off(7)
    assert pacer.delay() == 7
    pacer.spent()  # a call made early (it failed) never shortens the pause
    assert pacer.delay() == 7
