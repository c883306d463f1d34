"""An aiohttp fake of the Yandex Cloud metadata service's token endpoint, issuing short-lived tokens.

``GET /computeMetadata/v1/instance/service-accounts/default/token`` with ``Metadata-Flavor: Google``
answers ``{"access_token", "expires_in", "token_type": "Bearer"}``; without the header it answers 403, as
GCE-style metadata servers do. Like those servers it hands out the same cached token until it has less
than ``renew_before`` seconds left (default 0: until it is dead — the least kind choice; Yandex's own
caching is undocumented), and ``expires_in`` is whole seconds rounded down, as on the wire.
Tokens are issued into a TokenRegistry, which the fake Yandex consults.
"""

from __future__ import annotations

import math

from aiohttp import web

from tests.fakes.yandex.tokens import TokenRegistry

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


class FakeMetadata:
    """Counts token requests (:attr:`requests`) and header-less ones (:attr:`refused`)."""

    def __init__(self, registry: TokenRegistry, *, lifetime: float = 3.0, renew_before: float = 0.0) -> None:
        self.registry = registry
        self.lifetime = lifetime
        self.renew_before = renew_before
        self.requests = 0
        self.refused = 0
        self.issued: list[str] = []
        self.fail_next = 0  # answer this many following requests with 500
        self.address = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Start listening; returns (and sets) :attr:`address` as host:port (what YC_METADATA_ADDR holds)."""
        app = web.Application()
        app.router.add_get(TOKEN_PATH, self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.address = f"{host}:{port}"
        return self.address

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _current(self) -> str:
        if not self.issued or self.registry.remaining(self.issued[-1]) <= self.renew_before:
            self.issued.append(self.registry.issue_iam_token(self.lifetime))
        return self.issued[-1]

    async def _token(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata-Flavor") != "Google":
            self.refused += 1
            return web.Response(status=403, text="Missing required header: Metadata-Flavor: Google")
        self.requests += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500, text="Internal error")
        token = self._current()
        expires_in = max(0, math.floor(self.registry.remaining(token)))
        return web.json_response({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})
