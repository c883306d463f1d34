"""The scale-out benchmark's Telegram fake delivers updates to a webhook the way Telegram does.

bench/fake_server.py's BenchTelegram, with ``push_to``: nothing is posted before setWebhook; afterwards
every update is POSTed with the registered secret, an update not answered 200 is delivered again, and a
delivered one is no longer pending.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bench.fake_server import SECRET_HEADER, BenchTelegram

TOKEN = "123456:TEST-TOKEN"
SECRET = "bench_Secret-1"


class Receiver:
    """A webhook endpoint that records what it gets and can refuse the first few requests."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.refuse = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get(SECRET_HEADER, ""), json.loads(await request.read())))
        if self.refuse > 0:
            self.refuse -= 1
            return web.Response(status=500)
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


async def set_webhook(api: str) -> None:
    payload = {"url": "https://bench.invalid/hook", "secret_token": SECRET}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api}/bot{TOKEN}/setWebhook", json=payload) as reply,
    ):
        assert (await reply.json())["ok"] is True


async def test_updates_are_posted_with_the_secret_only_after_set_webhook(receiver: Receiver) -> None:
    telegram = BenchTelegram(token=TOKEN, push_to=receiver.url)
    api = await telegram.start()
    try:
        telegram.inject([501])
        await asyncio.sleep(0.3)
        assert receiver.received == []  # no webhook registered yet

        await set_webhook(api)
        telegram.inject([502, 503])

        await telegram.wait_until(lambda: len(receiver.received) == 3)
        assert {secret for secret, _ in receiver.received} == {SECRET}
        chats = sorted(update["message"]["chat"]["id"] for _, update in receiver.received)
        assert chats == [501, 502, 503]
        await telegram.wait_until(lambda: telegram.pending_updates() == [])
        assert set(telegram.delivered_at) == set(telegram.update_chat)
    finally:
        await telegram.stop()


async def test_an_update_not_answered_200_is_delivered_again(receiver: Receiver) -> None:
    receiver.refuse = 2
    telegram = BenchTelegram(token=TOKEN, push_to=receiver.url)
    api = await telegram.start()
    try:
        await set_webhook(api)
        telegram.inject([601])

        await telegram.wait_until(lambda: telegram.pushed == 1)
        ids = [update["update_id"] for _, update in receiver.received]
        assert len(ids) == 3 and len(set(ids)) == 1  # refused twice, then taken
        assert telegram.push_failures == 2
        assert telegram.pending_updates() == []
    finally:
        await telegram.stop()
