"""The Redis connection: the configured server, or an embedded in-memory store for a quick start."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis

from bot.config import Settings

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 200
POOL_WAIT_SECONDS = 20


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
    # A blocking pool: a burst of many chats waits briefly for a connection instead of failing with
    # MaxConnectionsError (the default pool raises once its 100 connections are busy).
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool), _without_password(url)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def text(value: object) -> str | None:
    """A string reply of our clients (all made with `decode_responses=True`), typed as such."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a decoded Redis reply, got {type(value).__name__}")
