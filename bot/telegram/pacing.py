"""How often one chat's reply may be updated."""

from __future__ import annotations

from bot.clock import Clock

SLOWDOWN_AFTER_FLOOD = 1.5
MAX_SLOWDOWN = 4.0


class Pacer:
    """Spaces one chat's Telegram calls at least `interval` apart and honours flood-control pauses.

    The streamer asks `delay()` before each call, sleeps that long, then reports `spent()`. A 429 calls
    `back_off(retry_after)`: nothing is sent to that chat until the pause is over, and the chat's pace slows
    for the rest of the answer, so one flood error does not become a series.
    """

    def __init__(self, interval: float, clock: Clock) -> None:
        self._base = interval
        self._interval = interval
        self._clock = clock
        self._next_at = clock.now()  # the first message may go out at once

    @property
    def interval(self) -> float:
        return self._interval

    def delay(self) -> float:
        return max(0.0, self._next_at - self._clock.now())

    def spent(self) -> None:
        self._next_at = max(self._next_at, self._clock.now() + self._interval)

    def back_off(self, seconds: float) -> None:
        self._next_at = max(self._next_at, self._clock.now() + seconds)

    def flooded(self, retry_after: float) -> None:
        self.back_off(retry_after)
        self._interval = min(self._interval * SLOWDOWN_AFTER_FLOOD, self._base * MAX_SLOWDOWN)
