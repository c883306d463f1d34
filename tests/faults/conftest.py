"""What the fault suite needs: a private Redis server a test may pause, kill and restart, and real
`python -m bot` processes against the fakes, whose log the test reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.conftest import TEST_REDIS_URL
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex
from tests.helpers import SECRET_HEADER, WEBHOOK_SECRET, WEBHOOK_URL

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A `redis-server` of the test's own on a free port, with an append-only file in a temp dir, so a
    restart keeps the data (as Docker's Redis with a volume does). Never the shared server."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self.process = await asyncio.create_subprocess_exec(
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            client = Redis.from_url(self.url)
            try:
                await client.ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
            finally:
                await client.aclose()

    async def stop(self) -> None:
        """SIGTERM: Redis finishes its append-only file and exits (a `docker restart`)."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)

    async def restart(self, down_seconds: float = 0.0) -> None:
        await self.stop()
        await asyncio.sleep(down_seconds)
        await self.start()

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.kill()


class BotProcess:
    """A real `python -m bot` process; its log (stderr) is collected as it comes."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.env = env
        self.args = args
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> BotProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *self.args,
            env=self.env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_log(self, text: str, timeout: float = 30, times: int = 1) -> None:  # noqa: ASYNC109
        """Until `text` is in the log (`times` times)."""
        deadline = time.monotonic() + timeout
        while self.log.count(text) < times:
            assert self.process is not None
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the log:\n{self.log}")
            await asyncio.sleep(0.05)

    async def started(self, timeout: float = 30) -> BotProcess:  # noqa: ASYNC109
        await self.wait_for_log("Bot started", timeout)
        return self

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    async def wait(self, timeout: float = 30) -> int:  # noqa: ASYNC109
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)
        return code

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.wait()


class BotProcesses:
    """Processes a test started; killed at teardown."""

    def __init__(self, telegram: FakeTelegram, yandex: FakeYandex, redis_prefix: str) -> None:
        self.telegram = telegram
        self.yandex = yandex
        self.redis_prefix = redis_prefix
        self.started: list[BotProcess] = []

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "YANDEX_", "REDIS_", "WEBHOOK"))
        }
        env.update(
            {
                "BOT_TOKEN": self.telegram.token,
                "TELEGRAM_API_URL": self.telegram.base_url,
                "YANDEX_API_KEY": self.yandex.api_key,
                "YANDEX_FOLDER_ID": self.yandex.folder_id,
                "YANDEX_BASE_URL": self.yandex.base_url,
                "YANDEX_MAX_RETRIES": "0",
                "REDIS_URL": TEST_REDIS_URL,
                "REDIS_PREFIX": self.redis_prefix,
                "STREAM_INTERVAL": "0.1",
                "STREAM_GROUP_INTERVAL": "0.2",
                "SHUTDOWN_GRACE_SECONDS": "0.5",
                "BURST_SECONDS": "0",
                "RECOVERY_SWEEP_SECONDS": "1",
                "PROCESS_HEARTBEAT_SECONDS": "4",
                **overrides,
            }
        )
        return env

    async def start(self, *args: str, wait: bool = True, **overrides: str) -> BotProcess:
        process = await BotProcess(self.env(**overrides), args).start()
        self.started.append(process)
        if wait and not args:
            await process.started()
        return process

    async def kill_all(self) -> None:
        for process in self.started:
            await process.kill()


@pytest.fixture
async def bots(
    telegram: FakeTelegram, yandex: FakeYandex, redis: Redis, redis_prefix: str
) -> AsyncIterator[BotProcesses]:
    started = BotProcesses(telegram, yandex, redis_prefix)
    yield started
    await started.kill_all()


async def post_update(http: aiohttp.ClientSession, port: int, update: dict[str, Any]) -> int:
    """POST an update to a bot process's webhook as Telegram does; the HTTP status."""
    headers = {"Content-Type": "application/json", SECRET_HEADER: WEBHOOK_SECRET}
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    async with http.post(url, data=json.dumps(update), headers=headers) as response:
        return response.status


def webhook_env(port: int) -> dict[str, str]:
    return {
        "WEBHOOK_URL": WEBHOOK_URL,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
    }


def count(lines: Iterator[str] | list[str], text: str) -> int:
    return sum(text in line for line in lines)


def prefixed(values: dict[str, Any]) -> dict[str, str]:
    return {key.upper(): str(value) for key, value in values.items()}
