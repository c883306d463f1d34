"""End to end: the real bot answers a scripted conversation against the fakes, then `GET /metrics` is read
and its values compared with what happened (answers by outcome, refusals, Telegram calls, timings)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bot.keys import RedisKeys
from bot.log_context import ContextFilter
from bot.logs import JsonFormatter, SecretRedactor
from bot.runners import BotService
from bot.threads.journal import AnswerJournal, AnswerRecord
from tests.conftest import TEST_REDIS_URL, Services, SettingsFactory, WebhookRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import deliver, question

ADMIN = 1  # no limits: asks two questions, the second one stopped
USER = 2  # one question a minute: the second is refused
STRANGER = 555
LONG = "This answer is long and slow so that there is time to stop it. " * 30

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession, service: BotService) -> Samples:
    assert service.web_port is not None
    async with http.get(f"http://127.0.0.1:{service.web_port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def eventually(
    http: aiohttp.ClientSession, service: BotService, check: Callable[[Samples], bool], within: float = 10
) -> Samples:
    """The metrics once `check` holds (a call's count lands just after Telegram recorded it)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        samples = await scrape(http, service)
        if check(samples) or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.05)


async def test_metrics_after_a_scripted_conversation(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    make_settings: SettingsFactory,
    services: Services,
    http: aiohttp.ClientSession,
) -> None:
    yandex.script(
        "First answer, for the user.", "Second answer, for the admin.", Reply(LONG, chunk_size=10, delay=0.1)
    )
    service = await services.start(
        make_settings(
            allowed_user_ids=str(USER),
            admin_user_ids=str(ADMIN),
            rate_limit_per_minute=1,
            health_host="127.0.0.1",
            health_port=0,
            stream_interval=0.1,
        )
    )
    # Telegram floods the user's first reply once: a 429 with retry_after 1, waited out by the bot.
    telegram.fail_next(
        "sendMessage",
        error_code=429,
        description="Too Many Requests: retry after 1",
        retry_after=1,
        chat_id=USER,
    )
    telegram.user_message(STRANGER, "let me in")
    await telegram.wait_for_text("Sorry, this bot is private. Ask its owner for access.", STRANGER)

    telegram.user_message(USER, "first question")
    await telegram.wait_for_text("First answer, for the user.", USER, timeout=15)
    telegram.user_message(USER, "second question")
    await telegram.wait_until(lambda: len(telegram.bot_texts(USER)) == 2, timeout=10)
    assert telegram.bot_texts(USER)[1].startswith("You are sending messages too fast.")

    telegram.user_message(ADMIN, "a question for the admin")
    await telegram.wait_for_text("Second answer, for the admin.", ADMIN)
    telegram.user_message(ADMIN, "talk slowly")
    await telegram.wait_until(lambda: len(telegram.bot_messages(ADMIN)) == 2)
    during = await scrape(http, service)
    assert value(during, "tgbot_generations_running") == 1, "the slow answer holds a generation slot"
    telegram.command(ADMIN, "/stop")
    await telegram.wait_for_text("Stopping the answer.", ADMIN)
    await telegram.wait_until(lambda: telegram.bot_messages(ADMIN)[1].text.endswith("⏹ Stopped."), timeout=5)

    def settled(samples: Samples) -> bool:
        sent = len(telegram.calls_of("sendMessage"))
        return (
            value(samples, "tgbot_answers_total", outcome="stopped") == 1
            and value(samples, "tgbot_telegram_calls_total", method="sendMessage", result="ok") == sent - 1
        )

    samples = await eventually(http, service, settled)
    assert value(samples, "tgbot_questions_total") == 3
    assert value(samples, "tgbot_answers_total", outcome="completed") == 2
    assert value(samples, "tgbot_answers_total", outcome="stopped") == 1
    assert value(samples, "tgbot_questions_refused_total", reason="access") == 1
    assert value(samples, "tgbot_questions_refused_total", reason="rate") == 1
    assert value(samples, "tgbot_questions_refused_total", reason="tokens") == 0

    assert value(samples, "tgbot_answer_duration_seconds_count") == 3
    # The user's first answer waited out the 1 s flood pause: at least one answer took a second.
    assert value(samples, "tgbot_answer_duration_seconds_bucket", le="0.5") <= 2
    assert value(samples, "tgbot_answer_duration_seconds_sum") >= 1.0
    assert value(samples, "tgbot_first_visible_text_seconds_count") == 3
    assert value(samples, "tgbot_frame_display_lag_seconds_count") >= 3
    assert value(samples, "tgbot_model_first_token_seconds_count") == 3

    # Tokens: exactly what the fake reported for the two finished answers (the stopped one has no usage).
    assert len(yandex.reported_tokens) == 2
    input_tokens = value(samples, "tgbot_model_tokens_total", kind="input")
    output_tokens = value(samples, "tgbot_model_tokens_total", kind="output")
    assert input_tokens > 0 and output_tokens > 0
    assert input_tokens + output_tokens == sum(yandex.reported_tokens)

    sent = len(telegram.calls_of("sendMessage"))
    assert value(samples, "tgbot_telegram_calls_total", method="sendMessage", result="429") == 1
    assert value(samples, "tgbot_telegram_calls_total", method="sendMessage", result="ok") == sent - 1
    assert value(samples, "tgbot_telegram_calls_total", method="getMe", result="ok") >= 1
    assert value(samples, "tgbot_telegram_flood_wait_seconds_total") == 1
    assert value(samples, "tgbot_generations_running") == 0
    assert value(samples, "tgbot_generations_waiting") == 0
    # No chat or user id appears in any label.
    for _name, labels in samples:
        for _label, label_value in labels:
            assert label_value not in {str(ADMIN), str(USER), str(STRANGER)}


