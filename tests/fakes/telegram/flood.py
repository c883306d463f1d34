"""Telegram's flood control: per private chat, per group, per bot; a refused call gets 429 and retry_after."""

from __future__ import annotations

import math
import time
from collections import deque

from tests.fakes.telegram.errors import too_many_requests

PRIVATE_BURST = 3  # token-bucket size for the private-chat rule


class FloodControl:
    """Each rule is off when its argument is None. Only successful calls consume quota:

    * ``private_interval`` (chats with id > 0): token bucket of ``PRIVATE_BURST`` (3) calls refilled at one
      call per ``private_interval`` seconds, i.e. short bursts pass, sustained rate is 1/interval.
    * ``group_per_minute`` (chats with id < 0): at most N calls in any rolling 60 s window
      (``group_window``: tests may scale the minute down, with the bot's own window scaled alike).
    * ``global_per_second``: at most N calls across all chats in any rolling 1 s window.

    A refused call gets 429 with ``retry_after = ceil(seconds until allowed)`` (>= 1), and, as on
    Telegram, that starts a ban of the chat: until it ends every counted call to that chat gets 429 with
    the time that remains (``ban()`` imposes a long one, as Telegram sometimes does after a flood).
    ``hammered[chat]`` counts the calls a bot made to a chat during its ban: a well-behaved bot makes none.
    """

    def __init__(
        self,
        private_interval: float | None = None,
        group_per_minute: int | None = None,
        global_per_second: int | None = None,
        group_window: float = 60.0,
    ) -> None:
        self.private_interval = private_interval
        self.group_window = group_window
        self.group_per_minute = group_per_minute
        self.global_per_second = global_per_second
        self._private_buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
        self._group_windows: dict[int, deque[float]] = {}
        self._global_window: deque[float] = deque()
        self._bans: dict[int, float] = {}  # chat -> monotonic end of its ban
        self.hammered: dict[int, int] = {}

    def ban(self, chat_id: int, seconds: float) -> None:
        """Ban the chat for `seconds` from now, as Telegram does after a flood (seconds to hours)."""
        self._bans[chat_id] = time.monotonic() + seconds

    def banned_for(self, chat_id: int) -> float:
        return max(0.0, self._bans.get(chat_id, 0.0) - time.monotonic())

    def check(self, chat_id: int) -> None:
        """Raise the 429 a call to this chat would get now."""
        now = time.monotonic()
        if (until := self._bans.get(chat_id, 0.0)) > now:
            self.hammered[chat_id] = self.hammered.get(chat_id, 0) + 1
            raise too_many_requests(max(1, math.ceil(until - now)))
        waits: list[float] = []
        if chat_id > 0 and self.private_interval:
            tokens = self._private_tokens(chat_id, now)
            if tokens < 1:
                waits.append((1 - tokens) * self.private_interval)
        if chat_id < 0 and self.group_per_minute:
            window = self._window(self._group_windows.setdefault(chat_id, deque()), now, self.group_window)
            if len(window) >= self.group_per_minute:
                waits.append(window[0] + self.group_window - now)
        if self.global_per_second:
            window = self._window(self._global_window, now, 1.0)
            if len(window) >= self.global_per_second:
                waits.append(window[0] + 1.0 - now)
        if waits:
            retry_after = max(1, math.ceil(max(waits)))
            self._bans[chat_id] = now + retry_after
            raise too_many_requests(retry_after)

    def consume(self, chat_id: int) -> None:
        """Count a call that went through."""
        now = time.monotonic()
        if chat_id > 0 and self.private_interval:
            self._private_buckets[chat_id] = (self._private_tokens(chat_id, now) - 1, now)
        if chat_id < 0 and self.group_per_minute:
            self._group_windows.setdefault(chat_id, deque()).append(now)
        if self.global_per_second:
            self._global_window.append(now)

    def _private_tokens(self, chat_id: int, now: float) -> float:
        assert self.private_interval
        tokens, at = self._private_buckets.get(chat_id, (float(PRIVATE_BURST), now))
        return min(float(PRIVATE_BURST), tokens + (now - at) / self.private_interval)

    @staticmethod
    def _window(window: deque[float], now: float, span: float) -> deque[float]:
        while window and window[0] <= now - span:
            window.popleft()
        return window
