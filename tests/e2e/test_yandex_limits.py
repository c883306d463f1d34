"""End to end: the folder's generation quota and expiring credentials, as Yandex enforces them.

The fake Yandex refuses the generation beyond its quota with 429 (on by default: Yandex's 10) and, with a
TokenRegistry, accepts IAM tokens only until they expire. The bot keeps its own quota in Redis
(YANDEX_MAX_CONCURRENT_GENERATIONS), so questions beyond it wait in line, told their place, instead of
failing; it renews its tokens from the (fake) metadata service before they die.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.assistant.token_sources import CredentialError
from bot.texts import ENGLISH
from tests.conftest import BotRunner, Services, SettingsFactory, WebhookRunner
from tests.fakes.metadata import FakeMetadata
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.fakes.yandex.tokens import TokenRegistry
from tests.helpers import deliver, question, saved_thread

ROOT = Path(__file__).resolve().parents[2]
BUSY = "The AI service is busy right now. Please try again in a minute."
FREE_SLOT = ENGLISH.waiting_slot
# A waiting question must not also get the "waits behind your previous answer" notice mid-test.
NO_QUEUE_NOTICE = {"queue_notice_seconds": 600}


def last_user_text(body: dict[str, Any]) -> str:
    content = body["input"][-1]["content"]
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content)
    return str(content)


def echo(seconds: float) -> Any:
    """A responder answering "Answer to: <question>" in about `seconds` (most of it before the text)."""
    return lambda body: Reply(
        text=f"Answer to: {last_user_text(body)}", chunk_size=6, first_delay=seconds - 0.5, delay=0.1
    )


def in_line(telegram: FakeTelegram, chat: int) -> list[str]:
    """Every "number N in line" text the chat's messages ever showed."""
    return [
        text
        for message in telegram.bot_messages(chat)
        for text, _ in message.history
        if text and "in line" in text
    ]