async def test_webhook_port_serves_metrics_deduplication_recovery_and_failures(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    run_webhook_bot: WebhookRunner,
    http: aiohttp.ClientSession,
    redis: Redis,
    redis_prefix: str,
) -> None:
    # A dead process's half-written answer, closed at start-up.
    sent = await telegram_send(telegram, 7007, "Half an answ")
    await AnswerJournal(redis, keys=RedisKeys(redis_prefix)).begin(
        AnswerRecord("7007", 7007, True, None, "t-dead", "en", [sent], "Half an answ")
    )
    yandex.script(
        "Just once.", Reply("Half of this answer, then the line drops.", fail_after=12, failure="disconnect")
    )
    service = await run_webhook_bot()
    update = question(telegram, 7008, "hello?")
    assert await deliver(http, service, update) == 200
    await telegram.wait_until(lambda: telegram.bot_texts(7008) == ["Just once."])
    assert await deliver(http, service, update) == 200
    assert await deliver(http, service, question(telegram, 7008, "and now?")) == 200
    samples = await eventually(
        http,
        service,
        lambda s: (
            value(s, "tgbot_updates_deduplicated_total") == 1
            and value(s, "tgbot_answers_total", outcome="failed_unavailable") == 1
        ),
        within=10,
    )
    assert value(samples, "tgbot_updates_deduplicated_total") == 1
    assert value(samples, "tgbot_answers_recovered_total") == 1
    assert value(samples, "tgbot_answers_total", outcome="completed") == 1
    assert value(samples, "tgbot_answers_total", outcome="failed_unavailable") == 1
    assert value(samples, "tgbot_answer_duration_seconds_count") == 2


async def telegram_send(telegram: FakeTelegram, chat_id: int, text: str) -> int:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    bot = Bot(telegram.token, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)))
    try:
        return (await bot.send_message(chat_id, text)).message_id
    finally:
        await bot.session.close()


