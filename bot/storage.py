"""The Redis connection: the configured server, or an embedded in-memory store for a quick start."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.config import Settings

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 200
POOL_WAIT_SECONDS = 20
# A command on a connection Redis closed (a restart) is sent again on a fresh one, with backoff: 0.2 s,
# 0.4 s, … up to 2 s apart, seven tries in all (about 7 s of waiting), which covers a restart.
RETRIES = 6
RETRY_BASE_SECONDS = 0.2
RETRY_CAP_SECONDS = 2.0
# A command waits this long for its reply. Longer than a short stall of the server (a paused VM or
# container): the command then completes late instead of timing out and being sent a second time,
# which for a non-idempotent command (an append) could apply it twice.
SOCKET_TIMEOUT_SECONDS = 15
# An idle pooled connection is PINGed before use after this long, so a dead one is replaced at once.
HEALTH_CHECK_SECONDS = 5


def redis_retry() -> Retry:
    return Retry(ExponentialBackoff(cap=RETRY_CAP_SECONDS, base=RETRY_BASE_SECONDS), RETRIES)


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
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=redis_retry(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        # Resolved once: by default every new connection looks redis-py's version up in the installed
        # package's metadata (a file read and parse), which a burst of chats opening connections felt.
        driver_info=DriverInfo(),
    )
    return Redis(connection_pool=pool), _without_password(url)


def redis_address(url: str) -> str:
    """host:port/db of a Redis URL, for log lines (the URL itself is a secret and is redacted whole)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


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
