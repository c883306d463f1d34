"""End to end in webhook mode: the real bot serving Telegram's webhook (and `/healthz`) over HTTP.

The fake Telegram does not post updates itself; the tests play Telegram's part and POST each update to
the bot's webhook, the way Telegram would (headers, JSON body), and watch the fake Bot API for the
answers. Health checks are also covered in polling mode, where a small server serves only `/healthz`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.config import SettingsError
from bot.factory import build_app
from bot.runners import BotService
from bot.startup import StartupFailed
from tests.conftest import TEST_REDIS_URL, BotRunner, Services, SettingsFactory, WebhookRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import (
    SECRET_HEADER,
    WEBHOOK_URL,
    deliver,
    health,
    health_address,
    question,
    webhook_address,
)
from tests.helpers import WEBHOOK_SECRET as SECRET

CHAT = 2001


class TcpProxy:
    """Forwards local TCP connections to a target; `close()` makes the target unreachable at once."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, upstream_writer}
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            writer.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_url_via(port: int) -> str:
    db = urlsplit(TEST_REDIS_URL).path or "/0"
    return f"redis://127.0.0.1:{port}{db}"


# -------------------------------------------------------------------------------------- the webhook


async def test_requests_without_the_right_secret_get_401_and_are_not_handled(
    telegram: FakeTelegram, yandex: FakeYandex, run_webhook_bot: WebhookRunner, http: aiohttp.ClientSession
) -> None:
    yandex.script("Only for Telegram.")
    service = await run_webhook_bot()
    update = question(telegram, CHAT, "let me in")

    assert await deliver(http, service, update, secret=None) == 401
    assert await deliver(http, service, update, secret="wrong_secret") == 401
    assert await deliver(http, service, update, secret=SECRET + "x") == 401
    # Non-ASCII in the header must be a plain 401, not a server error.
    async with http.post(
        webhook_address(service),
        data=json.dumps(update),
        headers={SECRET_HEADER: "sécret".encode().decode("latin-1")},
    ) as response:
        assert response.status == 401
    await asyncio.sleep(0.5)
    assert yandex.requests == [] and telegram.bot_texts(CHAT) == []

    # The rejected deliveries did not claim the update: Telegram's real delivery is still answered.
    assert await deliver(http, service, update) == 200
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == ["Only for Telegram."])


async def test_the_webhook_answers_at_once_while_the_answer_takes_seconds(
    telegram: FakeTelegram, yandex: FakeYandex, run_webhook_bot: WebhookRunner, http: aiohttp.ClientSession
) -> None:
    answer = "A slow and thoughtful answer."
    yandex.script(Reply(text=answer, first_delay=2.0, chunk_size=10))
    service = await run_webhook_bot()
    update = question(telegram, CHAT, "think hard")

    began = time.monotonic()
    status = await deliver(http, service, update)
    elapsed = time.monotonic() - began

    assert status == 200
    assert elapsed < 0.5, f"the webhook took {elapsed:.2f} s; Telegram would time out and re-deliver"
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == [answer], timeout=10)
    assert time.monotonic() - began >= 2.0


async def test_a_redelivered_update_is_answered_once(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    run_webhook_bot: WebhookRunner,
    http: aiohttp.ClientSession,
    redis: Redis,
) -> None:
    yandex.responder = lambda body: Reply(text="Just once.", delay=0.02)
    service = await run_webhook_bot()
    update = question(telegram, CHAT, "hello?")

    # Two deliveries at the same moment, and a late one after the answer.
    statuses = await asyncio.gather(deliver(http, service, update), deliver(http, service, update))
    assert statuses == [200, 200]
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == ["Just once."])
    assert await deliver(http, service, update) == 200
    await asyncio.sleep(0.5)

    assert telegram.bot_texts(CHAT) == ["Just once."]
    assert len(yandex.requests) == 1
    key = f"{service.app.settings.redis_prefix}update:{service.app.bot.id}:{update['update_id']}"
    assert 86000 < await redis.ttl(key) <= 86400


