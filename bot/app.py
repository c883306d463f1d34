"""Composition root: builds every piece from the settings and runs the bot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit, urlunsplit

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand
from redis.asyncio import Redis

from bot.assistant.client import Assistant, build_openai_client
from bot.clock import Clock, SystemClock
from bot.config import Settings, StreamMode
from bot.telegram.budget import CallBudget
from bot.telegram.calls import ChatCaller
from bot.telegram.pacing import Pacer
from bot.telegram.routers import build_routers
from bot.telegram.streamer import ReplyStreamer
from bot.telegram.surface import ReplySurface
from bot.telegram.target import ChatTarget
from bot.telegram.texts import ENGLISH, LANGUAGES, Texts
from bot.threads.gate import TurnGate
from bot.threads.signals import StopSignals
from bot.threads.store import ThreadStore
from bot.turns import TurnRunner

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 20.0


def build_redis(settings: Settings) -> tuple[Redis, str]:
    """The configured Redis, or an embedded in-memory one; also a password-free description for logs."""
    if settings.redis_url is None:
        import fakeredis

        log.warning(
            "REDIS_URL is not set: using an embedded in-memory store. NOTHING SURVIVES A RESTART and "
            "several bot processes cannot share it. Set REDIS_URL for real use."
        )
        return fakeredis.FakeAsyncRedis(decode_responses=True), "in-memory (fakeredis)"
    url = settings.redis_url.get_secret_value()
    client = Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return client, _without_password(url)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


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
        self.openai = build_openai_client(
            base_url=settings.yandex_base_url,
            credential=settings.yandex_credential,
            folder_id=settings.yandex_folder_id,
            timeout=settings.yandex_timeout,
            max_retries=settings.yandex_max_retries,
            data_logging=settings.yandex_data_logging,
        )
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
        self.signals = StopSignals(self.redis, prefix=settings.redis_prefix)
        self.runner = TurnRunner(
            store=self.store,
            gate=self.gate,
            signals=self.signals,
            assistant=self.assistant,
            streamer_factory=self._streamer,
            history_max_messages=settings.history_max_messages,
            history_max_chars=settings.history_max_chars,
        )
        self.dispatcher = Dispatcher(runner=self.runner, store=self.store)
        self.dispatcher.include_routers(*build_routers())
        self.dispatcher.startup.register(self._on_startup)
        self.ready = (
            asyncio.Event()
        )  # set once polling is about to start (tests and health checks wait on it)

    def _streamer(self, target: ChatTarget, texts: Texts) -> ReplyStreamer:
        settings = self.settings
        interval = settings.stream_interval if target.is_private else settings.stream_group_interval
        caller = ChatCaller(Pacer(interval, self.clock), self.budget, self.clock)
        drafts = settings.stream_mode in (StreamMode.DRAFT, StreamMode.AUTO) and target.is_private
        # Draft ids only need to differ between answers in one chat; the user's message id does.
        draft_id = (target.reply_to_message_id or 1) if drafts else None
        surface = ReplySurface(self.bot, target, caller, stop_label=texts.stop_button, draft_id=draft_id)
        return ReplyStreamer(self.bot, surface, texts, clock=self.clock)

    async def _on_startup(self) -> None:
        await self.redis.ping()
        listening = asyncio.Event()
        self._listener = asyncio.create_task(self.signals.listen(self.runner.stop_local, listening))
        await asyncio.wait_for(listening.wait(), timeout=10)
        for language, texts in LANGUAGES.items():
            commands = [BotCommand(command=name, description=text) for name, text in texts.commands.items()]
            await self.bot.set_my_commands(commands, language_code=None if texts is ENGLISH else language)
        log.info(
            "Bot started: model %s, store %s, stream mode %s",
            self.settings.model_uri,
            self.store_description,
            self.settings.stream_mode.value,
        )
        self.ready.set()

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        """Long polling until stopped; then running answers get a grace period before being cancelled."""
        try:
            await self.dispatcher.start_polling(
                self.bot,
                handle_signals=handle_signals,
                close_bot_session=False,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
            )
        finally:
            await self.close()

    async def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # not polling (any more)
            await self.dispatcher.stop_polling()

    async def close(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        running = set(self.runner.running)
        if running:
            log.info("waiting up to %.0f s for %d running answer(s)", grace, len(running))
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
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
