"""The call-metrics session middleware, on a real aiogram Bot against the Telegram fake (and a dead port)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from bot.metrics import Metrics
from bot.telegram.call_metrics import CallMetrics
from tests.fakes.telegram import FakeTelegram
from tests.unit.test_metrics import value

CHAT = 8080


@pytest.fixture
async def counted(telegram: FakeTelegram) -> AsyncIterator[tuple[Bot, Metrics]]:
    metrics = Metrics()
    bot = Bot(telegram.token, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)))
    bot.session.middleware(CallMetrics(metrics))
    yield bot, metrics
    await bot.session.close()


async def test_calls_are_counted_by_method_and_result(telegram: FakeTelegram, counted) -> None:
    bot, metrics = counted
    telegram.user_message(CHAT, "hi")  # the chat exists for the fake
    await bot.send_message(CHAT, "one")
    await bot.send_message(CHAT, "two")
    await bot.get_me()

    telegram.fail_next(
        "sendMessage", error_code=429, description="Too Many Requests: retry after 7", retry_after=7
    )
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(CHAT, "flooded")
    telegram.fail_next("sendMessage", error_code=500, description="Internal Server Error")
    with pytest.raises(TelegramServerError):
        await bot.send_message(CHAT, "server trouble")
    telegram.fail_next(
        "editMessageText", error_code=400, description="Bad Request: message to edit not found"
    )
    with pytest.raises(TelegramBadRequest):
        await bot.edit_message_text("gone", chat_id=CHAT, message_id=999_999)

    assert value(metrics, "tgbot_telegram_calls_total", method="sendMessage", result="ok") == 2
    assert value(metrics, "tgbot_telegram_calls_total", method="getMe", result="ok") == 1
    assert value(metrics, "tgbot_telegram_calls_total", method="sendMessage", result="429") == 1
    assert value(metrics, "tgbot_telegram_calls_total", method="sendMessage", result="5xx") == 1
    assert value(metrics, "tgbot_telegram_calls_total", method="editMessageText", result="4xx") == 1
    assert value(metrics, "tgbot_telegram_flood_wait_seconds_total") == 7


async def test_an_unreachable_server_counts_as_network() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = Metrics()
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"), timeout=5)
    bot = Bot("123456:AAAbbbcccdddeeefffggghhh", session=session)
    bot.session.middleware(CallMetrics(metrics))
    try:
        with pytest.raises(TelegramNetworkError):
            await bot.get_me()
    finally:
        await bot.session.close()
    assert value(metrics, "tgbot_telegram_calls_total", method="getMe", result="network") == 1
