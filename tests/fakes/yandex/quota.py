"""The folder's quota of concurrent synchronous generations, for the fake Yandex.

On by default in the e2e tests (the ``yandex`` fixture sets ``fake.quota = GenerationQuotaFake(limit=10)``,
Yandex's default quota); ``fake.quota = None`` switches it off, ``fake.quota.limit`` changes it. While
``limit`` responses of a folder are being generated, the next one gets HTTP 429 before any event. The
body is the fake's error body (``tests/fakes/yandex/http.py``: OpenAI's envelope with Yandex's
``grpcCode`` 8, ``httpStatus`` "Too Many Requests", ``status`` RESOURCE_EXHAUSTED) carrying the message
Yandex's Foundation Models API is seen to send for this quota
(``ai.textGenerationCompletionSessionsCount.count gauge quota limit exceed: allowed 10 requests``).
Whether the OpenAI-compatible endpoint sends exactly this, and whether it sends ``Retry-After``, is
unconfirmed: ``retry_after`` (seconds) adds the header when set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.fakes.yandex.http import error_body

QUOTA_METRIC = "ai.textGenerationCompletionSessionsCount.count"


def quota_body(limit: int) -> dict[str, Any]:
    message = f"{QUOTA_METRIC} gauge quota limit exceed: allowed {limit} requests"
    return error_body(429, message, type_="rate_limit_exceeded", code="rate_limit_exceeded")


class GenerationQuotaFake:
    """At most ``limit`` generations at once per folder; counts :attr:`rejected` and :attr:`peak`."""

    def __init__(self, limit: int = 10, *, retry_after: float | None = None) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.running: dict[str, int] = {}
        self.peak = 0
        self.rejected = 0

    async def serve(
        self, folder: str, generate: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Run ``generate()`` inside the folder's quota, or answer 429 without starting it."""
        if self.running.get(folder, 0) >= self.limit:
            self.rejected += 1
            headers = {"Retry-After": f"{self.retry_after:g}"} if self.retry_after is not None else None
            return web.json_response(quota_body(self.limit), status=429, headers=headers)
        self.running[folder] = self.running.get(folder, 0) + 1
        self.peak = max(self.peak, self.running[folder])
        try:
            return await generate()
        finally:
            self.running[folder] -= 1
