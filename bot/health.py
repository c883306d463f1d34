"""`GET /healthz`: can this process reach Redis and Telegram right now?"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bot.clock import Clock

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
PROBE_TIMEOUT_SECONDS = 2.0  # a health check must answer well within an orchestrator's probe timeout
TELEGRAM_CACHE_SECONDS = 5.0

Probe = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class HealthReport:
    redis: bool
    telegram: bool

    @property
    def ok(self) -> bool:
        return self.redis and self.telegram

    def to_json(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "degraded", "redis": self.redis, "telegram": self.telegram}


class HealthCheck:
    """Runs the probes with timeouts; a probe passes when it returns without raising in time.

    Redis is pinged on every check (it is ours and cheap). Telegram's result is reused for
    `telegram_cache_seconds`, and concurrent checks share one request, so frequent probes from
    several orchestrators do not add up to a load on the Bot API (or count against its limits).
    """

    def __init__(
        self,
        *,
        redis_probe: Probe,
        telegram_probe: Probe,
        clock: Clock,
        timeout: float = PROBE_TIMEOUT_SECONDS,
        telegram_cache_seconds: float = TELEGRAM_CACHE_SECONDS,
    ) -> None:
        self._redis_probe = redis_probe
        self._telegram_probe = telegram_probe
        self._clock = clock
        self._timeout = timeout
        self._cache_seconds = telegram_cache_seconds
        self._telegram: tuple[bool, float] | None = None  # (result, when)
        self._telegram_lock = asyncio.Lock()
        self._last: dict[str, bool] = {}  # probe name -> its last result

    async def check(self) -> HealthReport:
        redis, telegram = await asyncio.gather(self._run("redis", self._redis_probe), self._telegram_ok())
        return HealthReport(redis=redis, telegram=telegram)

    async def _telegram_ok(self) -> bool:
        async with self._telegram_lock:
            cached = self._telegram
            if cached is not None and self._clock.now() - cached[1] < self._cache_seconds:
                return cached[0]
            result = await self._run("telegram", self._telegram_probe)
            self._telegram = (result, self._clock.now())
            return result

    async def _run(self, name: str, probe: Probe) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await probe()
        except Exception as error:  # any failure means "not reachable"; the reason goes to the log
            reason = str(error) or type(error).__name__
            # Probes come every few seconds: warn when a dependency goes away, not on every probe.
            level = logging.WARNING if self._last.get(name, True) else logging.DEBUG
            log.log(level, "health check: %s is not reachable: %s", name, reason)
            self._last[name] = False
            return False
        if not self._last.get(name, True):
            log.info("health check: %s is reachable again", name)
        self._last[name] = True
        return True

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler: 200 with the report when everything is reachable, else 503."""
        report = await self.check()
        return web.json_response(report.to_json(), status=200 if report.ok else 503)
