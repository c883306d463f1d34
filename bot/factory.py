"""Composition root: builds every piece of the bot from the settings, and nothing else.

`bot.core.build_core` builds what any front end needs (Redis, threads, limits, the model and its
credential, the generation quota, the chats' settings); `build_app` adds Telegram on top of it, as the
console chat (`bot.console`) adds a terminal. Running the bot (polling or webhook, signals, start-up and
shutdown) is `bot.runners`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.assistant.knowledge import KnowledgeBase
from bot.clock import Clock
from bot.config import Settings, StreamMode
from bot.core import Core, build_core
from bot.health import PROBE_TIMEOUT_SECONDS, HealthCheck
from bot.metrics import Metrics
from bot.telegram import budget as limits
from bot.telegram.budget import Budget, BudgetMiddleware, CallBudget, RedisCallBudget
from bot.telegram.call_metrics import CallMetrics
from bot.telegram.chat_action import TypingIndicator
from bot.telegram.chat_admins import ChatAdmins
from bot.telegram.media import Listener, Looker, Media, Pictures, SpokenAnswers, TelegramFiles
from bot.telegram.middlewares import install_middlewares
from bot.telegram.middlewares.access import AccessMiddleware, AccessPolicy
from bot.telegram.middlewares.dedupe import UpdateDeduplicator
from bot.telegram.middlewares.first_sign import FirstSign
from bot.telegram.retry_button import RetryButtons
from bot.telegram.routers import build_routers
from bot.telegram.routers.knowledge import UploadQueue
from bot.telegram.sender import Outbox
from bot.telegram.streamer import ReplyStreamers
from bot.threads.limits import UsageLimits
from bot.threads.store import ThreadStore
from bot.threads.usage import UsageStats
from bot.turns.profiles import ChatProfiles
from bot.turns.recovery import InterruptedAnswers
from bot.turns.runner import TurnRunner


class Workflow(TypedDict):
    """What every handler can ask for by name (aiogram's workflow data)."""

    runner: TurnRunner
    store: ThreadStore
    limits: UsageLimits
    knowledge: KnowledgeBase
    uploads: UploadQueue
    outbox: Outbox
    profiles: ChatProfiles
    chat_admins: ChatAdmins
    usage_stats: UsageStats
    retry_buttons: RetryButtons
    metrics: Metrics
    media: Media


@dataclass(frozen=True, slots=True)
class App(Core):
    """Every piece of one bot process: the core, and Telegram on top of it."""

    access: AccessPolicy
    bot: Bot
    outbox: Outbox
    streamers: ReplyStreamers
    runner: TurnRunner
    dedupe: UpdateDeduplicator
    dispatcher: Dispatcher
    health: HealthCheck
    recovery: InterruptedAnswers  # closes the half-written answers of dead processes


def build_app(
    settings: Settings, *, clock: Clock | None = None, on_secret: Callable[[str], None] | None = None
) -> App:
    """Every piece of the bot; `on_secret` learns each credential handed out while it runs (the log
    redaction, bot.logs.SecretRedactor.add)."""
    core = build_core(settings, clock=clock, on_secret=on_secret)
    clock, keys, redis = core.clock, core.keys, core.redis
    access = AccessPolicy(settings.allowed_user_ids, settings.allowed_chat_ids, settings.admin_user_ids)

    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.telegram_api_url), timeout=settings.telegram_timeout
    )
    bot = Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(link_preview_is_disabled=True),
    )
    # Telegram counts per bot token: with Redis, every process of the bot keeps to the same limits.
    per_minute, window = limits.GROUP_CALLS_PER_MINUTE, limits.GROUP_WINDOW_SECONDS
    budget: Budget = (
        CallBudget(clock, group_per_minute=per_minute, group_window=window)
        if settings.redis_url is None
        else RedisCallBudget(redis, keys, clock, group_per_minute=per_minute, group_window=window)
    )
    # Counted first, so the count sees every call as Telegram answered it.
    bot.session.middleware(CallMetrics(core.metrics))
    # Every message-sending call, whoever makes it, waits for the bot-wide budget and its chat's limits.
    bot.session.middleware(BudgetMiddleware(budget))
    outbox = Outbox(bot, budget, clock, max_flood_wait=settings.telegram_max_flood_wait)
    typing = TypingIndicator(bot, clock)
    retry_buttons = RetryButtons(redis, keys=keys, ttl_seconds=settings.thread_ttl_seconds)
    streamers = ReplyStreamers(
        outbox,
        typing,
        clock,
        drafts=settings.stream_mode in (StreamMode.DRAFT, StreamMode.AUTO),
        private_interval=settings.stream_interval,
        group_interval=settings.stream_group_interval,
        retry_buttons=retry_buttons,
        metrics=core.metrics,
    )
    runner = core.turn_runner(streamers, outbox.notify)
    files = TelegramFiles(bot)
    media = Media(
        listener=Listener(
            files, core.speech, max_seconds=settings.voice_max_seconds, language=settings.speech_language
        ),
        looker=Looker(files),
        spoken=SpokenAnswers(
            core.chat_settings,
            core.speech,
            default_on=settings.voice_replies,
            max_chars=settings.tts_max_chars,
        ),
        pictures=Pictures(bot, outbox, core.images),
        vision_model=settings.vision_model_uri,
        vision_refusal=settings.vision_unavailable_text,
    )

    workflow = Workflow(
        runner=runner,
        store=core.store,
        limits=core.limits,
        knowledge=core.knowledge,
        uploads=UploadQueue(),
        outbox=outbox,
        profiles=core.profiles,
        chat_admins=ChatAdmins(bot, clock),
        usage_stats=core.usage_stats,
        retry_buttons=retry_buttons,
        metrics=core.metrics,
        media=media,
    )
    dispatcher = Dispatcher(**workflow)
    dedupe = UpdateDeduplicator(
        redis,
        keys=keys,
        bot_id=bot.id,
        ttl_seconds=settings.update_dedupe_ttl_seconds,
        metrics=core.metrics,
    )
    install_middlewares(
        dispatcher,
        first_sign=FirstSign(typing),
        dedupe=dedupe,
        access=AccessMiddleware(access, redis, keys=keys, outbox=outbox, metrics=core.metrics),
        line=core.generations,
    )
    dispatcher.include_routers(*build_routers())
    health = HealthCheck(
        redis_probe=redis.ping,
        telegram_probe=lambda: bot.get_me(request_timeout=int(PROBE_TIMEOUT_SECONDS)),
        clock=clock,
    )
    parts = {field.name: getattr(core, field.name) for field in dataclasses.fields(Core)}
    return App(
        **parts,
        access=access,
        bot=bot,
        outbox=outbox,
        streamers=streamers,
        runner=runner,
        dedupe=dedupe,
        dispatcher=dispatcher,
        health=health,
        recovery=InterruptedAnswers(
            redis,
            keys=keys,
            journal=core.journal,
            gate=core.gate,
            store=core.store,
            streamers=streamers,
            metrics=core.metrics,
        ),
    )
