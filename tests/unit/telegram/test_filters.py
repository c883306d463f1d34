"""No handler or filter of the bot runs in aiogram's worker threads."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Dispatcher, F
from aiogram.types import Chat, Message

from bot.telegram.filters import OnLoop
from bot.telegram.routers import build_routers


def test_every_handler_and_filter_is_awaited_on_the_event_loop() -> None:
    # aiogram sends any callback that is not a coroutine function through asyncio.to_thread: one thread
    # hop per filter check per update, which in a burst delays every chat's first sign.
    dispatcher = Dispatcher()
    dispatcher.include_routers(*build_routers())
    checked = 0
    for router in dispatcher.chain_tail:
        for name, observer in router.observers.items():
            for handler in observer.handlers:
                where = f"{router.name}.{name} {handler.callback!r}"
                assert handler.awaitable, f"{where} would run in a thread"
                for event_filter in handler.filters or ():
                    assert event_filter.awaitable, f"a filter of {where} would run in a thread"
                    checked += 1
    assert checked >= 8, "the routers' filters were not found"


@pytest.mark.parametrize(("text", "expected"), [("/start", True), ("hello", False), (None, False)])
async def test_on_loop_resolves_like_the_bare_magic_filter(
    text: str | None, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("resolved in a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    message = Message.model_validate(
        {"message_id": 1, "date": 0, "chat": Chat(id=1, type="private"), "text": text}
    )
    magic = F.text.startswith("/")
    assert bool(await OnLoop(magic)(message)) is expected
    assert bool(magic.resolve(message)) is expected
