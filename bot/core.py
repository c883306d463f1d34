"""The part of the composition root every front end shares: Redis, threads, limits, the model, the
chats' settings — everything but how answers are shown. `bot.factory` adds Telegram to it; the console
chat adds a terminal. Nothing here imports aiogram, so the console starts quickly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from openai import AsyncOpenAI
from redis.asyncio import Redis
from yandex_ai_studio_sdk._auth import BaseAuth  # the SDK's provider interface; not re-exported publicly

from bot.assistant.client import Assistant
from bot.assistant.connection import YandexConnection
from bot.assistant.images import ImageGenerator
from bot.assistant.knowledge import KnowledgeBase
from bot.assistant.quota import GenerationQuota
from bot.assistant.speech import SpeechKit
from bot.assistant.yandex_sdk import build_sdk
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.keys import RedisKeys
from bot.metrics import Metrics
from bot.storage import build_redis
from bot.threads.chat_settings import ChatSettingsStore
from bot.threads.gate import TurnGate
from bot.threads.journal import AnswerJournal
from bot.threads.limits import UsageLimits
from bot.threads.signals import StopSignals
from bot.threads.store import ThreadStore
from bot.threads.usage import UsageStats
from bot.turns.generation import ENTRY_WAIT_SECONDS, Generations
from bot.turns.profiles import ChatProfiles
from bot.turns.recovery import Heartbeat, new_process_id
from bot.turns.runner import TurnPolicy, TurnRunner
from bot.turns.streaming import Notifier, StreamerFactory


@dataclass(frozen=True, slots=True)
class Core:
    """What answering needs whatever shows the answers: Redis, threads, limits, the model, chat settings."""

    settings: Settings
    clock: Clock
    process_id: str  # owner of this process's answers and turn locks; its heartbeat key
    heartbeat: Heartbeat
    keys: RedisKeys
    redis: Redis
    store_description: str  # for the start-up log line (no password)
    store: ThreadStore
    gate: TurnGate
    journal: AnswerJournal
    signals: StopSignals
    limits: UsageLimits
    usage_stats: UsageStats
    profiles: ChatProfiles
    yandex: YandexConnection  # the renewed credential and the openai client it authorises
    openai: AsyncOpenAI
    assistant: Assistant
    knowledge: KnowledgeBase
    quota: GenerationQuota  # the folder's concurrent generations, shared by every process
    generations: Generations
    metrics: Metrics  # this process's Prometheus metrics (GET /metrics)
    chat_settings: ChatSettingsStore
    speech: SpeechKit  # SpeechKit and YandexART through the Yandex SDK, with the same credential
    images: ImageGenerator

    async def aclose(self) -> None:
        """Close what `build_core` opened: the quota's line, the credential and its clients, Redis."""
        await self.quota.aclose()
        await self.yandex.aclose()
        await self.redis.aclose()
        self.metrics.close()

    @property
    def sdk_auth(self) -> BaseAuth:
        """The auth provider for the Yandex SDK (SpeechKit, YandexART): the bot's one renewed credential."""
        return self.yandex.credentials.sdk_auth

    def turn_runner(
        self,
        streamer_factory: StreamerFactory,
        notify: Notifier,
        *,
        journal: AnswerJournal | None = None,
        bursts: bool = True,
    ) -> TurnRunner:
        """The turn runner with answers shown by `streamer_factory` (Telegram's, or a terminal's);
        `bursts=False` answers every message on its own (a terminal sends whole lines)."""
        settings = self.settings
        return TurnRunner(
            store=self.store,
            gate=self.gate,
            signals=self.signals,
            journal=journal or self.journal,
            limits=self.limits,
            assistant=self.assistant,
            streamer_factory=streamer_factory,
            notify=notify,
            policy=TurnPolicy(
                history_max_messages=settings.history_max_messages,
                history_max_chars=settings.history_max_chars,
                burst_seconds=settings.burst_seconds if bursts else 0.0,
                queue_notice_seconds=settings.queue_notice_seconds,
            ),
            clock=self.clock,
            tools=functools.partial(self.knowledge.tools, settings),
            options=self.profiles.options,
            stats=self.usage_stats,
            generations=self.generations,
            metrics=self.metrics,
        )