async def test_questions_beyond_the_quota_wait_in_arrival_order_and_see_their_place(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    assert yandex.quota is not None
    yandex.quota.limit = 2  # the folder's real limit: the bot must never cross it
    yandex.responder = echo(4.5)
    await run_bot(yandex_max_concurrent_generations=2)
    chats = [7001, 7002, 7003, 7004, 7005]
    for chat in chats:
        telegram.user_message(chat, f"question {chat}")
        await asyncio.sleep(0.1)  # an unambiguous arrival order

    for chat in chats:
        await telegram.wait_for_text(f"Answer to: question {chat}", chat, timeout=40)

    assert yandex.quota.rejected == 0 and yandex.quota.peak == 2
    started = [last_user_text(request.body) for request in yandex.requests]
    assert started == [f"question {chat}" for chat in chats], "served in arrival order"
    assert in_line(telegram, 7001) == in_line(telegram, 7002) == [], "admitted at once"
    # The last one waited two answers' time: it was told its place (after 2 s), which moved up.
    assert in_line(telegram, 7005) == [
        ENGLISH.waiting_position.format(position=3),
        ENGLISH.waiting_position.format(position=1),
    ]
    assert all(len(telegram.bot_messages(chat)) == 1 for chat in chats), "the notice became the answer"


async def slow_first_then_waiting(
    telegram: FakeTelegram, yandex: FakeYandex, *, first: int, second: int
) -> None:
    """`first` holds the only slot with a long answer (12 s); `second` waits until shown its place."""
    yandex.script(Reply(text="Answer to: long question", chunk_size=2, delay=1.0))
    yandex.responder = echo(1)
    telegram.user_message(first, "long question")
    await telegram.wait_until(lambda: len(telegram.bot_messages(first)) == 1, timeout=10)
    telegram.user_message(second, "waiting question")
    await telegram.wait_until(lambda: bool(in_line(telegram, second)), timeout=10)


async def test_stop_and_reset_take_a_waiting_question_out_of_the_line(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    app = await run_bot(yandex_max_concurrent_generations=1, **NO_QUEUE_NOTICE)
    await slow_first_then_waiting(telegram, yandex, first=7101, second=7102)
    assert in_line(telegram, 7102) == [ENGLISH.waiting_position.format(position=1)]
    telegram.command(7102, "/stop")
    await telegram.wait_until(lambda: ENGLISH.stopped_notice in telegram.bot_texts(7102))
    assert "Stopping the answer." in telegram.bot_texts(7102)
    telegram.user_message(7103, "another waiting question")
    await telegram.wait_until(lambda: bool(in_line(telegram, 7103)), timeout=10)
    assert in_line(telegram, 7103)[0] == ENGLISH.waiting_position.format(position=1), "7102 left the line"
    telegram.command(7103, "/reset")
    await telegram.wait_for_text(ENGLISH.reset_done, 7103)
    telegram.user_message(7105, "a question stopped with the button")
    await telegram.wait_until(lambda: bool(in_line(telegram, 7105)), timeout=10)
    [notice] = telegram.bot_messages(7105)
    telegram.callback_query(7105, notice.message_id, "stop")  # the ⏹ button under the notice
    await telegram.wait_until(lambda: telegram.bot_texts(7105) == [ENGLISH.stopped_notice])

    telegram.user_message(7104, "a later question")
    await telegram.wait_for_text("Answer to: a later question", 7104, timeout=20)
    asked = [last_user_text(request.body) for request in yandex.requests]
    assert asked == ["long question", "a later question"], "the stopped questions never reached the model"
    assert await app.quota.waiting() == 0 and await app.quota.running() == 0


async def test_a_shutdown_asks_waiting_questions_to_be_sent_again(
    telegram: FakeTelegram, yandex: FakeYandex, make_settings: SettingsFactory, services: Services
) -> None:
    service = await services.start(
        make_settings(yandex_max_concurrent_generations=1, shutdown_grace_seconds=8, **NO_QUEUE_NOTICE)
    )
    await slow_first_then_waiting(telegram, yandex, first=7201, second=7202)
    stopping = asyncio.create_task(services.stop(service))
    # Told at once, not after the grace period, and it is not started meanwhile.
    await telegram.wait_until(lambda: telegram.bot_texts(7202) == [ENGLISH.unanswered], timeout=3)
    await stopping
    assert telegram.bot_texts(7201) == ["Answer to: long question"], "the running answer finished"
    assert len(yandex.requests) == 1


async def test_two_processes_share_the_quota(
    telegram: FakeTelegram, yandex: FakeYandex, run_webhook_bot: WebhookRunner, http: aiohttp.ClientSession
) -> None:
    assert yandex.quota is not None
    yandex.quota.limit = 1
    yandex.responder = echo(3)
    one = await run_webhook_bot(yandex_max_concurrent_generations=1, **NO_QUEUE_NOTICE)
    two = await run_webhook_bot(yandex_max_concurrent_generations=1, **NO_QUEUE_NOTICE)
    assert await deliver(http, one, question(telegram, 7301, "first process")) == 200
    await telegram.wait_until(lambda: len(telegram.bot_messages(7301)) == 1, timeout=10)
    assert await deliver(http, two, question(telegram, 7302, "second process")) == 200

    await telegram.wait_for_text("Answer to: second process", 7302, timeout=20)
    assert in_line(telegram, 7302) == [ENGLISH.waiting_position.format(position=1)]
    assert yandex.quota.rejected == 0 and yandex.quota.peak == 1
    first, second = yandex.requests
    assert second.at >= first.at + 2.5, "the second process waited for the first one's slot"


async def test_a_429_from_a_busy_folder_is_retried_until_a_slot_frees(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    # Something else uses the folder: Yandex allows one generation although the bot would start ten.
    assert yandex.quota is not None
    yandex.quota.limit = 1
    yandex.quota.retry_after = 1
    yandex.script(Reply(text="Answer to: occupying question", chunk_size=2, delay=0.4))  # about 6 s
    yandex.responder = echo(1)
    app = await run_bot(**NO_QUEUE_NOTICE)
    telegram.user_message(7401, "occupying question")
    await telegram.wait_until(lambda: len(telegram.bot_messages(7401)) == 1, timeout=10)
    telegram.user_message(7402, "patient question")

    await telegram.wait_for_text("Answer to: patient question", 7402, timeout=30)
    assert yandex.quota.rejected >= 2, "refused while the other generation ran, then retried"
    [reply] = telegram.bot_messages(7402)
    assert FREE_SLOT in [text for text, _ in reply.history], "told the answer waits for a free slot"
    [_, answer] = await saved_thread(app.store, "7402", 2)
    assert answer.text == "Answer to: patient question"


async def test_a_429_beyond_the_bound_is_said_in_plain_words(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.script(*(Reply(http_status=429, retry_after=0.4) for _ in range(20)))
    await run_bot(yandex_rate_limit_wait_seconds=2)
    telegram.user_message(7501, "hello?")
    await telegram.wait_for_text(BUSY, 7501, timeout=15)
    assert 2 <= len(yandex.requests) <= 5, "retried with backoff for about two seconds, then told"
    assert not any("went wrong" in text for text in telegram.bot_texts(7501))


# ---------------------------------------------------------------------------------------- credentials


@pytest.fixture
def registry(yandex: FakeYandex) -> TokenRegistry:
    tokens = TokenRegistry()
    yandex.tokens = tokens
    return tokens


@pytest.fixture
async def metadata(registry: TokenRegistry) -> AsyncIterator[FakeMetadata]:
    fake = FakeMetadata(registry, lifetime=2.0)  # tokens of two seconds: many lifetimes in one test
    await fake.start()
    yield fake
    await fake.stop()


async def test_answers_keep_coming_across_many_token_lifetimes(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    registry: TokenRegistry,
    metadata: FakeMetadata,
    run_bot: BotRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    yandex.responder = echo(0.6)
    app = await run_bot(yandex_auth="metadata", yc_metadata_addr=metadata.address, yandex_api_key=None)
    assert app.yandex.credentials.describe().startswith("metadata: ")
    chats = [7601, 7602, 7603]
    for round_ in range(8):  # about 10 s: five token lifetimes
        for chat in chats:
            telegram.user_message(chat, f"round {round_}")
        for chat in chats:
            await telegram.wait_until(
                lambda c=chat, r=round_: f"Answer to: round {r}" in telegram.bot_texts(c), timeout=10
            )
        await asyncio.sleep(0.6)

    for chat in chats:
        assert telegram.bot_texts(chat) == [f"Answer to: round {r}" for r in range(8)], "no failed answer"
    assert len(metadata.issued) >= 4, "tokens were renewed as they expired"
    used = {request.headers["authorization"] for request in yandex.requests}
    assert len(used) >= 4
    assert all(value.startswith("Bearer t1.") for value in used)
    # A token that died in flight got one renewal and one resend; none of them made an answer fail.
    expired = [r for r in registry.refused if r.message == "The token has expired"]
    assert len(yandex.requests) == 8 * len(chats) + len(expired)
    for token in metadata.issued:
        assert token not in caplog.text


async def test_no_credential_at_start_is_one_clear_line(
    services: Services, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(yandex_auth="metadata", yc_metadata_addr="127.0.0.1:9", yandex_api_key=None)
    with pytest.raises(CredentialError):
        await services.start(settings)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("no Yandex credential")]
    assert "metadata: service account token from the metadata service at 127.0.0.1:9" in line


async def test_python_m_bot_exits_2_when_no_credential_can_be_had(
    telegram: FakeTelegram, tmp_path: Any
) -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("BOT_", "YANDEX_", "REDIS_"))
    }
    env.update(
        BOT_TOKEN=telegram.token,
        TELEGRAM_API_URL=telegram.base_url,
        YANDEX_FOLDER_ID="b1gtestfolder",
        YANDEX_AUTH="metadata",
        YC_METADATA_ADDR="127.0.0.1:9",  # nothing listens there
        PYTHONPATH=str(ROOT),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    text = stderr.decode()
    assert (
        "no Yandex credential (metadata: service account token from the metadata service at 127.0.0.1:9)"
        in text
    )
    assert "Traceback" not in text
