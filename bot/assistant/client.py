"""Yandex AI Studio's Responses API, seen as a stream of AnswerEvents."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx2
import openai
from openai import AsyncOpenAI

from bot.assistant.events import (
    AnswerEvent,
    Citation,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    TextDelta,
    Tool,
    ToolActivity,
)
from bot.assistant.sse import sse_events
from bot.metrics import Metrics

log = logging.getLogger(__name__)

DOCUMENTS_INSTRUCTIONS = (
    "\n\nYou have a knowledge base of the owner's documents (the file_search tool). Search it for every "
    "question it may cover and base your answer on what you find. If the documents do not contain the "
    "answer, say so plainly before answering from general knowledge."
)


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """One request's own model, instructions and temperature (a chat's settings); None: the default."""

    model: str | None = None  # a full gpt:// URI
    instructions: str | None = None
    temperature: float | None = None


class Assistant:
    """Streams one answer: instructions plus the thread's recent messages in, AnswerEvents out.

    Requests are sent with `store=False`, so the conversation lives only in our Redis and `/reset` really
    erases it. Every failure becomes a `Failed` event; this iterator never raises for a model problem.
    """

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        instructions: str,
        temperature: float,
        max_output_tokens: int,
        diagnosis: FailureObserver | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._client = client
        self._model = model
        self._instructions = instructions
        self._temperature = temperature
        self._max_output_tokens = max_output_tokens
        self._diagnosis = diagnosis

    async def stream(
        self,
        input_items: Sequence[dict[str, Any]],
        *,
        tools: Sequence[dict[str, Any]] = (),
        options: RequestOptions | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        options = options or RequestOptions()
        extra: dict[str, Any] = {"tools": list(tools)} if tools else {}
        instructions = self._instructions if options.instructions is None else options.instructions
        if any(tool.get("type") == "file_search" for tool in tools):
            instructions += DOCUMENTS_INSTRUCTIONS
        temperature = self._temperature if options.temperature is None else options.temperature
        request = self._client.responses.with_streaming_response.create(
            model=options.model or self._model,
            instructions=instructions,
            input=list(input_items),  # type: ignore[arg-type]
            temperature=temperature,
            max_output_tokens=self._max_output_tokens,
            store=False,
            stream=True,
            **extra,
        )
        finished = False
        sources = _Sources()
        timing = _ModelTiming(self._metrics)
        try:
            # Leaving this block closes the HTTP stream, which stops generation on the server side:
            # no more tokens are paid for after a stop or a failure.
            async with request as response:
                async for event in sse_events(response.iter_lines()):
                    timing.observe(event)
                    for result in sources.fold(_translate(event)):
                        yield result
                        if isinstance(result, Finished | Failed):
                            finished = True
                            return
        except Exception as error:  # every failure has a user-facing path
            finished = True
            if self._diagnosis is not None:
                self._diagnosis.observe(error)
            yield _failure(error)
        if not finished:
            yield Failed(FailureKind.UNAVAILABLE, "stream ended without a terminal event")


class _ModelTiming:
    """One request's time to its first token and the tokens it used, for the metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._started = time.monotonic()
        self._first = True

    def observe(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_text.delta" and self._first:
            self._first = False
            self._metrics.model_first_token_after(time.monotonic() - self._started)
        elif kind in ("response.completed", "response.incomplete"):
            self._metrics.model_usage(_dict(_dict(event.get("response")).get("usage")))


class FailureObserver(Protocol):
    """Sees every exception a model request ended with (bot/assistant/diagnosis.py explains them)."""

    def observe(self, error: Exception) -> None: ...


@dataclass(slots=True)
class _Sources:
    """The answer's sources, wherever Yandex puts them, each once.

    Citations (annotations on the output text) may be streamed (`response.output_text.annotation.added`)
    and come again in the final output (`response.content_part.done`, `response.output_item.done`,
    `response.completed`), or come only there: each distinct source is passed on the first time it is
    seen. The files a `file_search_call` output item says it found are held back and given, at the end,
    only when the model cited no file itself: then they are the best account of what it read.
    """

    seen: set[tuple[str, str]] = field(default_factory=set)
    cited_a_file: bool = False
    searched: list[tuple[tuple[str, str], Citation]] = field(default_factory=list)

    def fold(self, events: Iterable[_Event]) -> list[AnswerEvent]:
        out: list[AnswerEvent] = []
        for event in events:
            if isinstance(event, _Source):
                if event.searched:
                    self.searched.append((event.key, event.citation))
                    continue
                if event.key[0] == "file":
                    self.cited_a_file = True
                if event.key not in self.seen:
                    self.seen.add(event.key)
                    out.append(event.citation)
                continue
            if isinstance(event, Finished | Failed) and not self.cited_a_file:
                for key, citation in self.searched:
                    if key not in self.seen:
                        self.seen.add(key)
                        out.append(citation)
            out.append(event)
        return out


@dataclass(frozen=True, slots=True)
class _Source:
    """A citation as read off one event, with what identifies its source (file id, or URL)."""

    key: tuple[str, str]
    citation: Citation
    searched: bool = False  # found by a file search, not cited in the text


_Event = AnswerEvent | _Source


def _translate(event: dict[str, Any]) -> list[_Event]:
    kind = str(event.get("type", ""))
    if kind == "response.output_text.delta":
        delta = event.get("delta")
        return [TextDelta(delta)] if isinstance(delta, str) and delta else []
    if kind == "response.output_text.annotation.added":
        return _annotations([event.get("annotation")])
    if kind == "response.content_part.done":
        return _part_sources(event.get("part"))
    if kind == "response.output_item.done":
        return _item_sources(event.get("item"))
    if kind.startswith("response.file_search_call."):
        return [ToolActivity(Tool.FILE_SEARCH)]
    if kind.startswith("response.web_search_call."):
        return [ToolActivity(Tool.WEB_SEARCH)]
    if kind == "response.output_item.added":
        return _tool_started(event.get("item"))
    response = _dict(event.get("response"))
    if kind == "response.completed":
        return [*_output_sources(response), Finished(FinishReason.COMPLETED, _total_tokens(response))]
    if kind == "response.incomplete":
        reason = _dict(response.get("incomplete_details")).get("reason")
        finish = FinishReason.CONTENT_FILTER if reason == "content_filter" else FinishReason.MAX_OUTPUT_TOKENS
        return [*_output_sources(response), Finished(finish, _total_tokens(response))]
    if kind == "response.failed":
        code = str(_dict(response.get("error")).get("code") or "server_error")
        return [Failed(_kind_for_code(code), f"response.failed: {code}")]
    if kind == "error" or ("error" in event and kind == ""):
        # Two shapes are seen: the documented flat one and one with a nested `error` object.
        nested = _dict(event.get("error"))
        code = str(event.get("code") or nested.get("code") or "server_error")
        return [Failed(_kind_for_code(code), f"error event: {code}")]
    return []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _total_tokens(response: dict[str, Any]) -> int | None:
    total = _dict(response.get("usage")).get("total_tokens")
    return total if isinstance(total, int) else None


def _tool_started(item: Any) -> list[_Event]:
    kind = _dict(item).get("type")
    if kind == "file_search_call":
        return [ToolActivity(Tool.FILE_SEARCH)]
    if kind == "web_search_call":
        return [ToolActivity(Tool.WEB_SEARCH)]
    return []


def _output_sources(response: dict[str, Any]) -> list[_Event]:
    return [source for item in _list(response.get("output")) for source in _item_sources(item)]


def _item_sources(item: Any) -> list[_Event]:
    """Citations in one output item: a message's annotations, or the files a file search found."""
    item = _dict(item)
    kind = item.get("type")
    if kind == "message":
        return [source for part in _list(item.get("content")) for source in _part_sources(part)]
    if kind == "file_search_call":
        found: list[_Event] = []
        for result in _list(item.get("results")):
            source = _file_source(_dict(result), searched=True)
            if source is not None:
                found.append(source)
        return found
    return []


def _part_sources(part: Any) -> list[_Event]:
    return _annotations(_list(_dict(part).get("annotations")))


def _annotations(annotations: Iterable[Any]) -> list[_Event]:
    sources: list[_Event] = []
    for annotation in annotations:
        annotation = _dict(annotation)
        kind = annotation.get("type")
        source: _Source | None = None
        if kind == "file_citation":
            source = _file_source(annotation, searched=False)
        elif kind == "url_citation" and annotation.get("url"):
            url = str(annotation["url"])
            source = _Source(("url", url), Citation(str(annotation.get("title") or url), url))
        if source is not None:
            sources.append(source)
    return sources


def _file_source(data: dict[str, Any], *, searched: bool) -> _Source | None:
    file_id, filename = data.get("file_id"), data.get("filename")
    title = filename or file_id
    if not title:
        return None
    return _Source(("file", str(file_id or filename)), Citation(str(title)), searched)


def _kind_for_code(code: str) -> FailureKind:
    if code == "rate_limit_exceeded":
        return FailureKind.RATE_LIMITED
    if code == "invalid_prompt":
        return FailureKind.REJECTED
    return FailureKind.ERROR


def _failure(error: Exception) -> Failed:
    detail = f"{type(error).__name__}: {error}"
    if isinstance(error, openai.RateLimitError):
        return Failed(FailureKind.RATE_LIMITED, detail, retry_after(error.response.headers))
    if isinstance(error, openai.APITimeoutError | httpx2.TimeoutException):
        return Failed(FailureKind.TIMEOUT, detail)
    if isinstance(error, openai.APIConnectionError | httpx2.TransportError):
        return Failed(FailureKind.UNAVAILABLE, detail)
    if isinstance(error, openai.APIStatusError):
        if error.status_code >= 500:
            return Failed(FailureKind.UNAVAILABLE, detail)
        if error.status_code in (401, 403):
            return Failed(FailureKind.ACCESS_DENIED, detail)
        if error.status_code == 400:
            kind = FailureKind.MODEL_UNAVAILABLE if is_model_error(error) else FailureKind.REJECTED
            return Failed(kind, detail)
        return Failed(FailureKind.ERROR, detail)
    if isinstance(error, openai.APIError):
        code = str(getattr(error, "code", None) or "server_error")
        return Failed(_kind_for_code(code), detail)
    log.exception("unexpected error from the model stream", exc_info=error)
    return Failed(FailureKind.ERROR, detail)


def is_model_error(error: openai.APIStatusError) -> bool:
    """A 400 about the model URI: "Failed to parse model URI", "invalid model_uri", a retired model.

    Yandex's exact texts for a retired or unknown model are not documented; it names the model (or the
    `model` parameter) in every form seen, so that is what is looked for.
    """
    if error.status_code != 400:
        return False
    body = _dict(error.body)
    nested = _dict(body.get("error")) or body
    if nested.get("param") == "model":
        return True
    message = str(nested.get("message") or error.message).lower()
    return "model uri" in message or "model_uri" in message or "model" in message.split()


def retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds a 429 asks to wait: `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
