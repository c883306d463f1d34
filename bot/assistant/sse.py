"""Server-sent events read straight off the response, parsed with json.loads only.

The openai client validates every streamed event against the full union of Responses event models with
pydantic; with token-sized chunks that was a fifth of the bot's CPU under load (docs/performance.md).
We read only a few event kinds and their few fields, so plain dictionaries serve.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Yield each event's JSON data (an object); `event:` names are ignored, the data carries `type`."""
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                payload = "\n".join(data)
                data.clear()
                if payload == "[DONE]":
                    return
                event = json.loads(payload)
                if isinstance(event, dict):
                    yield event
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        event = json.loads("\n".join(data))
        if isinstance(event, dict):
            yield event
