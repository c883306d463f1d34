"""ChatOrdering notes each message's arrival before anything awaits, and tells the generation line.

A message arrives in Telegram's order (its date, then its update_id), whichever process parses it when.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.types import Chat, Message, Update

from bot.telegram.middlewares.ordering import ChatOrdering
from bot.turns.generation import _arrival

SECOND = 1_700_000_000  # a message's date: Telegram's clock, whole seconds


class RecordingLine:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float | None]] = []

    def expect(self, chat_key: str, arrived_at: float) -> None:
        self.calls.append(("expect", chat_key, arrived_at))

    def withdraw(self, chat_key: str, arrived_at: float | None) -> None:
        self.calls.append(("withdraw", chat_key, arrived_at))


def update(text: str, chat_id: int = 5, *, update_id: int = 1, date: int = SECOND) -> Update:
    sent = datetime.fromtimestamp(date, UTC)
    message = Message(message_id=1, date=sent, chat=Chat(id=chat_id, type="private"), text=text)
    return Update(update_id=update_id, message=message)


async def arrival_of(ordering: ChatOrdering, event: Update) -> float:
    data: dict[str, Any] = {}

    async def handler(event: Any, data: dict[str, Any]) -> None:
        return None

    await ordering(handler, event, data)
    arrived_at: float = data["arrived_at"]
    return arrived_at


async def test_a_text_message_is_expected_from_arrival_until_its_handler_is_done() -> None:
    line = RecordingLine()
    ordering = ChatOrdering(line, wall_clock=lambda: SECOND + 0.5)
    seen: list[Any] = []

    async def handler(event: Any, data: dict[str, Any]) -> str:
        seen.append((data["arrived_at"], list(line.calls)))
        return "handled"

    data: dict[str, Any] = {}
    assert await ordering(handler, update("a question", update_id=7), data) == "handled"
    arrived = SECOND + 0.000007  # its date, and its update_id within that second
    assert seen == [(arrived, [("expect", "5", arrived)])], "expected before the handler ran"
    assert line.calls == [("expect", "5", arrived), ("withdraw", "5", arrived)]


async def test_commands_are_not_expected_but_get_their_arrival_too() -> None:
    line = RecordingLine()
    ordering = ChatOrdering(line, wall_clock=lambda: 99.0)
    assert await arrival_of(ordering, update("/stop", update_id=3)) == SECOND + 0.000003
    assert line.calls == []


async def test_a_failing_handler_still_withdraws() -> None:
    line = RecordingLine()
    ordering = ChatOrdering(line, wall_clock=lambda: 1.0)

    async def handler(event: Any, data: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await ordering(handler, update("hi"), {})
    assert line.calls[-1] == ("withdraw", "5", SECOND + 0.000001)


async def test_two_processes_place_a_burst_in_update_order_whichever_stamps_first() -> None:
    # Behind one webhook, process A parses its share of a burst a little later than process B parses
    # the next update: by their own clocks B's message came first, by Telegram's it came second.
    process_a = ChatOrdering(RecordingLine(), wall_clock=lambda: SECOND + 0.090)
    process_b = ChatOrdering(RecordingLine(), wall_clock=lambda: SECOND + 0.010)
    first = await arrival_of(process_a, update("first", chat_id=1, update_id=5_000_101))
    second = await arrival_of(process_b, update("second", chat_id=2, update_id=5_000_102))
    assert _arrival(first) < _arrival(second)
    assert (_arrival(first), _arrival(second)) == (SECOND * 1_000_000 + 101, SECOND * 1_000_000 + 102)


async def test_the_date_orders_before_the_update_id_and_a_backlog_goes_first() -> None:
    ordering = ChatOrdering(wall_clock=lambda: SECOND + 3600.0)
    backlog = await arrival_of(ordering, update("sent during downtime", update_id=999_999, date=SECOND))
    fresh = await arrival_of(ordering, update("sent now", update_id=1_000_000, date=SECOND + 3600))
    assert backlog < fresh < SECOND + 3600.5


async def test_a_message_without_a_date_arrives_at_the_wall_clock() -> None:
    ordering = ChatOrdering(wall_clock=lambda: SECOND + 0.25)
    assert await arrival_of(ordering, update("no date", update_id=9, date=0)) == SECOND + 0.25


@pytest.mark.parametrize("date", [1, SECOND, 2**31 - 1, 2**31, 2**32 - 1])
@pytest.mark.parametrize("update_id", [0, 1, 123_456, 999_999, 1_000_000, 7_654_321])
async def test_the_place_in_line_is_exact_to_the_update(date: int, update_id: int) -> None:
    ordering = ChatOrdering(wall_clock=lambda: 0.0)
    arrived_at = await arrival_of(ordering, update("q", update_id=update_id, date=date))
    assert _arrival(arrived_at) == date * 1_000_000 + update_id % 1_000_000
