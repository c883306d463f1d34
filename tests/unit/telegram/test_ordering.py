"""ChatOrdering notes each message's arrival before anything awaits, and tells the generation line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.types import Chat, Message, Update

from bot.telegram.middlewares.ordering import ChatOrdering


class RecordingLine:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float | None]] = []

    def expect(self, chat_key: str, arrived_at: float) -> None:
        self.calls.append(("expect", chat_key, arrived_at))

    def withdraw(self, chat_key: str, arrived_at: float | None) -> None:
        self.calls.append(("withdraw", chat_key, arrived_at))


def update(text: str, chat_id: int = 5) -> Update:
    message = Message(message_id=1, date=datetime.now(UTC), chat=Chat(id=chat_id, type="private"), text=text)
    return Update(update_id=1, message=message)


async def test_a_text_message_is_expected_from_arrival_until_its_handler_is_done() -> None:
    line = RecordingLine()
    ordering = ChatOrdering(line, wall_clock=lambda: 1234.5)
    seen: list[Any] = []

    async def handler(event: Any, data: dict[str, Any]) -> str:
        seen.append((data["arrived_at"], list(line.calls)))
        return "handled"

    data: dict[str, Any] = {}
    assert await ordering(handler, update("a question"), data) == "handled"
    assert seen == [(1234.5, [("expect", "5", 1234.5)])], "expected before the handler ran"
    assert line.calls == [("expect", "5", 1234.5), ("withdraw", "5", 1234.5)]


async def test_commands_are_not_expected_but_get_their_arrival_too() -> None:
    line = RecordingLine()
    ordering = ChatOrdering(line, wall_clock=lambda: 99.0)
    data: dict[str, Any] = {}

    async def handler(event: Any, data: dict[str, Any]) -> None:
        return None

    await ordering(handler, update("/stop"), data)
    assert line.calls == [] and data["arrived_at"] == 99.0


async def test_a_failing_handler_still_withdraws() -> None:
    line = RecordingLine()
    ordering = ChatOrdering(line, wall_clock=lambda: 1.0)

    async def handler(event: Any, data: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await ordering(handler, update("hi"), {})
    assert line.calls[-1] == ("withdraw", "5", 1.0)
