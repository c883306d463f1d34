"""Answers run in tasks of their own: the update is freed while its answer streams, failures are told."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from aiogram.types import TelegramObject

from bot.telegram.middlewares.handler import Handler
from tests.conftest import BotRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply

CHAT = 3107
SLOW = "An answer that takes its time, a few words at a time, so that it is still streaming. " * 6
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again."


async def test_the_handler_chain_is_freed_while_its_answer_streams(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    # Held for the whole answer, aiogram's handler chain (its frames, the copies of the workflow data at
    # every router, the update) was about a quarter of the memory each concurrent answer took
    # (docs/performance.md). The update itself is not a good probe: aiogram keeps the last 128 in the
    # cache of `Update.event_type`, and its polling loop the last one it handed out.
    yandex.script(Reply(text=SLOW, chunk_size=8, delay=0.1))
    app = await run_bot()
    seen: list[weakref.ref[Probe]] = []

    async def remember(handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        probe = Probe()
        seen.append(weakref.ref(probe))
        data["probe"] = probe  # travels with the update's data through every layer to the handler
        del probe
        return await handler(event, data)

    app.dispatcher.update.outer_middleware(remember)
    telegram.user_message(CHAT, "take your time")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    gc.collect()
    assert len(seen) == 1
    assert telegram.bot_texts(CHAT)[0] != SLOW.strip(), "the answer had ended already"
    assert seen[0]() is None, "the handler chain is still held while its answer streams"
    await telegram.wait_for_text(SLOW.strip(), CHAT, timeout=30)


class Probe:
    """An object only the update's workflow data refers to."""


async def test_an_answer_that_fails_after_taking_its_place_is_told_and_the_chat_goes_on(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    yandex.script("The second question's answer.")
    app = await run_bot()
    current_thread = app.store.current_thread

    async def broken(chat_key: str) -> str:
        raise RuntimeError("the thread could not be read")

    monkeypatch.setattr(app.store, "current_thread", broken)
    telegram.user_message(CHAT, "first")
    await telegram.wait_for_text(INTERNAL_ERROR, CHAT)
    monkeypatch.setattr(app.store, "current_thread", current_thread)
    telegram.user_message(CHAT, "second")
    await telegram.wait_for_text("The second question's answer.", CHAT)
    assert telegram.bot_texts(CHAT) == [INTERNAL_ERROR, "The second question's answer."]
