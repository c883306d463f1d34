"""Composition root: builds every piece of the bot from the settings, and nothing else.

Running it (polling or webhook, signals, start-up and shutdown) is `bot.runners`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from openai import AsyncOpenAI
from redis.asyncio import Redis
from yandex_ai_studio_sdk._auth import BaseAuth  # the SDK's provider interface; not re-exported publicly

from bot.assistant.client import Assistant
from bot.assistant.connection import YandexConnection
from bot.assistant.knowledge import KnowledgeBase
from bot.assistant.quota import GenerationQuota
from bot.clock import Clock, SystemClock
from bot.config import Settings, StreamMode
from bot.health import PROBE_TIMEOUT_SECONDS, HealthCheck
from bot.keys import RedisKeys
from bot.storage import build_redis
from bot.telegram.budget import BudgetMiddleware, CallBudget
from bot.telegram.chat_action import TypingIndicator
from bot.telegram.middlewares import install_middlewares
from bot.telegram.middlewares.access import AccessMiddleware, AccessPolicy
from bot.telegram.middlewares.dedupe import UpdateDeduplicator
from bot.telegram.middlewares.first_sign import FirstSign
from bot.telegram.routers import build_routers
from bot.telegram.routers.knowledge import UploadQueue
from bot.telegram.sender import Outbox
from bot.telegram.streamer import ReplyStreamers
from bot.threads.gate import TurnGate
from bot.threads.journal import AnswerJournal
from bot.threads.limits import UsageLimits
from bot.threads.signals import StopSignals
from bot.threads.store import ThreadStore
from bot.turns.generation import ENTRY_WAIT_SECONDS, Generations
from bot.turns.runner import TurnPolicy, TurnRunner


class Workflow(TypedDict):
    """What every handler can ask for by name (aiogram's workflow data)."""

    runner: TurnRunner
    store: ThreadStore
    limits: UsageLimits
    knowledge: KnowledgeBase
    uploads: UploadQueue
    outbox: Outbox


@dataclass(frozen=True, slots=True)
class App:
    """Every piece of one bot process, wired together."""

    settings: Settings
    clock: Clock
    keys: RedisKeys
    redis: Redis
    store_description: str  # for the start-up log line (no password)
    store: ThreadStore
    gate: TurnGate
    journal: AnswerJournal
    signals: StopSignals
    limits: UsageLimits
    access: AccessPolicy
    yandex: YandexConnection  # the renewed credential and the openai client it authorises
    openai: AsyncOpenAI
    quota: GenerationQuota
    generations: Generations
    knowledge: KnowledgeBase
    bot: Bot
    outbox: Outbox
    streamers: ReplyStreamers
    runner: TurnRunner
    dedupe: UpdateDeduplicator
    dispatcher: Dispatcher
    health: HealthCheck

    @property
    def sdk_auth(self) -> BaseAuth:
        """The auth provider for the Yandex SDK (SpeechKit, YandexART): the bot's one renewed credential."""
        return self.yandex.credentials.sdk_auth


def build_app(
    settings: Settings, *, clock: Clock | None = None, on_secret: Callable[[str], None] | None = None
) -> App:
    """Every piece of the bot; `on_secret` learns each credential handed out while it runs (the log
    redaction, bot.logs.SecretRedactor.add)."""
    clock = clock or SystemClock()
    keys = RedisKeys(settings.redis_prefix)
    redis, store_description = build_redis(settings)
    store = ThreadStore(redis, keys=keys, ttl_seconds=settings.thread_ttl_seconds)
    gate = TurnGate(redis, keys=keys, lease_seconds=settings.turn_lease_seconds)
    journal = AnswerJournal(redis, keys=keys)
    signals = StopSignals(redis, keys=keys)
    limits = UsageLimits(
        redis, keys=keys, per_minute=settings.rate_limit_per_minute, daily_tokens=settings.daily_token_budget
    )
    access = AccessPolicy(settings.allowed_user_ids, settings.allowed_chat_ids, settings.admin_user_ids)

    yandex = YandexConnection.open(settings, on_secret=on_secret)
    openai = yandex.openai
    # openai imports (and pydantic builds) the Responses types on first use; doing it now keeps that
    # half-second stall out of the first burst of questions.
    _ = openai.responses, openai.vector_stores
    assistant = Assistant(
        openai,
        model=settings.model_uri,
        instructions=settings.assistant_instructions,
        temperature=settings.temperature,
        max_output_tokens=settings.max_output_tokens,
        diagnosis=yandex.diagnosis,
    )
    knowledge = KnowledgeBase(
        openai,
        redis,
        keys=keys,
        configured_store_id=settings.yandex_vector_store_id,
        diagnosis=yandex.diagnosis,
    )
    quota = GenerationQuota(redis, keys=keys, limit=settings.yandex_max_concurrent_generations)
    generations = Generations(
        quota,
        clock=clock,
        rate_limit_wait=settings.yandex_rate_limit_wait_seconds,
        # Questions wait out the burst window on their way to the line; an earlier arrival may take that long.
        entry_wait=settings.burst_seconds + ENTRY_WAIT_SECONDS,
    )

    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.telegram_api_url), timeout=settings.telegram_timeout
    )
    bot = Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(link_preview_is_disabled=True),
    )
    budget = CallBudget(clock)
    # Every message-sending call, whoever makes it, waits for the bot-wide budget.
    bot.session.middleware(BudgetMiddleware(budget))
    outbox = Outbox(bot, budget, clock)
    typing = TypingIndicator(bot, clock)
    streamers = ReplyStreamers(
        outbox,
        typing,
        clock,
        drafts=settings.stream_mode in (StreamMode.DRAFT, StreamMode.AUTO),
        private_interval=settings.stream_interval,
        group_interval=settings.stream_group_interval,
    )
    runner = TurnRunner(
        store=store,
        gate=gate,
        signals=signals,
        journal=journal,
        limits=limits,
        assistant=assistant,
        streamer_factory=streamers,
        notify=outbox.notify,
        policy=TurnPolicy(
            history_max_messages=settings.history_max_messages,
            history_max_chars=settings.history_max_chars,
            burst_seconds=settings.burst_seconds,
            queue_notice_seconds=settings.queue_notice_seconds,
        ),
        clock=clock,
        tools=functools.partial(knowledge.tools, settings),
        generations=generations,
    )

    workflow = Workflow(
        runner=runner, store=store, limits=limits, knowledge=knowledge, uploads=UploadQueue(), outbox=outbox
    )
    dispatcher = Dispatcher(**workflow)
    dedupe = UpdateDeduplicator(
        redis, keys=keys, bot_id=bot.id, ttl_seconds=settings.update_dedupe_ttl_seconds
    )
    install_middlewares(
        dispatcher,
        first_sign=FirstSign(typing),
        dedupe=dedupe,
        access=AccessMiddleware(access, redis, keys=keys, outbox=outbox),
        line=generations,
    )
    dispatcher.include_routers(*build_routers())
    health = HealthCheck(
        redis_probe=redis.ping,
        telegram_probe=lambda: bot.get_me(request_timeout=int(PROBE_TIMEOUT_SECONDS)),
        clock=clock,
    )
    return App(
        settings=settings,
        clock=clock,
        keys=keys,
        redis=redis,
        store_description=store_description,
        store=store,
        gate=gate,
        journal=journal,
        signals=signals,
        limits=limits,
        access=access,
        yandex=yandex,
        openai=openai,
        quota=quota,
        generations=generations,
        knowledge=knowledge,
        bot=bot,
        outbox=outbox,
        streamers=streamers,
        runner=runner,
        dedupe=dedupe,
        dispatcher=dispatcher,
        health=health,
    )