async def test_a_burst_of_updates_does_not_ask_telegram_who_the_bot_is_once_per_update(
    telegram: FakeTelegram, yandex: FakeYandex, run_webhook_bot: WebhookRunner, http: aiohttp.ClientSession
) -> None:
    # Every update needs the bot's own user (is it a question for the bot?). Polling learns it at start;
    # the webhook must too, or the first burst sends one getMe per update before its "typing…".
    yandex.responder = lambda body: Reply(text="Hello.", delay=0.01)
    service = await run_webhook_bot()
    chats = [CHAT + index for index in range(1, 21)]
    updates = [question(telegram, chat, "hi there") for chat in chats]

    statuses = await asyncio.gather(*(deliver(http, service, update) for update in updates))

    assert set(statuses) == {200}
    answered = lambda: all(telegram.bot_texts(chat) == ["Hello."] for chat in chats)  # noqa: E731
    await telegram.wait_until(answered, timeout=20)
    assert len(telegram.calls_of("getMe")) == 1, "getMe once, at start-up"
    assert telegram.calls_of("getMe")[0].at < telegram.calls_of("setWebhook")[0].at


async def test_start_up_registers_the_webhook_with_the_secret_and_the_update_types(
    telegram: FakeTelegram, run_webhook_bot: WebhookRunner
) -> None:
    service = await run_webhook_bot()
    await telegram.wait_until(lambda: bool(telegram.calls_of("setWebhook")))

    [call] = telegram.calls_of("setWebhook")
    assert call.status == 200
    assert call.params["url"] == WEBHOOK_URL
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == service.app.dispatcher.resolve_used_update_types()
    assert "message" in call.params["allowed_updates"]
    assert call.params.get("drop_pending_updates") is False
    assert telegram.webhook_url == WEBHOOK_URL
    assert telegram.calls_of("getUpdates") == []


async def test_shutdown_stops_taking_updates_and_lets_the_running_answer_finish(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    make_settings: SettingsFactory,
    http: aiohttp.ClientSession,
) -> None:
    answer = "This answer is finished even though the bot is stopping."
    yandex.script(Reply(text=answer, chunk_size=6, delay=0.1))
    service = BotService(
        build_app(
            make_settings(
                webhook_url=WEBHOOK_URL,
                webhook_secret=SECRET,
                webhook_host="127.0.0.1",
                webhook_port=0,
                shutdown_grace_seconds=15,
            )
        )
    )
    task = asyncio.create_task(service.run_webhook(handle_signals=False))
    await asyncio.wait_for(service.ready.wait(), timeout=10)
    assert await deliver(http, service, question(telegram, CHAT, "talk to me")) == 200
    await yandex.wait_until(lambda: yandex.open_streams == 1)

    await service.stop()
    with pytest.raises(aiohttp.ClientConnectionError):  # the port is closed at once
        await deliver(http, service, question(telegram, CHAT, "too late"))
    await asyncio.wait_for(task, timeout=20)

    assert telegram.bot_texts(CHAT) == [answer]
    assert len(yandex.requests) == 1


async def test_polling_after_webhook_mode_removes_the_webhook(
    telegram: FakeTelegram, yandex: FakeYandex, run_webhook_bot: WebhookRunner, run_bot: BotRunner
) -> None:
    webhook_app = await run_webhook_bot()
    await telegram.wait_until(lambda: telegram.webhook_url == WEBHOOK_URL)
    await webhook_app.stop()

    yandex.script("Polling again.")
    await run_bot()
    telegram.user_message(CHAT, "are you there?")
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == ["Polling again."])
    assert telegram.webhook_url == ""


# ------------------------------------------------------------------------------- updates, any mode


