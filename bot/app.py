"""Composition root: builds every piece from the settings and runs the bot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand

from bot.assistant.client import Assistant, build_openai_client
from bot.assistant.knowledge import KnowledgeBase, KnowledgeError, retrieval_tools
from bot.clock import Clock, SystemClock
from bot.config import Settings, StreamMode
from bot.health import PROBE_TIMEOUT_SECONDS, HealthCheck
from bot.storage import build_redis
from bot.telegram.access import AccessMiddleware, AccessPolicy
from bot.telegram.budget import BudgetMiddleware, CallBudget
from bot.telegram.calls import ChatCaller
from bot.telegram.dedupe import UpdateDeduplicator
from bot.telegram.ordering import ChatOrdering
from bot.telegram.pacing import Pacer
from bot.telegram.recovery import close_interrupted_answers
from bot.telegram.render import Rendered
from bot.telegram.routers import build_routers
from bot.telegram.routers.knowledge import UploadQueue
from bot.telegram.sending import send_parts
from bot.telegram.streamer import ProgressCallback, ReplyStreamer
from bot.telegram.surface import ReplySurface
from bot.telegram.target import ChatTarget
from bot.telegram.texts import ENGLISH, LANGUAGES, Texts
from bot.telegram.typing import FirstSign, TypingIndicator
from bot.threads.gate import TurnGate
from bot.threads.journal import AnswerJournal
from bot.threads.limits import UsageLimits
from bot.threads.signals import StopSignals
from bot.threads.store import ThreadStore
from bot.turns import TurnPolicy, TurnRunner
from bot.web import WebhookHandler, WebServer, web_application

log = logging.getLogger(__name__)

INTERRUPT_WAIT_SECONDS = 10.0  # after the grace period: time for interrupted answers to show their notice


class App:
    """The running bot: Telegram client, dispatcher, Redis-backed threads and the model client."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.redis, self.store_description = build_redis(settings)
        self.store = ThreadStore(
            self.redis, prefix=settings.redis_prefix, ttl_seconds=settings.thread_ttl_seconds
        )
        self.gate = TurnGate(
            self.redis, prefix=settings.redis_prefix, lease_seconds=settings.turn_lease_seconds
        )
        self.openai = build_openai_client(settings)
        # openai imports (and pydantic builds) the Responses types on first use; doing it now keeps that
        # half-second stall out of the first burst of questions.
        _ = self.openai.responses, self.openai.vector_stores
        self.assistant = Assistant(
            self.openai,
            model=settings.model_uri,
            instructions=settings.assistant_instructions,
            temperature=settings.temperature,
            max_output_tokens=settings.max_output_tokens,
        )
        session = AiohttpSession(
            api=TelegramAPIServer.from_base(settings.telegram_api_url),
            timeout=settings.telegram_timeout,
        )
        self.bot = Bot(settings.bot_token.get_secret_value(), session=session, default=DefaultBotProperties())
        self.budget = CallBudget(self.clock)
        self.typing = TypingIndicator(self.bot, self.clock)
        self.bot.session.middleware(BudgetMiddleware(self.budget))
        self.signals = StopSignals(self.redis, prefix=settings.redis_prefix)
        self.journal = AnswerJournal(self.redis, prefix=settings.redis_prefix)
        self.limits = UsageLimits(
            self.redis,
            prefix=settings.redis_prefix,
            per_minute=settings.rate_limit_per_minute,
            daily_tokens=settings.daily_token_budget,
        )
        self.access = AccessPolicy(
            settings.allowed_user_ids, settings.allowed_chat_ids, settings.admin_user_ids
        )
        self.runner = TurnRunner(
            store=self.store,
            gate=self.gate,
            signals=self.signals,
            journal=self.journal,
            limits=self.limits,
            assistant=self.assistant,
            streamer_factory=self._streamer,
            notify=self._notify,
            policy=TurnPolicy(
                history_max_messages=settings.history_max_messages,
                history_max_chars=settings.history_max_chars,
                burst_seconds=settings.burst_seconds,
                queue_notice_seconds=settings.queue_notice_seconds,
            ),
            clock=self.clock,
            tools=self._tools,
        )
        self.knowledge = KnowledgeBase(
            self.openai,
            self.redis,
            prefix=settings.redis_prefix,
            configured_store_id=settings.yandex_vector_store_id,
        )
        self.dispatcher = Dispatcher(
            runner=self.runner,
            store=self.store,
            limits=self.limits,
            knowledge=self.knowledge,
            uploads=UploadQueue(),
        )
        # Before anything awaits: a chat's messages keep their arrival order until they are queued.
        self.dispatcher.update.outer_middleware(ChatOrdering())
        self.dispatcher.update.outer_middleware(FirstSign(self.typing))
        # Then: a duplicate delivery must not even count against a user's limits.
        self.dedupe = UpdateDeduplicator(
            self.redis,
            prefix=settings.redis_prefix,
            bot_id=self.bot.id,
            ttl_seconds=settings.update_dedupe_ttl_seconds,
        )
        self.dispatcher.update.outer_middleware(self.dedupe)
        access = AccessMiddleware(self.access, self.redis, prefix=settings.redis_prefix)
        for observer in (
            self.dispatcher.message,
            self.dispatcher.callback_query,
            self.dispatcher.stopped_message_generation,
        ):
            observer.outer_middleware(access)
        self.dispatcher.include_routers(*build_routers())
        self.dispatcher.startup.register(self._on_startup)
        self._listener: asyncio.Task[None] | None = None
        # Set once the bot is about to take updates (tests and health checks wait on it).
        self.ready = asyncio.Event()
        self.health = HealthCheck(
            redis_probe=self.redis.ping,
            telegram_probe=lambda: self.bot.get_me(request_timeout=int(PROBE_TIMEOUT_SECONDS)),
            clock=self.clock,
        )
        self.web_port: int | None = None  # the bound port of the webhook/health server, once it listens
        self._webhook: WebhookHandler | None = None
        self._stop_serving = asyncio.Event()

    async def _tools(self) -> list[dict[str, Any]]:
        """The retrieval tools for the next request: the knowledge base (once it has a store), web search."""
        try:
            store_id = await self.knowledge.store_id()
        except KnowledgeError:
            log.warning("knowledge base unavailable; answering without it", exc_info=True)
            store_id = None
        return retrieval_tools(self.settings, store_id)

    async def _notify(self, target: ChatTarget, text: str) -> None:
        await send_parts(self.bot, target, [Rendered(text)])

    def _streamer(
        self, target: ChatTarget, texts: Texts, on_progress: ProgressCallback | None = None
    ) -> ReplyStreamer:
        settings = self.settings
        interval = settings.stream_interval if target.is_private else settings.stream_group_interval
        caller = ChatCaller(Pacer(interval, self.clock), self.budget, self.clock)
        drafts = settings.stream_mode in (StreamMode.DRAFT, StreamMode.AUTO) and target.is_private
        # Draft ids only need to differ between answers in one chat; the user's message id does.
        draft_id = (target.reply_to_message_id or 1) if drafts else None
        surface = ReplySurface(self.bot, target, caller, stop_label=texts.stop_button, draft_id=draft_id)
        return ReplyStreamer(
            self.bot, surface, texts, clock=self.clock, typing=self.typing, on_progress=on_progress
        )

    async def _on_startup(self) -> None:
        await self.redis.ping()
        listening = asyncio.Event()
        self._listener = asyncio.create_task(self.signals.listen(self.runner.stop_local, listening))
        await asyncio.wait_for(listening.wait(), timeout=10)
        await close_interrupted_answers(self.bot, self.journal, self.gate, self.store)
        for language, texts in LANGUAGES.items():
            commands = [BotCommand(command=name, description=text) for name, text in texts.commands.items()]
            await self.bot.set_my_commands(commands, language_code=None if texts is ENGLISH else language)
        log.info(
            "Bot started: model %s, store %s, stream mode %s",
            self.settings.model_uri,
            self.store_description,
            self.settings.stream_mode.value,
        )
        if self.access.open:
            log.warning("ALLOWED_USER_IDS and ALLOWED_CHAT_IDS are empty: the bot is open to everyone")
        self.ready.set()

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        """Long polling until stopped; then running answers get a grace period before being cancelled.

        With HEALTH_PORT set, `/healthz` is served on HEALTH_HOST:HEALTH_PORT meanwhile.
        """
        health: WebServer | None = None
        try:
            if self.settings.health_port is not None:
                health = WebServer(web_application(health=self.health))
                self.web_port = await health.start(self.settings.health_host, self.settings.health_port)
                log.info("health checks on http://%s:%d/healthz", self.settings.health_host, self.web_port)
            # A webhook left over from webhook mode would make every getUpdates fail with 409 Conflict.
            await self.bot.delete_webhook(drop_pending_updates=False)
            await self.dispatcher.start_polling(
                self.bot,
                handle_signals=handle_signals,
                close_bot_session=False,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
            )
        finally:
            if health is not None:
                await health.stop()
            await self.close()

    async def run_webhook(self, *, handle_signals: bool = True) -> None:
        """Webhook mode until stopped: Telegram posts updates to WEBHOOK_URL, served on WEBHOOK_HOST:PORT.

        The server (webhook at WEBHOOK_PATH, and `/healthz`) listens before start-up, so health checks
        answer meanwhile; the webhook is registered once start-up succeeded. At shutdown the server
        stops accepting first, then running answers get the grace period, as in polling mode. The
        webhook stays registered: other processes may still serve it, and Telegram keeps the updates
        for a restarted one.
        """
        settings = self.settings
        if settings.webhook_url is None or settings.webhook_secret is None:
            raise RuntimeError("webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET")
        secret = settings.webhook_secret.get_secret_value()
        self._webhook = WebhookHandler(self.dispatcher, self.bot, secret_token=secret)
        server = WebServer(
            web_application(health=self.health, webhook=(settings.webhook_path, self._webhook))
        )
        workflow = {"dispatcher": self.dispatcher, "bots": (self.bot,), **self.dispatcher.workflow_data}
        loop = asyncio.get_running_loop()
        stop_signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        started = False
        try:
            for number in stop_signals:
                loop.add_signal_handler(number, self._stop_serving.set)
            self.web_port = await server.start(settings.webhook_host, settings.webhook_port)
            await self.dispatcher.emit_startup(bot=self.bot, **workflow)
            started = True
            await self.bot.set_webhook(
                url=settings.webhook_url,
                secret_token=secret,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
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
                    await self.dispatcher.emit_shutdown(bot=self.bot, **workflow)
            finally:
                await self.close()

    async def stop(self) -> None:
        """Stop taking updates (either mode); `run_polling`/`run_webhook` then shut down gracefully."""
        self._stop_serving.set()
        with contextlib.suppress(RuntimeError):  # not polling (any more)
            await self.dispatcher.stop_polling()

    async def close(self) -> None:
        """Let running answers finish for the grace period, then end them with an "interrupted" notice."""
        running = set(self.runner.running)
        if self._webhook is not None:  # updates accepted but not yet in the runner count too
            running |= self._webhook.in_flight
        if running:
            grace = self.settings.shutdown_grace_seconds
            log.info("waiting up to %.0f s for %d running answer(s)", grace, len(running))
            _, pending = await asyncio.wait(running, timeout=grace)
            if pending:
                log.info("interrupting %d answer(s)", self.runner.interrupt_all())
                _, pending = await asyncio.wait(pending, timeout=INTERRUPT_WAIT_SECONDS)
            for task in pending:  # queued behind an answer, or stuck: nothing more can be done
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.bot.session.close()
        await self.openai.close()
        await self.redis.aclose()
