"""Shared fixtures: a real Redis on its own key prefix, the HTTP fakes, and the bot running against them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.app import App
from bot.config import Settings, load_settings
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


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


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def yandex() -> AsyncIterator[FakeYandex]:
    fake = FakeYandex()
    await fake.start()
    yield fake
    await fake.stop()


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


@pytest.fixture
async def run_bot(make_settings: SettingsFactory) -> AsyncIterator[BotRunner]:
    """Starts the real App (long polling against the fakes); every started app is stopped at teardown."""
    started: list[tuple[App, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> App:
        app = App(make_settings(**overrides))
        task = asyncio.create_task(app.run_polling(handle_signals=False))
        started.append((app, task))
        return app

    yield start
    for app, task in started:
        await stop_bot(app, task)


async def stop_bot(app: App, task: asyncio.Task[None]) -> None:
    if not task.done():
        await asyncio.wait_for(app.ready.wait(), timeout=10)
    await app.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=30)