async def test_json_logs_follow_one_question_with_its_turn_id(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    make_settings: SettingsFactory,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One question's log lines (Telegram calls and the model request) share one turn id, and the JSON
    lines carry no chat id by default and no secret."""
    settings = make_settings(log_level="DEBUG")
    redactor = SecretRedactor(settings.secrets())
    formatter = JsonFormatter(redactor)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter(show_chat_ids=False))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yandex.script("An answer with a log trail.")
        await services.start(settings)
        telegram.user_message(4004, "trace me")
        await telegram.wait_for_text("An answer with a log trail.", 4004)
        await asyncio.sleep(0.3)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    in_turn = [entry for entry in entries if "turn_id" in entry]
    turn_ids = {entry["turn_id"] for entry in in_turn}
    assert len(turn_ids) == 1, turn_ids
    loggers = {entry["logger"] for entry in in_turn}
    # The model request (openai's client logs it at DEBUG) and Telegram calls carry the same turn id.
    assert any(name.startswith("openai") for name in loggers), loggers
    assert "bot.telegram.call_metrics" in loggers and "bot.turns.runner" in loggers, loggers
    assert all("chat_id" not in entry for entry in entries)
    text = "\n".join(lines)
    assert "4004" not in text, "LOG_CHAT_IDS is off: no chat id in any line"
    [finished] = [entry for entry in in_turn if entry["logger"] == "bot.turns.runner"]
    assert finished["message"].startswith("answer in chat ***: completed after ")
    assert telegram.token not in text and yandex.api_key not in text


async def test_knowledge_base_uploads_are_counted_by_result(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    make_settings: SettingsFactory,
    services: Services,
    http: aiohttp.ClientSession,
) -> None:
    yandex.fail_indexing("broken.txt", code="invalid_file", message="The file could not be parsed")
    service = await services.start(
        make_settings(admin_user_ids=str(ADMIN), health_host="127.0.0.1", health_port=0)
    )
    for content, name, extra in (
        (b"Vacation: 28 days.", "handbook.md", {}),
        (b"garbage", "broken.txt", {}),
        (b"MZ binary", "tool.exe", {}),
        (b"big", "huge.pdf", {"declared_size": 25 * 2**20}),
    ):
        document = telegram.add_file(content, name, "application/octet-stream", **extra)  # type: ignore[arg-type]
        telegram.user_message(ADMIN, None, extra={"document": document})
    await telegram.wait_until(
        lambda: (
            len(telegram.bot_texts(ADMIN)) == 4
            and all("✅" in text or "❌" in text or "20 MB" in text for text in telegram.bot_texts(ADMIN))
        ),
        timeout=15,
    )
    samples = await scrape(http, service)
    assert value(samples, "tgbot_kb_uploads_total", result="ready") == 1
    assert value(samples, "tgbot_kb_uploads_total", result="failed") == 1
    assert value(samples, "tgbot_kb_uploads_total", result="rejected") == 2


async def test_python_m_bot_with_log_format_json_writes_json_lines_with_turn_ids(
    telegram: FakeTelegram, yandex: FakeYandex, redis_prefix: str, http: aiohttp.ClientSession
) -> None:
    """The settings reach the real process: LOG_FORMAT=json gives only JSON lines on stderr, one turn id
    follows the question, no chat id (LOG_CHAT_IDS is off) and no secret; /metrics on HEALTH_PORT."""
    yandex.script("A JSON-logged answer.")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "YANDEX_", "REDIS_", "LOG_"))},
        "BOT_TOKEN": telegram.token,
        "TELEGRAM_API_URL": telegram.base_url,
        "YANDEX_API_KEY": yandex.api_key,
        "YANDEX_FOLDER_ID": yandex.folder_id,
        "YANDEX_BASE_URL": yandex.base_url,
        "REDIS_URL": TEST_REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
        "BURST_SECONDS": "0",
        "SHUTDOWN_GRACE_SECONDS": "1",
        "HEALTH_PORT": str(port),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        telegram.user_message(6006, "log this")
        await telegram.wait_for_text("A JSON-logged answer.", 6006, timeout=30)
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        assert 'tgbot_answers_total{outcome="completed"} 1.0' in text
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0
    lines = stderr.decode().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(entry["message"].startswith("Bot started") for entry in entries)
    in_turn = [entry for entry in entries if "turn_id" in entry]
    assert len({entry["turn_id"] for entry in in_turn}) == 1
    loggers = {entry["logger"] for entry in in_turn}
    assert {"bot.telegram.call_metrics", "bot.turns.runner"} <= loggers, loggers
    assert any(name.startswith("openai") for name in loggers), loggers
    output = stderr.decode()
    assert "6006" not in output and all("chat_id" not in entry for entry in entries)
    assert telegram.token not in output and yandex.api_key not in output
