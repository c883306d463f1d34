"""The server-sent events reader."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.assistant.sse import sse_events


async def lines(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def collect(*items: str) -> list[dict]:
    return [event async for event in sse_events(lines(*items))]


async def test_events_are_split_on_blank_lines_and_names_ignored() -> None:
    events = await collect(
        "event: response.created",
        'data: {"type": "response.created"}',
        "",
        "event: response.output_text.delta",
        'data: {"type": "response.output_text.delta", "delta": "Hi"}',
        "",
    )
    assert events == [{"type": "response.created"}, {"type": "response.output_text.delta", "delta": "Hi"}]


async def test_multi_line_data_comments_crlf_and_done() -> None:
    events = await collect(
        ": keep-alive",
        'data: {"type":',
        'data: "x"}\r\n',
        "\r\n",
        "data: [DONE]",
        "",
        'data: {"type": "late"}',
        "",
    )
    assert events == [{"type": "x"}]


async def test_a_last_event_without_a_blank_line_is_kept() -> None:
    assert await collect('data:{"type": "end"}') == [{"type": "end"}]
