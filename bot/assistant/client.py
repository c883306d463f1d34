"""Yandex AI Studio's Responses API, seen as a stream of AnswerEvents."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

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
from bot.config import Settings

log = logging.getLogger(__name__)

DOCUMENTS_INSTRUCTIONS = (
    "\n\nYou have a knowledge base of the owner's documents (the file_search tool). Search it for every "
    "question it may cover and base your answer on what you find. If the documents do not contain the "
    "answer, say so plainly before answering from general knowledge."
)


def build_openai_client(settings: Settings) -> AsyncOpenAI:
    """The official client pointed at Yandex: the folder goes in `OpenAI-Project` on every call."""
    return AsyncOpenAI(
        base_url=settings.yandex_base_url,
        api_key=settings.yandex_credential,
        project=settings.yandex_folder_id,
        # The read timeout bounds the silence between two stream chunks, not the whole answer.
        timeout=openai.Timeout(settings.yandex_timeout, connect=10.0),
        max_retries=settings.yandex_max_retries,
        default_headers={"x-data-logging-enabled": "true" if settings.yandex_data_logging else "false"},
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
    ) -> None:
        self._client = client
        self._model = model
        self._instructions = instructions
        self._temperature = temperature
        self._max_output_tokens = max_output_tokens

    async def stream(
        self,
        input_items: Sequence[dict[str, str]],
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
        try:
            # Leaving this block closes the HTTP stream, which stops generation on the server side:
            # no more tokens are paid for after a stop or a failure.
            async with request as response:
                async for event in sse_events(response.iter_lines()):
                    result = _translate(event)
                    if result is None:
                        continue
                    yield result
                    if isinstance(result, Finished | Failed):
                        finished = True
                        return
        except Exception as error:  # every failure has a user-facing path
            finished = True
            yield _failure(error)
        if not finished:
            yield Failed(FailureKind.UNAVAILABLE, "stream ended without a terminal event")


def _translate(event: dict[str, Any]) -> AnswerEvent | None:
    kind = str(event.get("type", ""))
    if kind == "response.output_text.delta":
        delta = event.get("delta")
        return TextDelta(delta) if isinstance(delta, str) and delta else None
    if kind == "response.output_text.annotation.added":
        return _citation(event.get("annotation"))
    if kind.startswith("response.file_search_call."):
        return ToolActivity(Tool.FILE_SEARCH)
    if kind.startswith("response.web_search_call."):
        return ToolActivity(Tool.WEB_SEARCH)
    response = event.get("response") or {}
    if kind == "response.completed":
        return Finished(FinishReason.COMPLETED, _total_tokens(response))
    if kind == "response.incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        finish = FinishReason.CONTENT_FILTER if reason == "content_filter" else FinishReason.MAX_OUTPUT_TOKENS
        return Finished(finish, _total_tokens(response))
    if kind == "response.failed":
        code = str((response.get("error") or {}).get("code") or "server_error")
        return Failed(_kind_for_code(code), f"response.failed: {code}")
    if kind == "error" or ("error" in event and kind == ""):
        # Two shapes are seen: the documented flat one and one with a nested `error` object.
        error = event.get("error")
        nested: dict[str, Any] = error if isinstance(error, dict) else {}
        code = str(event.get("code") or nested.get("code") or "server_error")
        return Failed(_kind_for_code(code), f"error event: {code}")
    return None


def _total_tokens(response: dict[str, Any]) -> int | None:
    total = (response.get("usage") or {}).get("total_tokens")
    return total if isinstance(total, int) else None


def _citation(annotation: Any) -> Citation | None:
    if not isinstance(annotation, dict):
        return None
    kind = annotation.get("type")
    if kind == "file_citation":
        title = annotation.get("filename") or annotation.get("file_id")
        return Citation(str(title)) if title else None
    if kind == "url_citation":
        url = annotation.get("url")
        return Citation(str(annotation.get("title") or url), str(url)) if url else None
    return None


def _kind_for_code(code: str) -> FailureKind:
    if code == "rate_limit_exceeded":
        return FailureKind.RATE_LIMITED
    if code == "invalid_prompt":
        return FailureKind.REJECTED
    return FailureKind.ERROR


def _failure(error: Exception) -> Failed:
    detail = f"{type(error).__name__}: {error}"
    if isinstance(error, openai.RateLimitError):
        return Failed(FailureKind.RATE_LIMITED, detail)
    if isinstance(error, openai.APITimeoutError | httpx2.TimeoutException):
        return Failed(FailureKind.TIMEOUT, detail)
    if isinstance(error, openai.APIConnectionError | httpx2.TransportError):
        return Failed(FailureKind.UNAVAILABLE, detail)
    if isinstance(error, openai.APIStatusError):
        if error.status_code >= 500:
            return Failed(FailureKind.UNAVAILABLE, detail)
        if error.status_code == 400:
            return Failed(FailureKind.REJECTED, detail)
        return Failed(FailureKind.ERROR, detail)
    if isinstance(error, openai.APIError):
        code = str(getattr(error, "code", None) or "server_error")
        return Failed(_kind_for_code(code), detail)
    log.exception("unexpected error from the model stream", exc_info=error)
    return Failed(FailureKind.ERROR, detail)
