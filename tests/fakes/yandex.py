"""An in-process HTTP fake of Yandex AI Studio's OpenAI-compatible Responses API.

The fake is driven by the real ``openai.AsyncOpenAI`` client, so it speaks the wire format the
client parses: ``event: <type>\\ndata: <json>\\n\\n`` server-sent events with a ``type`` and an
increasing ``sequence_number`` in every payload, and OpenAI-style JSON error bodies for HTTP errors.

Typical use::

    fake = FakeYandex()
    await fake.start()
    fake.script(Reply(text="Hi there. How are you?", chunk_size=0))
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-api-key", project=fake.folder_id)
    ...
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FAILURES", "UNSUPPORTED_PARAMS", "FakeYandex", "RecordedRequest", "Reply", "split_chunks"]

# Parameters Yandex rejects with 400 invalid_request_error (per the AI Studio docs).
UNSUPPORTED_PARAMS: tuple[str, ...] = ("truncation", "reasoning", "metadata", "include", "service_tier")

FAILURES: tuple[str, ...] = (
    "sse_error",
    "sse_error_nested",
    "response_failed",
    "disconnect",
    "incomplete_max_tokens",
    "incomplete_content_filter",
)

_HTTP_ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("permission_denied", "Permission denied"),
    404: ("not_found", "Not found"),
    429: ("rate_limit_exceeded", "Rate limit exceeded"),
    500: ("server_error", "Internal server error"),
    502: ("server_error", "Bad gateway"),
    503: ("server_error", "Service unavailable"),
    504: ("server_error", "Gateway timeout"),
}

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
    * ``"incomplete_max_tokens"`` / ``"incomplete_content_filter"``: ``response.incomplete`` with
      ``incomplete_details.reason`` ``max_output_tokens`` / ``content_filter``.
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


def split_chunks(text: str, chunk_size: int) -> list[str]:
    """Split ``text`` into delta strings: fixed-size, or sentence-sized when ``chunk_size`` is 0."""
    if not text:
        return []
    if chunk_size > 0:
        return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    return [m.group(0) for m in _SENTENCE_RE.finditer(text) if m.group(0)]


class _ClientGone(Exception):
    """The HTTP client closed the connection while we were streaming."""


class _ApiError(Exception):
    """Turned into an OpenAI-style JSON error response by the middleware."""

    def __init__(self, status: int, message: str, *, type_: str | None = None, code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        default_type = _HTTP_ERROR_TYPES.get(status, ("error", "Error"))[0]
        self.status = status
        self.message = message
        self.type = type_ or default_type
        self.code = code or self.type
        self.param = param

    def to_response(self) -> web.Response:
        body = {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}
        return web.json_response(body, status=self.status, headers={"x-request-id": _new_id("req")})


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


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
            content = "".join(
                str(part.get("text", "")) for part in content if isinstance(part, dict)
            )
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
            return {"id": _new_id("fs"), "type": "file_search_call", "status": "completed",
                    "queries": [query], "results": None}
        return {"id": _new_id("ws"), "type": "web_search_call", "status": "completed",
                "action": {"type": "search", "query": query, "queries": [query], "sources": None}}

    def text_part(self, text: str, *, with_annotations: bool) -> dict[str, Any]:
        annotations = list(self.reply.citations) if with_annotations else []
        return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}

    def message_item(self, text: str, status: str, *, with_content: bool = True) -> dict[str, Any]:
        content = [self.text_part(text, with_annotations=True)] if with_content else []
        return {"id": self.msg_id, "type": "message", "role": "assistant", "status": status,
                "content": content, "phase": None}

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

    def response(self, status: str, *, text: str | None = None, message_status: str = "completed",
                 error: dict[str, Any] | None = None,
                 incomplete_reason: str | None = None) -> dict[str, Any]:
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


class FakeYandex:
    """aiohttp fake of ``POST /v1/responses`` on Yandex AI Studio, for the real openai client.

    Replies come from :meth:`script` (a FIFO queue), then from :attr:`responder`, then a fixed
    ``"Hello!"``. Every ``POST /v1/responses`` is recorded in :attr:`requests`, including rejected ones.
    """

    def __init__(self, *, api_key: str = "test-api-key", folder_id: str = "b1gtestfolder") -> None:
        self.api_key = api_key
        self.folder_id = folder_id
        self.base_url = ""
        self.responder: Callable[[dict[str, Any]], Reply | str] | None = None
        self.requests: list[RecordedRequest] = []
        self.open_streams = 0
        self.closed_by_client = 0
        self._queue: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping = False

    # ----------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; returns (and sets) :attr:`base_url`."""
        app = web.Application(middlewares=[self._middleware])
        for method, path, handler in self._routes():
            app.router.add_route(method, path, handler)
        # handler_cancellation makes aiohttp cancel the handler as soon as the client disconnects,
        # so an abandoned stream stops producing (paid) tokens immediately rather than at the next write.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0,
                                     access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Stop the server, dropping any streams still running."""
        self._stopping = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeYandex:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- scripting / inspection

    def script(self, *replies: Reply | str) -> None:
        """Queue replies, served in order to the following requests."""
        self._queue.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    def last_input(self) -> list[dict[str, Any]]:
        """The ``input`` of the last request as a list of ``{"role", "content"}``."""
        if not self.requests:
            raise AssertionError("FakeYandex received no requests")
        return _normalise_input(self.requests[-1].body.get("input"))

    # The `timeout` argument is part of the interface other tests already call; asyncio.timeout would
    # force every caller to wrap the call themselves.
    async def wait_until(
        self, predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0  # noqa: ASYNC109
    ) -> None:
        """Poll ``predicate`` until it is true; raise TimeoutError after ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = predicate()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.01)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            reply = self.responder(body)
            return Reply(text=reply) if isinstance(reply, str) else reply
        return Reply()

    # ----------------------------------------------------------------- routing / validation

    def _routes(self) -> list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]]:
        # New endpoints (files, vector_stores, conversations) go here; auth is applied by the middleware.
        return [
            ("POST", "/v1/responses", self._handle_responses),
        ]

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method == "POST" and request.path == "/v1/responses":
            try:
                body = await request.json()
            except (ValueError, UnicodeDecodeError):
                body = None
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append(RecordedRequest(body=body if isinstance(body, dict) else {},
                                                 headers=headers, at=time.monotonic()))
        try:
            self._check_auth(request)
            return await handler(request)
        except _ApiError as err:
            return err.to_response()
        except web.HTTPNotFound:
            return _ApiError(404, f"Unknown path {request.path}").to_response()
        except web.HTTPMethodNotAllowed:
            return _ApiError(405, f"Method {request.method} not allowed", type_="invalid_request_error"
                             ).to_response()

    def _check_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if auth not in (f"Bearer {self.api_key}", f"Api-Key {self.api_key}"):
            raise _ApiError(401, "Unauthorized")
        if request.headers.get("OpenAI-Project") != self.folder_id:
            raise _ApiError(403, "Permission denied: the folder is missing or not accessible with this key")

    def _validate_responses_body(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _ApiError(400, "Request body must be a JSON object")
        for name in UNSUPPORTED_PARAMS:
            # Even an explicit null is rejected: the consumer should omit these parameters.
            if name in body:
                raise _ApiError(400, f"Unsupported parameter: '{name}' is not supported", param=name,
                                code="unsupported_parameter")
        model = body.get("model")
        if not isinstance(model, str) or not model.startswith(f"gpt://{self.folder_id}/") or \
                len(model) <= len(f"gpt://{self.folder_id}/"):
            raise _ApiError(400, f"Failed to parse model URI: {model!r}", param="model")
        temperature = body.get("temperature")
        if temperature is not None and (
            not isinstance(temperature, int | float) or isinstance(temperature, bool)
            or not 0 <= temperature <= 1
        ):
            raise _ApiError(400, "temperature must be between 0 and 1", param="temperature")
        max_tokens = body.get("max_output_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise _ApiError(400, "max_output_tokens must be a positive integer", param="max_output_tokens")
        inp = body.get("input")
        if inp is not None and not isinstance(inp, str | list):
            raise _ApiError(400, "input must be a string or a list of items", param="input")
        for tool in body.get("tools") or []:
            if not isinstance(tool, dict) or tool.get("type") not in ("file_search", "web_search"):
                raise _ApiError(400, f"Unsupported tool: {tool!r}", param="tools")
            if tool["type"] == "file_search":
                ids = tool.get("vector_store_ids")
                if not isinstance(ids, list) or len(ids) != 1:
                    raise _ApiError(400, "file_search supports exactly one vector store per request",
                                    param="tools")
        return body

    # ----------------------------------------------------------------- /v1/responses

    async def _handle_responses(self, request: web.Request) -> web.StreamResponse:
        try:
            raw = await request.json()
        except (ValueError, UnicodeDecodeError) as err:
            raise _ApiError(400, "Request body is not valid JSON") from err
        body = self._validate_responses_body(raw)
        reply = self._next_reply(body)
        if reply.http_status is not None:
            error_type, message = _HTTP_ERROR_TYPES.get(reply.http_status, ("error", "Error"))
            raise _ApiError(reply.http_status, reply.error_message or message, type_=error_type)
        if body.get("stream") is True:
            return await self._stream(request, body, reply)
        return await self._complete(request, body, reply)

    async def _complete(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        builder = _ResponseBuilder(body, reply)
        if reply.fail_after is None:
            return web.json_response(builder.response("completed", text=reply.text),
                                     headers={"x-request-id": _new_id("req")})
        text = reply.text[: reply.fail_after]
        if reply.failure == "disconnect":
            if request.transport is not None:
                request.transport.close()
            # The socket is gone; aiohttp drops whatever we return, the client sees a connection error.
            return web.Response(status=204)
        if reply.failure.startswith("incomplete_"):
            reason = "max_output_tokens" if reply.failure == "incomplete_max_tokens" else "content_filter"
            return web.json_response(builder.response("incomplete", text=text, message_status="incomplete",
                                                      incomplete_reason=reason))
        raise _ApiError(500, reply.error_message or "Internal error", type_="server_error")

    async def _stream(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": _new_id("req"),
            },
        )
        await resp.prepare(request)
        self.open_streams += 1
        gone = False
        try:
            await self._produce(request, resp, body, reply)
        except (_ClientGone, ConnectionResetError):
            gone = True
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the peer goes away; a cancel from stop() is not the client.
            gone = not self._stopping
            raise
        finally:
            self.open_streams -= 1
            if gone:
                self.closed_by_client += 1
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    async def _produce(self, request: web.Request, resp: web.StreamResponse, body: dict[str, Any],
                       reply: Reply) -> None:
        b = _ResponseBuilder(body, reply)
        failing = reply.fail_after is not None
        text = reply.text[: reply.fail_after] if failing else reply.text
        chunks = split_chunks(text, reply.chunk_size)
        msg_loc = {"item_id": b.msg_id, "output_index": b.msg_index, "content_index": 0}

        async def send(type_: str, **payload: Any) -> None:
            if request.transport is None or request.transport.is_closing():
                raise _ClientGone
            data = {"type": type_, **payload, "sequence_number": b.seq()}
            frame = f"event: {type_}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            await resp.write(frame.encode("utf-8"))

        async def pause(seconds: float) -> None:
            # Sleep in slices so a client that leaves during a long delay is noticed promptly even when
            # the handler is not cancelled (e.g. the transport closes without connection_lost yet).
            end = asyncio.get_running_loop().time() + seconds
            while (left := end - asyncio.get_running_loop().time()) > 0:
                await asyncio.sleep(min(left, 0.05))
                if request.transport is None or request.transport.is_closing():
                    raise _ClientGone

        full = not reply.minimal_events
        if full:
            await send("response.created", response=b.response("in_progress"))
            await send("response.in_progress", response=b.response("in_progress"))
            for index, item in enumerate(b.tool_items):
                await self._send_tool_call(send, index, item)
            await send("response.output_item.added", output_index=b.msg_index,
                       item=b.message_item("", "in_progress", with_content=False))
            await send("response.content_part.added", **msg_loc, part=b.text_part("", with_annotations=False))

        await pause(reply.first_delay)
        for i, chunk in enumerate(chunks):
            if i:
                await pause(reply.delay)
            await send("response.output_text.delta", **msg_loc, delta=chunk, logprobs=[])

        if failing:
            await self._fail(request, send, b, reply, text, msg_loc)
            return

        if full:
            for i, annotation in enumerate(reply.citations):
                await send("response.output_text.annotation.added", **msg_loc, annotation_index=i,
                           annotation=annotation)
            await send("response.output_text.done", **msg_loc, text=text, logprobs=[])
            await send("response.content_part.done", **msg_loc, part=b.text_part(text, with_annotations=True))
            await send("response.output_item.done", output_index=b.msg_index,
                       item=b.message_item(text, "completed"))
        await send("response.completed", response=b.response("completed", text=text))

    async def _send_tool_call(self, send: Callable[..., Awaitable[None]], index: int,
                              item: dict[str, Any]) -> None:
        prefix = f"response.{item['type']}"
        await send("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
        for phase in ("in_progress", "searching", "completed"):
            await send(f"{prefix}.{phase}", item_id=item["id"], output_index=index)
        await send("response.output_item.done", output_index=index, item=item)

    async def _fail(self, request: web.Request, send: Callable[..., Awaitable[None]], b: _ResponseBuilder,
                    reply: Reply, text: str, msg_loc: dict[str, Any]) -> None:
        message = reply.error_message or "Internal error"
        if reply.failure == "sse_error":
            await send("error", code="server_error", message=message, param=None)
        elif reply.failure == "sse_error_nested":
            await send("error", error={"type": "server_error", "code": "server_error", "message": message,
                                       "param": None})
        elif reply.failure == "response_failed":
            await send("response.failed", response=b.response(
                "failed", text=text, message_status="incomplete",
                error={"code": "server_error", "message": message}))
        elif reply.failure == "disconnect":
            # close() flushes what was already written, then FINs without the terminating chunk, so the
            # client gets the deltas and then an incomplete-body protocol error.
            if request.transport is not None:
                request.transport.close()
        else:
            reason = "max_output_tokens" if reply.failure == "incomplete_max_tokens" else "content_filter"
            if not reply.minimal_events:
                await send("response.output_text.done", **msg_loc, text=text, logprobs=[])
                await send("response.content_part.done", **msg_loc,
                           part=b.text_part(text, with_annotations=True))
                await send("response.output_item.done", output_index=b.msg_index,
                           item=b.message_item(text, "incomplete"))
            await send("response.incomplete", response=b.response(
                "incomplete", text=text, message_status="incomplete", incomplete_reason=reason))

