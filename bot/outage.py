"""One log line per change of state of something that keeps failing and recovering (a Redis outage),
instead of a traceback on every retry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


def describe(error: BaseException) -> str:
    """An exception in one line: its type and message, no traceback."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class OutageLog:
    """Logs `what` failing once when it starts failing, and once when it works again."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what
        self.failing = False

    def failed(self, error: BaseException) -> None:
        if not self.failing:
            self.failing = True
            self._log.warning("%s lost (%s); retrying", self._what, describe(error))

    def ok(self) -> None:
        if self.failing:
            self.failing = False
            self._log.info("%s restored", self._what)


async def every(interval: float, work: Callable[[], Awaitable[object]], outage: OutageLog) -> None:
    """Run `work` every `interval` seconds until cancelled; its failures go to `outage`, one line each way."""
    while True:
        try:
            await work()
            outage.ok()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            outage.failed(error)
        await asyncio.sleep(interval)
