"""The Responses stream as the bot reads it, through the real openai client against the fake Yandex:
citations from every place Yandex may put them, and each of Yandex's documented errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx2
import pytest

from bot.assistant.client import Assistant, retry_after
from bot.assistant.connection import YandexConnection
from bot.assistant.events import AnswerEvent, Citation, Failed, FailureKind, Finished, TextDelta
from bot.config import Settings, load_settings
from tests.fakes.yandex import FakeYandex, Reply

HANDBOOK = {"type": "file_citation", "file_id": "file-1", "filename": "handbook.pdf", "index": 0}
POLICY = {"type": "file_citation", "file_id": "file-2", "filename": "policy.md", "index": 3}
PAGE = {"type": "url_citation", "url": "https://example.com/page"}
RESULTS = [
    {"file_id": "file-1", "filename": "handbook.pdf", "score": 0.9, "text": "28 days", "attributes": {}},
    {"file_id": "file-3", "filename": "faq.txt", "score": 0.4, "text": "vacation", "attributes": {}},
    {"file_id": "file-1", "filename": "handbook.pdf", "score": 0.3, "text": "more", "attributes": {}},
]


def settings_for(yandex: FakeYandex, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "bot_token": "123:test",
        "yandex_api_key": yandex.api_key,
        "yandex_folder_id": yandex.folder_id,
        "yandex_base_url": yandex.base_url,
        "yandex_max_retries": 0,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
async def connection(yandex: FakeYandex) -> AsyncIterator[YandexConnection]:
    opened = YandexConnection.open(settings_for(yandex, yandex_max_retries=2))
    await opened.start()
    yield opened
    await opened.aclose()


def assistant(connection: YandexConnection, model: str) -> Assistant:
    return Assistant(
        connection.openai,
        model=model,
        instructions="Be brief.",
        temperature=0.3,
        max_output_tokens=100,
        diagnosis=connection.diagnosis,
    )


async def answer(
    connection: YandexConnection, yandex: FakeYandex, model: str | None = None
) -> list[AnswerEvent]:
    model = model or f"gpt://{yandex.folder_id}/yandexgpt-5.1"
    return [event async for event in assistant(connection, model).stream([{"role": "user", "content": "q"}])]


# ---------------------------------------------------------------------------------------- citations

CITED = [Citation("handbook.pdf"), Citation("https://example.com/page", "https://example.com/page")]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="Answer.", citations=[HANDBOOK, PAGE, HANDBOOK]),  # streamed, and again in the output
        Reply(text="Answer.", citations=[HANDBOOK, PAGE, HANDBOOK], citations_streamed=False),  # output only
        Reply(text="Answer.", citations=[HANDBOOK, PAGE], minimal_events=True),  # response.completed only
    ],
    ids=["streamed", "final-output", "completed-only"],
)
async def test_citations_are_read_wherever_they_come_each_once(
    connection: YandexConnection, yandex: FakeYandex, reply: Reply
) -> None:
    yandex.script(reply)
    events = await answer(connection, yandex)
    assert [e for e in events if isinstance(e, Citation)] == CITED
    assert isinstance(events[-1], Finished)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Answer."


async def test_searched_files_are_the_sources_when_the_model_cited_none(
    connection: YandexConnection, yandex: FakeYandex
) -> None:
    yandex.script(Reply(text="From the files.", tool_calls=["file_search"], search_results=RESULTS))
    events = await answer(connection, yandex)
    assert [e for e in events if isinstance(e, Citation)] == [Citation("handbook.pdf"), Citation("faq.txt")]
    # Held back until the end, then given before the answer finishes (so they are shown with it).
    assert isinstance(events[-2], Citation) and isinstance(events[-1], Finished)


async def test_cited_files_win_over_the_files_merely_searched(
    connection: YandexConnection, yandex: FakeYandex
) -> None:
    yandex.script(
        Reply(
            text="Cited.",
            tool_calls=["file_search"],
            search_results=RESULTS,
            citations=[POLICY],
            citations_streamed=False,
        )
    )
    events = await answer(connection, yandex)
    assert [e for e in events if isinstance(e, Citation)] == [Citation("policy.md")]


async def test_a_failed_answer_keeps_no_searched_files_back(
    connection: YandexConnection, yandex: FakeYandex
) -> None:
    yandex.script(
        Reply(
            text="Half an answer.",
            tool_calls=["file_search"],
            search_results=RESULTS[:1],
            fail_after=5,
            failure="response_failed",
        )
    )
    events = await answer(connection, yandex)
    assert isinstance(events[-1], Failed)
    assert Citation("handbook.pdf") in events


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, FailureKind.REJECTED),
        (401, FailureKind.ACCESS_DENIED),
        (403, FailureKind.ACCESS_DENIED),
        (429, FailureKind.RATE_LIMITED),
        (500, FailureKind.UNAVAILABLE),
        (503, FailureKind.UNAVAILABLE),
        (504, FailureKind.UNAVAILABLE),
    ],
)
async def test_each_documented_error_has_its_failure_kind(
    connection: YandexConnection, yandex: FakeYandex, status: int, kind: FailureKind
) -> None:
    # Scripted three times: the client's own retries (YANDEX_MAX_RETRIES=2) may use them up for 5xx.
    yandex.script(*(Reply(http_status=status) for _ in range(3)), "unused")
    events = await answer(connection, yandex)
    [failed] = events
    assert isinstance(failed, Failed) and failed.kind is kind


async def test_the_quota_429_is_not_retried_by_the_client_but_its_retry_after_is_read(
    connection: YandexConnection, yandex: FakeYandex
) -> None:
    yandex.script(Reply(http_status=429, retry_after=7), "too early")
    [failed] = await answer(connection, yandex)
    assert isinstance(failed, Failed) and failed.kind is FailureKind.RATE_LIMITED
    assert failed.retry_after == 7
    # The turn logic waits for the quota (bot/turns/generation.py); the client did not retry by itself.
    assert len(yandex.requests) == 1


async def test_a_bad_model_uri_is_explained_once_naming_the_setting(
    yandex: FakeYandex, caplog: pytest.LogCaptureFixture
) -> None:
    connection = YandexConnection.open(settings_for(yandex, yandex_model="yandexgpt-4"))
    caplog.set_level(logging.ERROR, logger="bot.assistant.diagnosis")
    try:
        for _ in range(3):  # a retired model
            [failed] = await answer(connection, yandex, connection_model(yandex, "yandexgpt-4"))
            assert isinstance(failed, Failed) and failed.kind is FailureKind.MODEL_UNAVAILABLE
        [unknown] = await answer(connection, yandex, connection_model(yandex, "no-such-model"))
        [unparsable] = await answer(connection, yandex, "yandexgpt-5.1")
    finally:
        await connection.aclose()
    assert isinstance(unknown, Failed) and unknown.kind is FailureKind.MODEL_UNAVAILABLE
    assert isinstance(unparsable, Failed) and unparsable.kind is FailureKind.MODEL_UNAVAILABLE
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.assistant.diagnosis"]
    assert len(lines) == 3, "one line per distinct problem, not one per question"
    assert "YANDEX_MODEL=yandexgpt-4" in lines[0] and "retired" in lines[0]
    assert "Failed to parse model URI" in lines[2]


def connection_model(yandex: FakeYandex, name: str) -> str:
    return f"gpt://{yandex.folder_id}/{name}"


async def test_a_refused_key_is_explained_once_with_roles_and_scope(
    yandex: FakeYandex, caplog: pytest.LogCaptureFixture
) -> None:
    connection = YandexConnection.open(settings_for(yandex, yandex_api_key="wrong-key-0123456789"))
    caplog.set_level(logging.DEBUG)
    try:
        await connection.start()
        for _ in range(2):
            [failed] = await answer(connection, yandex)
            assert isinstance(failed, Failed) and failed.kind is FailureKind.ACCESS_DENIED
    finally:
        await connection.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.assistant.diagnosis"]
    assert len(lines) == 1
    assert "api_key: YANDEX_API_KEY" in lines[0]
    assert "yc.ai.foundationModels.execute" in lines[0]
    assert "ai.assistants.editor" in lines[0] and "ai.languageModels.user" in lines[0]
    assert "wrong-key-0123456789" not in caplog.text


def test_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    assert retry_after(httpx2.Headers({"retry-after": "3"})) == 3
    assert retry_after(httpx2.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    value = retry_after(httpx2.Headers({"retry-after": later}))
    assert value is not None and 25 < value <= 30
    assert retry_after(httpx2.Headers({"retry-after": "soon"})) is None
    assert retry_after(httpx2.Headers()) is None
