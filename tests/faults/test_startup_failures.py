"""Issue 10, defect 6: start-up failures say in one line what is wrong and what to check, never with a
traceback: Telegram unreachable and Redis unreachable are retried with backoff (one line per attempt), a
token Telegram rejects stops the bot with exit code 2; the kb CLI says the same and gives up."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.faults.conftest import BotProcesses, RedisServer, count, free_port

CHAT = 5301


async def test_a_token_telegram_rejects_exits_2_with_one_line(
    telegram: FakeTelegram, bots: BotProcesses
) -> None:
    process = await bots.start(wait=False, BOT_TOKEN=telegram.token + "x")
    assert await process.wait() == 2
    [line] = [line for line in process.lines if "BOT_TOKEN" in line]
    assert "BOT_TOKEN was rejected by Telegram (401 Unauthorized)" in line
    assert "Traceback" not in process.log and "TelegramUnauthorizedError" not in process.log
    assert telegram.token not in process.log


async def test_telegram_unreachable_is_retried_with_one_line_per_attempt(bots: BotProcesses) -> None:
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    process = await bots.start(wait=False, TELEGRAM_API_URL=address)
    await process.wait_for_log("attempt 2, retrying in 2 s", timeout=30)
    attempts = [line for line in process.lines if "Telegram unreachable" in line]
    assert len(attempts) == 2
    assert f"Telegram unreachable at {address}" in attempts[0] and "TELEGRAM_API_URL" in attempts[0]
    assert "attempt 1, retrying in 1 s" in attempts[0]
    assert "Traceback" not in process.log and len(process.lines) <= 3, process.log
    process.signal(signal.SIGTERM)  # stops the waiting at once, cleanly
    assert await process.wait() == 0
    assert "stopped while waiting for Redis and Telegram at start-up" in process.log
    assert "Traceback" not in process.log


async def test_redis_unreachable_is_waited_for_and_then_the_bot_starts(
    telegram: FakeTelegram, yandex: FakeYandex, bots: BotProcesses, tmp_path: Path
) -> None:
    yandex.responder = lambda body: Reply(text="Redis is here now.")
    server = RedisServer(tmp_path)  # not started yet: its port refuses connections
    process = await bots.start(wait=False, REDIS_URL=server.url)
    await process.wait_for_log("attempt 2, retrying in 2 s", timeout=30)
    [first, _second] = [line for line in process.lines if "Redis unreachable" in line]
    assert f"Redis unreachable at 127.0.0.1:{server.port}/0" in first and "check REDIS_URL" in first
    assert "attempt 1, retrying in 1 s" in first
    assert "Traceback" not in process.log

    await server.start()
    try:
        await process.started()
        assert count(process.lines, "Traceback") == 0, process.log
        telegram.user_message(CHAT, "are you there?")
        await telegram.wait_for_text("Redis is here now.", CHAT, timeout=20)
        process.signal(signal.SIGTERM)
        assert await process.wait() == 0
    finally:
        await server.kill()


async def test_the_kb_cli_says_in_one_line_per_attempt_that_redis_is_unreachable(bots: BotProcesses) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    process = await bots.start("kb", "list", REDIS_URL=url)
    assert await process.wait(timeout=60) == 1
    lines = [line for line in process.lines if "Redis unreachable" in line]
    assert len(lines) == 3 and "gave up after 3 attempt(s)" in lines[-1], process.log
    assert "Traceback" not in process.log and len(process.lines) == 3, process.log
