"""Log formats: JSON lines and text, both through the secret redaction, with turn ids and chat ids."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bot.config import load_settings
from bot.log_context import ChatRef, ContextFilter, current_turn_id, turn
from bot.logs import JsonFormatter, SecretRedactor, TextFormatter, configure_logging

TOKEN = "123456789:AAE-secret-bot-token-value"
API_KEY = "AQVNsecretapikeyvalue1234567890"
# A secret whose JSON escaping differs from itself: the redaction must still catch it.
QUOTED = 'pass"word\\with-escapes'


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.logs")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, stream, handler
    logger.removeHandler(handler)
    logger.propagate = True


def install(handler: logging.Handler, formatter: type[logging.Formatter], *, chat_ids: bool) -> None:
    redactor = SecretRedactor([TOKEN, API_KEY, QUOTED])
    handler.setFormatter(formatter(redactor))  # type: ignore[call-arg]
    handler.addFilter(ContextFilter(show_chat_ids=chat_ids))
    handler.addFilter(redactor)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_is_one_object_per_line_with_the_turn_and_no_chat_by_default(logged) -> None:
    logger, stream, handler = logged
    install(handler, JsonFormatter, chat_ids=False)
    logger.info("outside any turn")
    with turn("4242") as turn_id:
        assert current_turn_id() == turn_id
        logger.warning("answer in %s failed", ChatRef("4242"))
    assert current_turn_id() is None
    first, second = lines(stream)
    assert first["message"] == "outside any turn" and "turn_id" not in first
    assert set(first) == {"time", "level", "logger", "message"}
    assert (
        str(first["time"]).endswith("+00:00") and first["level"] == "INFO" and first["logger"] == "tests.logs"
    )
    assert second["turn_id"] == turn_id and len(turn_id) == 12
    assert second["message"] == "answer in chat *** failed"
    assert "chat_id" not in second
    assert "4242" not in stream.getvalue()


def test_json_has_the_chat_id_when_log_chat_ids_is_on(logged) -> None:
    logger, stream, handler = logged
    install(handler, JsonFormatter, chat_ids=True)
    with turn("-100123:7"):
        logger.info("answer in %s done", ChatRef("-100123:7"))
    [entry] = lines(stream)
    assert entry["chat_id"] == "-100123:7"
    assert entry["message"] == "answer in chat -100123:7 done"


def test_turn_ids_follow_into_tasks_and_differ_between_turns(logged) -> None:
    import asyncio

    logger, stream, handler = logged
    install(handler, JsonFormatter, chat_ids=False)

    async def one(key: str) -> None:
        with turn(key):
            await asyncio.create_task(asyncio.sleep(0))
            await asyncio.create_task(_log_later(logger, key))

    async def both() -> None:
        await asyncio.gather(one("1"), one("2"))

    asyncio.run(both())
    entries = lines(stream)
    assert len(entries) == 2
    assert entries[0]["turn_id"] != entries[1]["turn_id"]


async def _log_later(logger: logging.Logger, key: str) -> None:
    logger.info("in a task of turn %s", key)


def test_secrets_never_appear_in_json_even_in_tracebacks(logged) -> None:
    logger, stream, handler = logged
    install(handler, JsonFormatter, chat_ids=True)
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage failed; key {API_KEY}")
    except RuntimeError:
        logger.exception("request failed with %s and %s", QUOTED, "t1.9euelZrLiIsomethingIAMtoken1234567")
    with turn(TOKEN):  # even a secret where a chat key belongs
        logger.info("in the turn")
    out = stream.getvalue()
    for secret in (TOKEN, API_KEY, QUOTED, json.dumps(QUOTED)[1:-1], "t1.9euelZrLiIsomethingIAMtoken1234567"):
        assert secret not in out
    first, second = lines(stream)
    assert "Traceback (most recent call last)" in str(first["message"])
    assert "RuntimeError: POST https://api.telegram.org/bot***/sendMessage failed; key ***" in str(
        first["message"]
    )
    assert second["chat_id"] == "***"


def test_a_record_that_skipped_the_redactor_is_redacted_by_the_formatter() -> None:
    formatter = JsonFormatter(SecretRedactor([TOKEN]))
    try:
        raise ValueError(TOKEN)
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", (TOKEN,), sys.exc_info())
    out = formatter.format(record)
    assert TOKEN not in out
    entry = json.loads(out)
    assert entry["message"] == "token ***" and "ValueError: ***" in str(entry["exception"])


def test_text_format_stays_the_default_and_shows_the_turn(logged) -> None:
    logger, stream, handler = logged
    install(handler, TextFormatter, chat_ids=False)
    logger.info("plain line with %s", TOKEN)
    with turn("77") as turn_id:
        logger.info("answer in %s", ChatRef("77"))
    plain, in_turn = stream.getvalue().splitlines()
    assert plain.endswith("INFO tests.logs: plain line with ***")
    assert in_turn.endswith(f"INFO tests.logs [turn {turn_id}]: answer in chat ***")
    assert (
        load_settings(
            _env_file=None, bot_token="123:abc", yandex_api_key="key-123456", yandex_folder_id="b1g"
        ).log_format
        == "text"
    )


def test_chat_ref_without_the_filter_hides_the_id() -> None:
    assert str(ChatRef(12345)) == "chat ***"
    assert str(ChatRef(12345, "user")) == "user ***"


def test_configure_logging_picks_the_format() -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", [TOKEN], log_format="json", chat_ids=False)
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        configure_logging("INFO", [TOKEN])
        assert isinstance(root.handlers[0].formatter, TextFormatter)
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_log_format_is_checked_at_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        env={
            "PATH": "/usr/bin:/bin",
            "BOT_TOKEN": "123:abc",
            "YANDEX_API_KEY": "key-123456",
            "YANDEX_FOLDER_ID": "b1g",
            "LOG_FORMAT": "xml",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LOG_FORMAT" in result.stderr
