"""Every Bot API call counted by method and result, and the flood waits summed (a session middleware)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    RestartingTelegram,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot.metrics import Metrics

log = logging.getLogger(__name__)


def call_result(error: BaseException | None) -> str:
    """The `result` label of a call: ok, 429, 4xx, 5xx or network (by the exception's type alone)."""
    if error is None:
        return "ok"
    if isinstance(error, TelegramRetryAfter):
        return "429"
    if isinstance(error, TelegramServerError | RestartingTelegram):
        return "5xx"
    if isinstance(error, TelegramNetworkError | TimeoutError | OSError):
        return "network"
    return "4xx"


class CallMetrics(BaseRequestMiddleware):
    """Installed first on the bot's session, so it sees every call as Telegram answered it.

    The method name is the API's own (`sendMessage`, `editMessageText`, …): a fixed set, so the label
    stays bounded. A cancelled call (a stopped answer) is not counted: it has no result.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name: Any = getattr(method, "__api_method__", None) or type(method).__name__
        try:
            response = await make_request(bot, method)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            flood = float(error.retry_after) if isinstance(error, TelegramRetryAfter) else None
            result = call_result(error)
            self._metrics.telegram_call(str(name), result, flood_wait=flood)
            # At DEBUG every call is a log line, with the turn id of the answer that made it.
            log.debug("Telegram %s: %s", name, result)
            raise
        self._metrics.telegram_call(str(name), "ok")
        log.debug("Telegram %s: ok", name)
        return response
