"""The fault suite: secrets (the bot token, the Yandex API key or IAM token, the webhook secret) never
appear in the log at DEBUG, in what users are told, or in /healthz — also when HTTP calls fail and
their tracebacks are logged (aiohttp and httpx exceptions may carry the URL, with the bot token)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import aiohttp
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.fakes.yandex.tokens import TokenRegistry
from tests.faults.conftest import BotProcesses, free_port, post_update, webhook_env
from tests.helpers import WEBHOOK_SECRET, question

CHAT = 5501
IAM_TOKEN = "iam-token-of-the-test-0123456789abcdef"


def forms(secret: str) -> list[str]:
    parts = [secret, quote(secret, safe=""), quote(secret)]
    if ":" in secret:  # a bot token: its secret half on its own too
        parts.append(secret.split(":", 1)[1])
    return parts


@pytest.mark.parametrize("credential", ["api_key", "iam_token"])
async def test_no_secret_in_the_log_replies_or_health_even_when_calls_fail(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    bots: BotProcesses,
    http: aiohttp.ClientSession,
    credential: str,
) -> None:
    port = free_port()
    if credential == "iam_token":
        yandex.tokens = TokenRegistry()
        yandex.tokens.add_iam_token(IAM_TOKEN, lifetime=3600)
        env = {"YANDEX_API_KEY": "", "YANDEX_IAM_TOKEN": IAM_TOKEN, "YANDEX_AUTH": "iam_token"}
        yandex_secret = IAM_TOKEN
    else:
        env = {}
        yandex_secret = yandex.api_key
    secrets = [telegram.token, yandex_secret, WEBHOOK_SECRET]
    # A Yandex error text that echoes the credential (services do), then a normal answer.
    yandex.script(
        Reply(http_status=500, error_message=f"internal error while serving {yandex_secret}"),
        "A normal answer.",
    )
    process = await bots.start(LOG_LEVEL="DEBUG", YANDEX_MAX_RETRIES="0", **webhook_env(port), **env)

    assert await post_update(http, port, question(telegram, CHAT, "first")) == 200
    await telegram.wait_until(lambda: len(telegram.bot_texts(CHAT)) == 1, timeout=20)
    assert await post_update(http, port, question(telegram, CHAT, "second")) == 200
    await telegram.wait_for_text("A normal answer.", CHAT, timeout=20)
    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
        health = await response.text()

    # Yandex unreachable: the openai client's connection error is logged with its traceback.
    await yandex.stop()
    assert await post_update(http, port, question(telegram, CHAT, "third")) == 200
    await telegram.wait_until(lambda: len(telegram.bot_texts(CHAT)) == 3, timeout=30)
    replies = telegram.bot_texts(CHAT)
    # Telegram unreachable: aiogram's network errors, with the request, are logged too.
    await telegram.stop()
    await post_update(http, port, {"update_id": 999_999, "message": {
        "message_id": 999, "date": 0, "chat": {"id": CHAT, "type": "private"},
        "from": {"id": CHAT, "is_bot": False, "first_name": "Alice"}, "text": "fourth",
    }})  # fmt: skip
    await process.wait_for_log("Traceback", times=process.log.count("Traceback") + 1)
    await asyncio.sleep(0.5)
    await process.kill()  # a graceful stop with Telegram gone would wait out its retries (~17 s)

    log = process.log
    assert "DEBUG" in log and "Traceback" in log  # it did log at DEBUG, failures included
    for secret in secrets:
        for form in forms(secret):
            assert form not in log, f"a secret ({form[:4]}…) is in the log"
            assert form not in health
            assert all(form not in reply for reply in replies)
