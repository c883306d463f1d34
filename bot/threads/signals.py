"""Stop requests that reach the bot process actually streaming the answer, whichever process got /stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.outage import OutageLog

log = logging.getLogger(__name__)

# Resubscribing after a failure waits 1 s, then twice as long each time, up to this.
RESUBSCRIBE_MAX_SECONDS = 5.0


class StopSignals:
    """Redis pub/sub channel `stop` carrying the chat keys of answers to stop."""

    def __init__(self, redis: Redis, *, keys: RedisKeys) -> None:
        self._redis = redis
        self._channel = keys.stop_channel

    async def publish(self, chat_key: str) -> None:
        await self._redis.publish(self._channel, chat_key)

    async def listen(self, on_stop: Callable[[str], object], ready: asyncio.Event | None = None) -> None:
        """Call `on_stop(chat_key)` for every request until cancelled; reconnects after Redis errors.

        During a Redis outage it logs one line when the channel is lost and one when it is back, not a
        traceback on every attempt.
        """
        outage = OutageLog(log, "the stop channel (Redis pub/sub)")
        pause = 1.0
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    outage.ok()
                    pause = 1.0
                    if ready is not None:
                        ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            on_stop(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis restarts must not end stop handling for good
                outage.failed(error)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RESUBSCRIBE_MAX_SECONDS)