async def test_polling_skips_updates_another_process_has_claimed(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, redis: Redis, redis_prefix: str
) -> None:
    taken = question(telegram, CHAT, "answered elsewhere")
    await redis.set(f"{redis_prefix}update:{telegram.bot_id}:{taken['update_id']}", 1, ex=60)
    telegram.user_message(CHAT, "answer me")
    yandex.script("Answer to the second.")

    await run_bot()
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == ["Answer to the second."])
    await asyncio.sleep(0.3)
    assert telegram.bot_texts(CHAT) == ["Answer to the second."]
    assert len(yandex.requests) == 1


# --------------------------------------------------------------------------------------- /healthz


async def test_healthz_is_ok_when_redis_and_telegram_answer(
    telegram: FakeTelegram, run_webhook_bot: WebhookRunner, http: aiohttp.ClientSession
) -> None:
    service = await run_webhook_bot()
    before = len(telegram.calls_of("getMe"))

    first = await health(http, service)
    second = await health(http, service)

    assert first == second == (200, {"status": "ok", "redis": True, "telegram": True})
    # The Telegram probe is cached for a few seconds: frequent health checks do not hit the Bot API.
    assert len(telegram.calls_of("getMe")) - before == 1


async def test_healthz_reports_503_when_redis_becomes_unreachable(
    telegram: FakeTelegram, run_webhook_bot: WebhookRunner, http: aiohttp.ClientSession
) -> None:
    target = urlsplit(TEST_REDIS_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    service = await run_webhook_bot(redis_url=redis_url_via(await proxy.start()))
    try:
        assert (await health(http, service))[0] == 200
        await proxy.close()

        began = time.monotonic()
        status, body = await health(http, service)
        assert time.monotonic() - began < 5
        assert (status, body) == (503, {"status": "degraded", "redis": False, "telegram": True})
    finally:
        await proxy.close()


async def test_healthz_reports_503_when_telegram_is_unreachable(
    telegram: FakeTelegram, run_webhook_bot: WebhookRunner, http: aiohttp.ClientSession
) -> None:
    service = await run_webhook_bot()
    telegram.fail_next("getMe", error_code=502, description="Bad Gateway", times=5)

    status, body = await health(http, service)

    assert (status, body) == (503, {"status": "degraded", "redis": True, "telegram": False})


async def test_an_app_with_redis_on_a_closed_port_neither_hangs_nor_claims_health(
    telegram: FakeTelegram, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(make_settings(redis_url=redis_url_via(closed_port()), health_port=0))
    report = await asyncio.wait_for(app.health.check(), timeout=5)
    assert (report.redis, report.telegram) == (False, True)

    # Start-up needs Redis: it waits for it, saying so in one line per attempt, never claims to be ready,
    # and a stop meanwhile ends it cleanly.
    service = BotService(app)
    with caplog.at_level(logging.WARNING, logger="bot.startup"):
        running = asyncio.create_task(service.run_polling(handle_signals=False))
        await asyncio.sleep(2.5)
        assert not running.done() and not service.ready.is_set()
        await service.stop()
        with pytest.raises(StartupFailed) as stopped:
            await asyncio.wait_for(running, timeout=15)
    assert stopped.value.exit_code == 0
    attempts = [r.getMessage() for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(attempts) >= 2 and not any(r.exc_info for r in caplog.records)


async def test_polling_mode_serves_healthz_on_health_port(
    make_settings: SettingsFactory, services: Services, http: aiohttp.ClientSession
) -> None:
    service = await services.start(make_settings(health_port=0))

    assert await health(http, service) == (200, {"status": "ok", "redis": True, "telegram": True})
    async with http.post(health_address(service).replace("/healthz", "/telegram/webhook")) as response:
        assert response.status == 404  # polling mode has no webhook endpoint


# ---------------------------------------------------------------------------------------- settings


def test_webhook_url_without_a_secret_is_a_settings_error(make_settings: SettingsFactory) -> None:
    with pytest.raises(SettingsError) as caught:
        make_settings(webhook_url=WEBHOOK_URL)
    assert "WEBHOOK_SECRET" in str(caught.value)

    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        make_settings(webhook_url=WEBHOOK_URL, webhook_secret="has spaces and a ü")
    assert make_settings(webhook_url="", webhook_secret="").webhook_url is None  # empty: polling


def test_http_webhook_url_needs_a_local_bot_api_server(make_settings: SettingsFactory) -> None:
    official = {"telegram_api_url": "https://api.telegram.org", "webhook_secret": SECRET}
    with pytest.raises(SettingsError, match="WEBHOOK_URL") as caught:
        make_settings(webhook_url="http://bot.example.com/hook", **official)
    assert "HTTPS only" in str(caught.value) and "local Bot API server" in str(caught.value)
    with pytest.raises(SettingsError, match="WEBHOOK_URL"):
        make_settings(webhook_url="ftp://bot.example.com/hook", webhook_secret=SECRET)
    assert make_settings(webhook_url=WEBHOOK_URL, **official).webhook_url == WEBHOOK_URL

    # Any other server is a local Bot API server: plain HTTP on any address and port is fine there.
    local = make_settings(
        telegram_api_url="http://10.0.0.5:8081",
        webhook_url="http://10.0.0.7:9000/hook",
        webhook_secret=SECRET,
    )
    assert local.webhook_url == "http://10.0.0.7:9000/hook"


async def test_webhook_over_plain_http_with_a_local_bot_api_server(
    yandex: FakeYandex, make_settings: SettingsFactory, services: Services, http: aiohttp.ClientSession
) -> None:
    local = FakeTelegram(local_server=True)
    await local.start()
    try:
        port = closed_port()
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        settings = make_settings(
            bot_token=local.token,
            telegram_api_url=local.base_url,
            webhook_url=url,
            webhook_secret=SECRET,
            webhook_host="127.0.0.1",
            webhook_port=port,
        )
        yandex.script("Delivered over plain HTTP.")
        service = await services.start(settings, webhook=True)
        await local.wait_until(lambda: bool(local.calls_of("setWebhook")))
        [call] = local.calls_of("setWebhook")
        assert call.status == 200 and local.webhook_url == url == webhook_address(service)

        # The local server posts to exactly the URL it was given.
        update = question(local, CHAT, "over http?")
        async with http.post(
            local.webhook_url, data=json.dumps(update), headers={SECRET_HEADER: SECRET}
        ) as response:
            assert response.status == 200
        await local.wait_until(lambda: local.bot_texts(CHAT) == ["Delivered over plain HTTP."], timeout=10)
    finally:
        await services.stop_all()
        await local.stop()


async def test_the_official_server_refuses_a_plain_http_webhook(telegram: FakeTelegram) -> None:
    """The fake keeps api.telegram.org's rule, so the settings check above guards a real refusal."""
    async with aiohttp.ClientSession() as session:
        for url, error in (
            ("http://127.0.0.1:8080/hook", "An HTTPS URL must be provided"),
            ("https://bot.example.com:8080/hook", "only on ports 80, 88, 443 or 8443"),
        ):
            api = f"{telegram.base_url}/bot{telegram.token}/setWebhook"
            async with session.post(api, json={"url": url}) as response:
                body = await response.json()
            assert response.status == 400 and error in body["description"]
    assert telegram.webhook_url == ""


def test_python_m_bot_exits_2_naming_webhook_secret(tmp_path: Any) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BOT_", "YANDEX_", "REDIS_", "WEBHOOK_", "HEALTH_"))
    }
    env.update(
        BOT_TOKEN="123:abc", YANDEX_API_KEY="key", YANDEX_FOLDER_ID="b1gfolder", WEBHOOK_URL=WEBHOOK_URL
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "WEBHOOK_SECRET" in result.stderr
    assert "Traceback" not in result.stderr
