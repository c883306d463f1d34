"""End to end: what Yandex puts in an answer, and what it answers instead, as the user sees it.

Citations may be streamed as events or come only in the final output, and a knowledge-base search may
list the files it found; the sources appear under the answer and in the thread either way. Yandex's
refusals (a bad key, a missing role, a retired or unknown model) reach the user in plain words and the
owner as one log line naming what to fix.
"""

from __future__ import annotations

import logging

import pytest

from bot.assistant.events import FailureKind
from bot.texts import ENGLISH, RUSSIAN
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.fakes.yandex.tokens import TokenRegistry
from tests.helpers import saved_thread

CHAT = 8001
HANDBOOK = {"type": "file_citation", "file_id": "file-1", "filename": "handbook.pdf", "index": 0}
PAGE = {"type": "url_citation", "url": "https://example.com/page"}
FOUND = [
    {"file_id": "file-1", "filename": "handbook.pdf", "score": 0.9, "text": "28 days", "attributes": {}},
    {"file_id": "file-2", "filename": "faq.txt", "score": 0.5, "text": "vacation", "attributes": {}},
]


@pytest.mark.parametrize(
    ("reply", "sources"),
    [
        (
            Reply(text="Vacation is 28 days.", citations=[HANDBOOK, PAGE]),
            ["handbook.pdf", "https://example.com/page"],
        ),
        (
            Reply(
                text="Vacation is 28 days.", citations=[HANDBOOK, PAGE, HANDBOOK], citations_streamed=False
            ),
            ["handbook.pdf", "https://example.com/page"],
        ),
        (
            Reply(text="Vacation is 28 days.", citations=[PAGE], minimal_events=True),
            ["https://example.com/page"],
        ),
        (
            Reply(text="Vacation is 28 days.", tool_calls=["file_search"], search_results=FOUND),
            ["handbook.pdf", "faq.txt"],
        ),
    ],
    ids=["streamed", "only-in-the-final-output", "only-in-response-completed", "file-search-results"],
)
async def test_sources_are_shown_and_saved_wherever_yandex_puts_them(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, reply: Reply, sources: list[str]
) -> None:
    yandex.script(reply)
    app = await run_bot()
    telegram.user_message(CHAT, "how long is vacation?")
    await telegram.wait_until(lambda: "Sources:" in "".join(telegram.bot_texts(CHAT)))
    listed = "\n".join(f"{number}. {title}" for number, title in enumerate(sources, start=1))
    assert telegram.bot_texts(CHAT) == [f"Vacation is 28 days.\n\nSources:\n{listed}"]
    [_, answer] = await saved_thread(app.store, str(CHAT), 2)
    assert list(answer.citations) == sources


async def test_a_retired_model_is_explained_once_to_the_owner_and_plainly_to_users(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await run_bot(yandex_model="yandexgpt-4")
    telegram.user_message(CHAT, "hello")
    telegram.user_message(CHAT + 1, "привет", language_code="ru")
    await telegram.wait_for_text(ENGLISH.failure_before_text[FailureKind.MODEL_UNAVAILABLE], CHAT)
    await telegram.wait_for_text(RUSSIAN.failure_before_text[FailureKind.MODEL_UNAVAILABLE], CHAT + 1)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(lines) == 1, lines
    assert f"YANDEX_MODEL=yandexgpt-4 (gpt://{yandex.folder_id}/yandexgpt-4)" in lines[0]
    assert "retired" in lines[0]
    assert "could not process this request" not in "".join(telegram.bot_texts(CHAT))


async def test_a_refused_api_key_is_explained_once_with_the_roles_it_needs(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await run_bot(yandex_api_key="AQVNwrong-key-for-this-folder-0123456789")
    for chat in (CHAT, CHAT + 1):
        telegram.user_message(chat, "hello")
        await telegram.wait_for_text(ENGLISH.failure_before_text[FailureKind.ACCESS_DENIED], chat)
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "HTTP 401" in line and "api_key: YANDEX_API_KEY" in line
    assert "scope yc.ai.foundationModels.execute" in line
    assert "roles ai.assistants.editor and ai.languageModels.user" in line
    assert "AQVNwrong-key" not in caplog.text


async def test_a_missing_role_is_a_403_explained_the_same_way(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    registry = TokenRegistry()
    registry.add_api_key(yandex.api_key)
    registry.deny(yandex.api_key)
    yandex.tokens = registry
    caplog.set_level(logging.ERROR)
    await run_bot()
    telegram.user_message(CHAT, "hello")
    await telegram.wait_for_text(ENGLISH.failure_before_text[FailureKind.ACCESS_DENIED], CHAT)
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.assistant.diagnosis"]
    assert "denied access (HTTP 403" in line and "ai.languageModels.user" in line


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, FailureKind.REJECTED),
        (500, FailureKind.UNAVAILABLE),
        (503, FailureKind.UNAVAILABLE),
        (504, FailureKind.UNAVAILABLE),
    ],
)
async def test_other_errors_get_their_plain_reply(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, status: int, kind: FailureKind
) -> None:
    yandex.script(Reply(http_status=status))
    await run_bot()
    telegram.user_message(CHAT, "hello")
    await telegram.wait_for_text(ENGLISH.failure_before_text[kind], CHAT)
