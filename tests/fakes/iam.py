"""An aiohttp fake of Yandex IAM's REST exchange of an OAuth token for an IAM token.

``POST /iam/v1/tokens`` with ``{"yandexPassportOauthToken": ...}`` answers ``{"iamToken", "expiresAt"}``
(RFC 3339 with nanoseconds, as IAM writes it). An unknown OAuth token gets 401; the body's wording is
unconfirmed. The SDK's ``OAuthTokenAuth`` cannot be pointed here: it exchanges over gRPC through the SDK's
own client. This fake serves our ``OAuthSource``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiohttp import web

from tests.fakes.yandex.tokens import TokenRegistry

EXCHANGE_PATH = "/iam/v1/tokens"


class FakeIam:
    """Exchanges the one OAuth token it knows; counts exchanges in :attr:`exchanges`."""

    def __init__(self, registry: TokenRegistry, *, oauth_token: str, lifetime: float = 3.0) -> None:
        self.registry = registry
        self.oauth_token = oauth_token
        self.lifetime = lifetime
        self.exchanges = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(EXCHANGE_PATH, self._exchange)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}{EXCHANGE_PATH}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _exchange(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or body.get("yandexPassportOauthToken") != self.oauth_token:
            return web.json_response({"code": 16, "message": "OAuth token is invalid or expired"}, status=401)
        self.exchanges += 1
        token = self.registry.issue_iam_token(self.lifetime)
        expires = datetime.fromtimestamp(time.time() + self.lifetime, UTC)
        stamp = expires.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expires.microsecond:06d}123Z"
        return web.json_response({"iamToken": token, "expiresAt": stamp})
