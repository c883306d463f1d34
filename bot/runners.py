"""Running a built bot: long polling or the webhook, start-up checks, signals and a graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from bot.assistant.token_sources import CredentialError
from bot.factory import App
from bot.startup import StartupFailed, reach_telegram, wait_for_redis
from bot.telegram.commands import publish_commands
from bot.web import WebhookHandler, WebServer, web_application

log = logging.getLogger(__name__)


class BotService:
    """One bot process at work. `run_polling()` or `run_webhook()` runs until `stop()` (or SIGTERM/SIGINT),
    then lets running answers finish for the grace period and closes every connection."""

    def __init__(self, app: App, *, freeze_heap: bool = False) -> None:
        self.app = app
        # A process of its own (python -m bot) hands what start-up built to gc.freeze(); a test runner
        # hosting many bots in one interpreter does not (it would keep every earlier test's objects).
        self._freeze_heap = freeze_heap
        # Set once the bot is about to take updates (tests and health checks wait on it).
        self.ready = asyncio.Event()
        self.web_port: int | None = None  # the bound port of the webhook/health server, once it listens
        self._webhook: WebhookHandler | None = None
        self._listener: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []  # the heartbeat and the recovery sweep
        self._stop_serving = asyncio.Event()
        app.dispatcher.startup.register(self._on_startup)

    async def _on_startup(self) -> None:
        app = self.app
        try:
            # Before any Yandex call: the first token (a metadata/IAM/yc fetch), then renewed ahead of expiry.
            await app.yandex.start()
        except CredentialError as error:
            log.error(
                "no Yandex credential (%s): %s",
                app.yandex.credentials.describe(),
                app.yandex.credentials.redact(str(error)),
            )
            raise
        await app.redis.ping()
        await app.heartbeat.beat()
        self._background.append(asyncio.create_task(app.heartbeat.run()))
        listening = asyncio.Event()
        self._listener = asyncio.create_task(app.signals.listen(app.runner.stop_local, listening))
        await asyncio.wait_for(listening.wait(), timeout=10)
        # Answers of processes already gone are closed now; those of one that died a moment ago (its
        # heartbeat still alive), and of any process that dies later, by the periodic sweep.
        await app.recovery.sweep()
        self._background.append(asyncio.create_task(app.recovery.run(app.settings.recovery_sweep_seconds)))
        await publish_commands(app.bot)
        # Every update needs the bot's own user (is the message meant for it?). aiogram's polling learns
        # it at start, the webhook does not: without this the first burst of N updates sends N getMe.
        await app.bot.me()
        log.info(
            "Bot started: model %s, credential %s, at most %d generations at once, store %s, stream mode %s",
            app.settings.model_uri,
            app.yandex.credentials.describe(),
            app.quota.limit,
            app.store_description,
            app.settings.stream_mode.value,
        )
        if app.access.open:
            log.warning("ALLOWED_USER_IDS and ALLOWED_CHAT_IDS are empty: the bot is open to everyone")
        # What start-up built (aiogram's and pydantic's models, the clients: most of the heap, which
        # lives as long as the process) is moved out of the collector's sight. Otherwise every full
        # collection walks it all again, and a burst of questions triggers several: each one stalled
        # the event loop, and with it the first signs (docs/performance.md, "First sign").
        if self._freeze_heap:
            gc.collect()
            gc.freeze()
        self.ready.set()

    async def reach_services(self, *, handle_signals: bool = False) -> None:
        """Wait until Redis and Telegram answer, one log line per failed attempt; a rejected token
        raises StartupFailed (exit code 2). `stop()` (or, with `handle_signals`, SIGTERM/SIGINT) while
        waiting ends the wait with StartupFailed(0)."""
        settings = self.app.settings

        async def checks() -> None:
            if settings.redis_url is not None:
                await wait_for_redis(settings.redis_url.get_secret_value())
            await reach_telegram(self.app.bot, settings.telegram_api_url)

        loop = asyncio.get_running_loop()
        numbers = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        for number in numbers:
            loop.add_signal_handler(number, self._stop_serving.set)
        checking = asyncio.create_task(checks())
        stopping = asyncio.create_task(self._stop_serving.wait())
        try:
            await asyncio.wait({checking, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for number in numbers:
                loop.remove_signal_handler(number)
            stopping.cancel()
            if not checking.done():
                checking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checking
                log.info("stopped while waiting for Redis and Telegram at start-up")
                raise StartupFailed(0)
        checking.result()  # a rejected token: StartupFailed

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        """Long polling until stopped; with HEALTH_PORT set, `/healthz` is served on HEALTH_HOST:PORT."""
        app, settings = self.app, self.app.settings
        health: WebServer | None = None
        try:
            if settings.health_port is not None:
                health = WebServer(web_application(health=app.health, metrics=app.metrics))
                self.web_port = await health.start(settings.health_host, settings.health_port)
                log.info("/healthz and /metrics on http://%s:%d", settings.health_host, self.web_port)
            await self.reach_services(handle_signals=handle_signals)
            # A webhook left over from webhook mode would make every getUpdates fail with 409 Conflict.
            await app.bot.delete_webhook(drop_pending_updates=False)
            await app.dispatcher.start_polling(
                app.bot,
                handle_signals=handle_signals,
                close_bot_session=False,
                allowed_updates=app.dispatcher.resolve_used_update_types(),
            )
        finally:
            if health is not None:
                await health.stop()
            await self._close()

    async def run_webhook(self, *, handle_signals: bool = True) -> None:
        """Webhook mode until stopped: Telegram posts updates to WEBHOOK_URL, served on WEBHOOK_HOST:PORT.

        The server (webhook at WEBHOOK_PATH, and `/healthz`) listens before start-up, so health checks
        answer meanwhile; the webhook is registered once start-up succeeded. At shutdown the server
        stops accepting first, then running answers get the grace period, as in polling mode. The
        webhook stays registered: other processes may still serve it, and Telegram keeps the updates
        for a restarted one.
        """
        app, settings = self.app, self.app.settings
        if settings.webhook_url is None or settings.webhook_secret is None:
            raise RuntimeError("webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET")
        secret = settings.webhook_secret.get_secret_value()
        self._webhook = WebhookHandler(app.dispatcher, app.bot, secret_token=secret)
        server = WebServer(
            web_application(
                health=app.health, metrics=app.metrics, webhook=(settings.webhook_path, self._webhook)
            )
        )
        workflow = {"dispatcher": app.dispatcher, "bots": (app.bot,), **app.dispatcher.workflow_data}
        loop = asyncio.get_running_loop()
        stop_signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        started = False
        try:
            for number in stop_signals:
                loop.add_signal_handler(number, self._stop_serving.set)
            self.web_port = await server.start(settings.webhook_host, settings.webhook_port)
            await self.reach_services()
            await app.dispatcher.emit_startup(bot=app.bot, **workflow)
            started = True
            await app.bot.set_webhook(
                url=settings.webhook_url,
                secret_token=secret,
                allowed_updates=app.dispatcher.resolve_used_update_types(),
                drop_pending_updates=False,
            )
            log.info(
                "webhook mode: %s served on %s:%d%s",
                settings.webhook_url,
                settings.webhook_host,
                self.web_port,
                settings.webhook_path,
            )
            await self._stop_serving.wait()
        finally:
            for number in stop_signals:
                loop.remove_signal_handler(number)
            await server.stop()
            try:
                if started:
                    await app.dispatcher.emit_shutdown(bot=app.bot, **workflow)
            finally:
                await self._close()

    async def stop(self) -> None:
        """Stop taking updates (either mode); `run_polling`/`run_webhook` then shut down gracefully."""
        self._stop_serving.set()
        with contextlib.suppress(RuntimeError):  # not polling (any more)
            await self.app.dispatcher.stop_polling()

    async def _close(self) -> None:
        app = self.app
        # Updates accepted by the webhook but not yet in the runner count as running too.
        accepted = self._webhook.in_flight if self._webhook is not None else set()
        await app.runner.drain(app.settings.shutdown_grace_seconds, also=accepted)
        tasks = [*self._background, *([self._listener] if self._listener is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._background:
            # Our answers are closed: other processes need not wait for the heartbeat to expire.
            with contextlib.suppress(Exception):
                await app.heartbeat.end()
        await app.bot.session.close()
        await app.aclose()
