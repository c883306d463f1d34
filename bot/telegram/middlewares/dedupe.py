"""Each Telegram update is handled once, by one process, however often Telegram delivers it."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.metrics import Metrics
from bot.telegram.middlewares.handler import Handler

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 86400  # Telegram gives up re-delivering an update after 24 hours


class UpdateDeduplicator(BaseMiddleware):
    """Outer middleware on the Update level: claims `update_id` in Redis and skips updates already claimed.

    Telegram re-delivers a webhook update it thinks failed (a timeout, a restart, a load balancer sending
    it to another process), and after a crash a poller may see an update again. The claim is one atomic
    `SET key 1 NX EX ttl`, so of all processes sharing the Redis exactly one wins.

    The claim is taken before handling, so an update whose process dies while handling it is not
    handled again: at most once, because a question answered twice is worse than one left unanswered.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        keys: RedisKeys,
        bot_id: int,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._redis = redis
        self._keys = keys
        self._bot_id = bot_id
        self._ttl = ttl_seconds

    async def claim(self, update_id: int) -> bool:
        """True for the first claim of this update id within the TTL, False for every later one."""
        # A Redis error propagates: without Redis the turn gate cannot work either, and aiogram logs it.
        return bool(
            await self._redis.set(self._keys.update(self._bot_id, update_id), 1, nx=True, ex=self._ttl)
        )

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update) and not await self.claim(event.update_id):
            log.debug("update %d was already handled; skipping the duplicate", event.update_id)
            self._metrics.update_deduplicated()
            return None
        return await handler(event, data)