def build_core(
    settings: Settings,
    *,
    clock: Clock | None = None,
    on_secret: Callable[[str], None] | None = None,
    metrics: Metrics | None = None,
) -> Core:
    """What answering needs; `on_secret` learns each credential handed out while it runs (the log
    redaction, bot.logs.SecretRedactor.add)."""
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    keys = RedisKeys(settings.redis_prefix)
    redis, store_description = build_redis(settings)
    process_id = new_process_id()
    yandex = YandexConnection.open(settings, on_secret=on_secret)
    openai = yandex.openai
    # openai imports (and pydantic builds) the Responses types on first use; doing it now keeps that
    # half-second stall out of the first burst of questions.
    _ = openai.responses, openai.vector_stores
    quota = GenerationQuota(redis, keys=keys, limit=settings.yandex_max_concurrent_generations)
    chat_settings = ChatSettingsStore(redis, keys=keys)
    # The SDK opens its gRPC channels on first use: a bot that never hears a voice note never connects.
    sdk = build_sdk(
        settings.yandex_folder_id,
        yandex.credentials.sdk_auth,
        endpoint=settings.yandex_grpc_endpoint,
        insecure=settings.yandex_grpc_insecure,
        data_logging=settings.yandex_data_logging,
    )
    return Core(
        settings=settings,
        clock=clock,
        process_id=process_id,
        heartbeat=Heartbeat(
            redis, keys=keys, process_id=process_id, ttl_seconds=settings.process_heartbeat_seconds
        ),
        keys=keys,
        redis=redis,
        store_description=store_description,
        store=ThreadStore(redis, keys=keys, ttl_seconds=settings.thread_ttl_seconds),
        gate=TurnGate(redis, keys=keys, lease_seconds=settings.turn_lease_seconds, owner=process_id),
        journal=AnswerJournal(redis, keys=keys, owner=process_id),
        signals=StopSignals(redis, keys=keys),
        limits=UsageLimits(
            redis,
            keys=keys,
            per_minute=settings.rate_limit_per_minute,
            daily_tokens=settings.daily_token_budget,
            metrics=metrics,
        ),
        usage_stats=UsageStats(redis, keys=keys),
        profiles=ChatProfiles(
            chat_settings,
            modes=settings.modes,
            allowed_models=settings.allowed_models,
            default_model=settings.yandex_model,
            default_temperature=settings.temperature,
            model_uri=settings.complete_model_uri,
        ),
        yandex=yandex,
        openai=openai,
        assistant=Assistant(
            openai,
            model=settings.model_uri,
            instructions=settings.assistant_instructions,
            temperature=settings.temperature,
            max_output_tokens=settings.max_output_tokens,
            diagnosis=yandex.diagnosis,
            metrics=metrics,
        ),
        knowledge=KnowledgeBase(
            openai,
            redis,
            keys=keys,
            configured_store_id=settings.yandex_vector_store_id,
            diagnosis=yandex.diagnosis,
            metrics=metrics,
        ),
        quota=quota,
        generations=Generations(
            quota,
            clock=clock,
            rate_limit_wait=settings.yandex_rate_limit_wait_seconds,
            # Questions wait out the burst window on their way to the line; an earlier arrival may take
            # that long.
            entry_wait=settings.burst_seconds + ENTRY_WAIT_SECONDS,
            metrics=metrics,
        ),
        chat_settings=chat_settings,
        speech=SpeechKit(sdk, timeout=settings.yandex_grpc_timeout, default_voice=settings.tts_voice),
        images=ImageGenerator(sdk, timeout=settings.image_timeout),
        metrics=metrics,
    )
