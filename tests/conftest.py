"""Shared fixtures: a real Redis on its own key prefix, the HTTP fakes, and the bot running against them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.config import Settings, load_settings
from bot.factory import App, build_app
from bot.keys import RedisKeys
from bot.runners import BotService
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex
from tests.fakes.yandex.quota import GenerationQuotaFake
from tests.fakes.yandex_grpc import FakeYandexGrpc
from tests.helpers import WEBHOOK_SECRET, WEBHOOK_URL

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def keys(redis_prefix: str) -> RedisKeys:
    return RedisKeys(redis_prefix)


@pytest.fixture
async def redis(redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    try:
        await client.ping()
    except Exception as error:  # the suite needs a real Redis; say where it looked
        pytest.fail(f"Redis is not reachable at {TEST_REDIS_URL}: {error}")
    yield client
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


# Telegram's flood limits, on in every e2e test (a fake is never kinder than the service): about one call
# a second per private chat (bursts of 3), 20 a minute per group, 30 a second per bot.
FLOOD_LIMITS: dict[str, Any] = {"private_interval": 1.0, "group_per_minute": 20, "global_per_second": 30}


@pytest.fixture
async def telegram(request: pytest.FixtureRequest) -> AsyncIterator[FakeTelegram]:
    """The fake Bot API with flood control on; a test opts out only with a reason:
    ``@pytest.mark.flood_control_off("why")``."""
    marker = request.node.get_closest_marker("flood_control_off")
    if marker is not None:
        assert marker.args and str(marker.args[0]).strip(), "flood_control_off needs a reason"
    fake = FakeTelegram() if marker is not None else FakeTelegram(**FLOOD_LIMITS)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def yandex() -> AsyncIterator[FakeYandex]:
    fake = FakeYandex()
    # Yandex's default folder quota, on as in production: `yandex.quota = None` or `.limit = N` to change.
    fake.quota = GenerationQuotaFake(limit=10)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def yandex_grpc() -> AsyncIterator[FakeYandexGrpc]:
    """SpeechKit, YandexART and discovery over gRPC, with the HTTP fake's key and folder. A bot reaches
    it with the overrides `grpc_settings(yandex_grpc)`."""
    fake = FakeYandexGrpc()
    await fake.start()
    yield fake
    await fake.stop()


def grpc_settings(fake: FakeYandexGrpc) -> dict[str, Any]:
    return {"yandex_grpc_endpoint": fake.address, "yandex_grpc_insecure": True}


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(
    telegram: FakeTelegram, yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> SettingsFactory:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "_env_file": None,
            "bot_token": telegram.token,
            "telegram_api_url": telegram.base_url,
            "yandex_api_key": yandex.api_key,
            "yandex_folder_id": yandex.folder_id,
            "yandex_base_url": yandex.base_url,
            "yandex_max_retries": 0,
            "redis_url": TEST_REDIS_URL,
            "redis_prefix": redis_prefix,
            "stream_interval": 0.05,
            "stream_group_interval": 0.1,
            "burst_seconds": 0,
            "shutdown_grace_seconds": 2,
        }
        values.update(overrides)
        return load_settings(**values)

    return factory


BotRunner = Callable[..., Awaitable[App]]


class Services:
    """Bots started by a test, stopped at its teardown."""

    def __init__(self) -> None:
        self.started: list[tuple[BotService, asyncio.Task[None]]] = []

    async def start(self, settings: Settings, *, webhook: bool = False) -> BotService:
        """Run a bot (long polling, or the webhook) until it takes updates; a start-up error is raised."""
        service = BotService(build_app(settings))
        run = service.run_webhook if webhook else service.run_polling
        task = asyncio.create_task(run(handle_signals=False))
        self.started.append((service, task))
        ready = asyncio.create_task(service.ready.wait())
        await asyncio.wait({ready, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # raises the start-up error
            raise AssertionError("the bot stopped during start-up")
        assert service.ready.is_set(), "the bot did not start within 10 s"
        return service

    async def stop(self, service: BotService) -> None:
        task = next(task for started, task in self.started if started is service)
        await service.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)

    async def stop_all(self) -> None:
        for service, task in self.started:
            if not task.done():
                await self.stop(service)


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    started = Services()
    yield started
    await started.stop_all()


@pytest.fixture
def run_bot(make_settings: SettingsFactory, services: Services) -> BotRunner:
    """Starts the real bot (long polling against the fakes) and waits until it takes updates."""

    async def start(**overrides: Any) -> App:
        return (await services.start(make_settings(**overrides))).app

    return start


WebhookRunner = Callable[..., Awaitable[BotService]]


@pytest.fixture
def run_webhook_bot(make_settings: SettingsFactory, services: Services) -> WebhookRunner:
    """Starts the real bot in webhook mode on a free local port and waits until it takes updates."""

    async def start(**overrides: Any) -> BotService:
        values: dict[str, Any] = {
            "webhook_url": WEBHOOK_URL,
            "webhook_secret": WEBHOOK_SECRET,
            "webhook_host": "127.0.0.1",
            "webhook_port": 0,
            **overrides,
        }
        return await services.start(make_settings(**values), webhook=True)

    return start


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session
