"""The folder's quota of concurrent synchronous generations, for the fake Yandex.

Plugged in with ``fake.quota = GenerationQuotaFake(limit=10)`` (see the marked lines in
tests/fakes/yandex.py). While ``limit`` responses of a folder are being generated, the next one gets
HTTP 429 before any event. The body: the OpenAI-style envelope the openai client parses
(``error.message/type/code``) carrying the fields and text Yandex's Foundation Models REST API is seen
to send for this quota (``grpcCode`` 8, ``httpStatus`` "Too Many Requests", the
``ai.textGenerationCompletionSessionsCount.count gauge quota limit exceed`` message) plus the gRPC
status name RESOURCE_EXHAUSTED. What the OpenAI-compatible endpoint sends exactly is unconfirmed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web


def quota_body(limit: int) -> dict[str, Any]:
    metric = "ai.textGenerationCompletionSessionsCount.count"
    message = f"{metric} gauge quota limit exceed: allowed {limit} requests"
    return {
        "error": {
            "message": message,
            "type": "rate_limit_exceeded",
            "code": "rate_limit_exceeded",
            "param": None,
            "grpcCode": 8,
            "httpCode": 429,
            "httpStatus": "Too Many Requests",
            "status": "RESOURCE_EXHAUSTED",
            "details": [],
        }
    }


class GenerationQuotaFake:
    """At most ``limit`` generations at once per folder; counts :attr:`rejected` and :attr:`peak`."""

    def __init__(self, limit: int = 10) -> None:
        self.limit = limit
        self.running: dict[str, int] = {}
        self.peak = 0
        self.rejected = 0

    async def serve(
        self, folder: str, generate: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Run ``generate()`` inside the folder's quota, or answer 429 without starting it."""
        if self.running.get(folder, 0) >= self.limit:
            self.rejected += 1
            return web.json_response(quota_body(self.limit), status=429)
        self.running[folder] = self.running.get(folder, 0) + 1
        self.peak = max(self.peak, self.running[folder])
        try:
            return await generate()
        finally:
            self.running[folder] -= 1
