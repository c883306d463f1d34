"""The Responses API as the fake streams it: scripted replies, server-sent events, token counts."""

from __future__ import annotations

import base64
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.yandex.http import _new_id

# Parameters Yandex rejects with 400 invalid_request_error (per the AI Studio docs).
UNSUPPORTED_PARAMS: tuple[str, ...] = ("truncation", "reasoning", "metadata", "include", "service_tier")


FAILURES: tuple[str, ...] = (
    "sse_error",
    "sse_error_nested",
    "response_failed",
    "disconnect",
    "silent",
    "incomplete_max_tokens",
    "incomplete_content_filter",
)


# A sentence chunk ends after a run of . ! ? (plus trailing whitespace) or after newlines; the final
# alternative picks up a tail without terminator so the chunks always re-join to the input.
_SENTENCE_RE = re.compile(r"[^.!?\n]*(?:[.!?]+\s*|\n+)|[^.!?\n]+$")


@dataclass
class Reply:
    """One scripted answer served for one ``POST /v1/responses``.

    ``failure`` values:

    * ``"sse_error"``: a flat Responses ``error`` event
      (``{"type":"error","code":"server_error","message":"Internal error","param":null,...}``), the
      shape documented by OpenAI. The installed openai client does NOT raise on it: it is yielded as
      a ``ResponseErrorEvent``.
    * ``"sse_error_nested"``: an ``error`` event with a nested ``error`` object (the shape OpenAI/Azure
      servers are seen to send); the openai client raises ``openai.APIError`` inside the loop.
    * ``"response_failed"``: a ``response.failed`` event with ``response.error``.
    * ``"disconnect"``: the TCP connection is dropped mid-stream (client sees APIConnectionError).
    * ``"silent"``: the stream stays open and sends nothing more, until the client gives up and closes
      it (counted in ``FakeYandex.silent_streams_closed``); a model that hangs mid-answer.
    * ``"incomplete_max_tokens"`` / ``"incomplete_content_filter"``: ``response.incomplete`` with
      ``incomplete_details.reason`` ``max_output_tokens`` / ``content_filter``.

    Where ``citations`` (annotations on the output text) arrive: with ``citations_streamed`` (the default)
    as ``response.output_text.annotation.added`` events and again in the final output; without it only in
    the final output (``response.content_part.done``, ``response.output_item.done`` and
    ``response.completed``; with ``minimal_events`` only the last). Yandex documents the annotations in
    the output; whether it streams the events is unconfirmed, so both shapes are served.
    ``search_results`` fills the ``results`` of the ``file_search_call`` output items (None: null, as
    without ``include``). ``retry_after`` adds a ``Retry-After`` header to an ``http_status`` error.
    """

    text: str = "Hello!"
    chunk_size: int = 8
    delay: float = 0.0
    first_delay: float = 0.0
    citations: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    fail_after: int | None = None
    failure: str = "sse_error"
    http_status: int | None = None
    minimal_events: bool = False
    usage_output_tokens: int | None = None
    # Message of the failure (response.failed / error event / HTTP error body); None = a stock one.
    error_message: str | None = None
    citations_streamed: bool = True
    search_results: list[dict[str, Any]] | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.failure not in FAILURES:
            raise ValueError(f"unknown failure {self.failure!r}; expected one of {FAILURES}")
        unknown_tools = set(self.tool_calls) - {"file_search", "web_search"}
        if unknown_tools:
            raise ValueError(f"unknown tool_calls {sorted(unknown_tools)}")


@dataclass
class RecordedRequest:
    """One request the fake received (header names are lower-cased)."""

    body: dict[str, Any]
    headers: dict[str, str]
    at: float

    def images(self) -> list[bytes]:
        """The decoded pictures of the request's ``input_image`` parts (data URLs), in order."""
        found = []
        for item in self.body.get("input") or []:
            content = item.get("content") if isinstance(item, dict) else None
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and part.get("type") == "input_image":
                    found.append(base64.b64decode(str(part["image_url"]).split(",", 1)[1]))
        return found


def split_chunks(text: str, chunk_size: int) -> list[str]:
    """Split ``text`` into delta strings: fixed-size, or sentence-sized when ``chunk_size`` is 0."""
    if not text:
        return []
    if chunk_size > 0:
        return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    return [m.group(0) for m in _SENTENCE_RE.finditer(text) if m.group(0)]


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def _input_text(body: dict[str, Any]) -> str:
    parts: list[str] = [str(body.get("instructions") or "")]
    for item in _normalise_input(body.get("input")):
        parts.append(str(item.get("content") or ""))
    return "".join(parts)


def _normalise_input(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    result: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        # Content may be a list of parts ({"type": "input_text", "text": ...}); flatten it so tests can
        # compare plain strings regardless of how the consumer built the input.
        if isinstance(content, list):
            content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        result.append({"role": item.get("role", "user"), "content": content})
    return result


class _ResponseBuilder:
    """Builds the event payloads and ``response`` snapshots for one scripted reply."""

    def __init__(self, body: dict[str, Any], reply: Reply) -> None:
        self.body = body
        self.reply = reply
        self.id = _new_id("resp")
        self.msg_id = _new_id("msg")
        self.created_at = int(time.time())
        self._seq = itertools.count()
        self.tool_items: list[dict[str, Any]] = [self._tool_item(kind) for kind in reply.tool_calls]
        self.msg_index = len(self.tool_items)

    def seq(self) -> int:
        return next(self._seq)

    def _tool_item(self, kind: str) -> dict[str, Any]:
        users = [m for m in _normalise_input(self.body.get("input")) if m["role"] == "user"]
        query = str(users[-1]["content"]) if users else ""
        if kind == "file_search":
            return {
                "id": _new_id("fs"),
                "type": "file_search_call",
                "status": "completed",
                "queries": [query],
                "results": self.reply.search_results,
            }
        return {
            "id": _new_id("ws"),
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": query, "queries": [query], "sources": None},
        }

    def text_part(self, text: str, *, with_annotations: bool) -> dict[str, Any]:
        annotations = list(self.reply.citations) if with_annotations else []
        return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}

    def message_item(self, text: str, status: str, *, with_content: bool = True) -> dict[str, Any]:
        content = [self.text_part(text, with_annotations=True)] if with_content else []
        return {
            "id": self.msg_id,
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": content,
            "phase": None,
        }

    def usage(self, text: str) -> dict[str, Any]:
        input_tokens = _estimate_tokens(_input_text(self.body))
        output_tokens = self.reply.usage_output_tokens
        if output_tokens is None:
            output_tokens = _estimate_tokens(text)
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }

    def response(
        self,
        status: str,
        *,
        text: str | None = None,
        message_status: str = "completed",
        error: dict[str, Any] | None = None,
        incomplete_reason: str | None = None,
    ) -> dict[str, Any]:
        """A ``response`` object; ``text`` None means "no output yet" (created / in_progress)."""
        output: list[dict[str, Any]] = []
        if text is not None:
            output = [*self.tool_items, self.message_item(text, message_status)]
        final = status in ("completed", "incomplete", "failed")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if status == "completed" else None,
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
            "instructions": self.body.get("instructions"),
            "max_output_tokens": self.body.get("max_output_tokens"),
            "model": self.body.get("model"),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": self.body.get("previous_response_id"),
            "store": self.body.get("store", True),
            "temperature": self.body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": self.body.get("tool_choice", "auto"),
            "tools": self.body.get("tools", []),
            "top_p": self.body.get("top_p", 1.0),
            "usage": self.usage(text or "") if final else None,
            "user": None,
        }
