"""The bot's HTTP side: Telegram's webhook endpoint and the server that hosts it (with `/healthz`)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.health import HEALTH_PATH, HealthCheck
from bot.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)


class WebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler, hardened a little.

    From aiogram: a request without the `X-Telegram-Bot-Api-Secret-Token` header, or with a wrong one,
    gets 401 and is not handled; a good one gets 200 at once and its update is handled in a background
    task, so a long answer never makes Telegram time out and re-deliver the update.

    Added here: the secret is compared as bytes (`compare_digest` on str raises for non-ASCII input, which
    a stranger could send to provoke a 500), failed updates do not leave "Task exception was never
    retrieved" noise, and the tasks still running can be listed for a graceful shutdown.
    """

    def __init__(self, dispatcher: Dispatcher, bot: Bot, *, secret_token: str, **data: Any) -> None:
        if not secret_token:
            raise ValueError("a webhook secret is required")  # an empty one would let everyone in
        super().__init__(dispatcher, bot, handle_in_background=True, secret_token=secret_token, **data)
        self._secret = secret_token.encode()

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        # aiohttp decodes headers with surrogateescape; encoding back the same way gives the raw bytes.
        given = telegram_secret_token.encode("utf-8", "surrogateescape")
        return secrets.compare_digest(given, self._secret)

    async def _background_feed_update(self, bot: Bot, update: dict[str, Any]) -> None:
        try:
            await super()._background_feed_update(bot, update)
        except Exception:  # aiogram has logged a handler's error with the update id already
            log.debug("update could not be handled", exc_info=True)

    @property
    def in_flight(self) -> set[asyncio.Task[Any]]:
        """Updates accepted and still being handled (answers included)."""
        return set(self._background_feed_update_tasks)

    async def close(self) -> None:
        """Nothing to do: the App owns the bot session (aiogram's version would close it too early)."""


METRICS_PATH = "/metrics"


def metrics_handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`GET /metrics`: the Prometheus text format (all processes' values in multi-process mode)."""

    async def handle(request: web.Request) -> web.Response:
        # Merging the processes' files reads the disk: off the event loop, so answers keep streaming.
        body = await asyncio.to_thread(metrics.render)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    return handle


def web_application(
    *,
    health: HealthCheck,
    metrics: Metrics | None = None,
    webhook: tuple[str, WebhookHandler] | None = None,
) -> web.Application:
    """`/healthz` and `/metrics`, plus the webhook endpoint at its path when given."""
    application = web.Application()
    application.router.add_get(HEALTH_PATH, health.handle)
    if metrics is not None:
        application.router.add_get(METRICS_PATH, metrics_handler(metrics))
    if webhook is not None:
        path, handler = webhook
        # Registered by hand: aiogram's register() also closes the bot session on server shutdown,
        # while answers still running need it.
        application.router.add_post(path, handler.handle)
    return application


class WebServer:
    """A small aiohttp server on one host and port."""

    def __init__(self, application: web.Application) -> None:
        self._application = application
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (port 0: any free port); returns the bound port."""
        # No access log: Telegram posts every update here, and health probes come every few seconds.
        self._runner = web.AppRunner(self._application, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except BaseException:
            await self.stop()
            raise
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        """Stop accepting connections; requests being answered get a few seconds to finish."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
