"""The Redis client the bot builds from its settings."""

from __future__ import annotations

from importlib import metadata

import pytest

from bot.storage import build_redis
from tests.conftest import SettingsFactory


async def test_new_connections_do_not_read_package_metadata(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A burst of chats grows the pool by many connections at once; each used to look redis-py's version
    # up in the installed package's metadata.
    redis, _ = build_redis(make_settings())
    reads: list[str] = []
    real_version = metadata.version

    def counted(name: str) -> str:
        reads.append(name)
        return real_version(name)

    monkeypatch.setattr(metadata, "version", counted)
    pool = redis.connection_pool
    connections = [pool.make_connection() for _ in range(3)]
    try:
        for connection in connections:
            await connection.connect()
        assert await redis.ping()
    finally:
        for connection in connections:
            await connection.disconnect()
        await redis.aclose()
    assert reads == []
