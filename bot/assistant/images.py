"""YandexART through the Yandex SDK: a picture from a text prompt.

Generation is an asynchronous operation: ``Generate`` returns an operation id at once, and the operation
service is polled until it is done. Failures come out as `ImageError`, whose `kind` says what went wrong
and whose message can be shown to a user as is; server text goes only into `detail`, for logs.
"""

from __future__ import annotations

import asyncio
import math
from enum import StrEnum

import grpc
import grpc.aio
from yandex_ai_studio_sdk import AsyncAIStudio
from yandex_ai_studio_sdk.exceptions import AIStudioError, AsyncOperationError, RunError

from bot.assistant.sdk_errors import CREDENTIAL_CODES, rpc_detail

__all__ = ["MAX_PROMPT_CHARS", "ImageError", "ImageErrorKind", "ImageGenerator"]

MAX_PROMPT_CHARS = 500
"""YandexART's documented prompt limit."""


class ImageErrorKind(StrEnum):
    AUTH = "auth"
    QUOTA = "quota"
    REFUSED = "refused"
    EMPTY_PROMPT = "empty_prompt"
    PROMPT_TOO_LONG = "prompt_too_long"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    FAILED = "failed"


_MESSAGES = {
    ImageErrorKind.AUTH: "Drawing pictures is not available to this bot right now.",
    ImageErrorKind.QUOTA: "Too many pictures are being drawn right now. Please try again later.",
    ImageErrorKind.REFUSED: "I can't draw that. Please describe the picture differently.",
    ImageErrorKind.EMPTY_PROMPT: "Please describe the picture you want.",
    ImageErrorKind.PROMPT_TOO_LONG: f"Please describe the picture in at most {MAX_PROMPT_CHARS} characters.",
    ImageErrorKind.UNAVAILABLE: "The picture service is not responding. Please try again later.",
    ImageErrorKind.TIMEOUT: "Drawing took too long. Please try again.",
    ImageErrorKind.FAILED: "The picture could not be drawn. Please try again.",
}


class ImageError(Exception):
    """A failed picture. ``str(error)`` can be shown to users; `detail` (logs) may hold server text."""

    def __init__(self, kind: ImageErrorKind, detail: str = "") -> None:
        super().__init__(_MESSAGES[kind])
        self.kind = kind
        self.detail = detail

    def __repr__(self) -> str:
        return f"ImageError({self.kind.value!r})"


class ImageGenerator:
    """Draws pictures with YandexART (`model`, ``art://<folder>/<model>/latest``) through `sdk`.

    `timeout` bounds a whole generation (the request, every poll and fetching the result);
    `poll_interval` is the pause between two looks at the operation; `rpc_timeout` bounds each RPC.
    """

    def __init__(
        self,
        sdk: AsyncAIStudio,
        *,
        model: str = "yandex-art",
        timeout: float = 120.0,
        poll_interval: float = 2.0,
        rpc_timeout: float = 20.0,
    ) -> None:
        self._sdk = sdk
        self._model = model
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._rpc_timeout = rpc_timeout

    async def generate(
        self,
        prompt: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's poll loop takes it too
    ) -> bytes:
        """The picture for `prompt` as image bytes (JPEG, as YandexART answers)."""
        prompt = prompt.strip()
        if not prompt:
            raise ImageError(ImageErrorKind.EMPTY_PROMPT)
        if len(prompt) > MAX_PROMPT_CHARS:
            # Refused here so that a prompt Yandex would reject costs no request.
            raise ImageError(ImageErrorKind.PROMPT_TOO_LONG, f"{len(prompt)} characters")
        limit = self._timeout if timeout is None else timeout
        rpc_timeout = min(self._rpc_timeout, limit)
        model = self._sdk.models.image_generation(self._model)
        try:
            async with asyncio.timeout(limit):
                operation = await model.run_deferred(prompt, timeout=rpc_timeout)
                # The SDK's own poll deadline (whole seconds) is set past ours, so ours decides.
                result = await operation.wait(
                    timeout=rpc_timeout,
                    poll_interval=self._poll_interval,
                    poll_timeout=math.ceil(limit) + 1,
                )
        except _SDK_FAILURES as error:
            raise _image_error(error) from None
        if not result.image_bytes:
            raise ImageError(ImageErrorKind.FAILED, "the operation succeeded without an image")
        return result.image_bytes


# What a call through the SDK can fail with: our deadline, a gRPC status, an operation that ended in
# an error (RunError), or the SDK's own errors (no endpoint, an operation done without a result).
_SDK_FAILURES = (TimeoutError, grpc.aio.AioRpcError, AIStudioError)

_KINDS = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: ImageErrorKind.QUOTA,
    # YandexART answers INVALID_ARGUMENT for prompts against its ethics guidelines. Other invalid
    # requests (length, model URI) are ruled out before the call or by configuration.
    grpc.StatusCode.INVALID_ARGUMENT: ImageErrorKind.REFUSED,
    grpc.StatusCode.DEADLINE_EXCEEDED: ImageErrorKind.TIMEOUT,
    grpc.StatusCode.NOT_FOUND: ImageErrorKind.FAILED,  # the operation is gone
}


def _kind(code: grpc.StatusCode, *, otherwise: ImageErrorKind) -> ImageErrorKind:
    if code in CREDENTIAL_CODES:
        return ImageErrorKind.AUTH
    return _KINDS.get(code, otherwise)


def _image_error(error: BaseException) -> ImageError:
    if isinstance(error, TimeoutError):
        return ImageError(ImageErrorKind.TIMEOUT, "no picture in time")
    if isinstance(error, grpc.aio.AioRpcError):
        # A failed RPC with any other status (UNAVAILABLE, INTERNAL...) is the service's trouble.
        return ImageError(_kind(error.code(), otherwise=ImageErrorKind.UNAVAILABLE), rpc_detail(error))
    if isinstance(error, RunError):
        # The operation itself ended in an error; its code is a gRPC status number.
        code = next((c for c in grpc.StatusCode if c.value[0] == error.code), grpc.StatusCode.UNKNOWN)
        detail = code.name if code in CREDENTIAL_CODES else f"{code.name}: {error.message}"
        return ImageError(_kind(code, otherwise=ImageErrorKind.FAILED), f"operation failed, {detail}")
    if isinstance(error, AsyncOperationError):
        return ImageError(ImageErrorKind.FAILED, f"{type(error).__name__}: {error}")
    return ImageError(ImageErrorKind.UNAVAILABLE, f"{type(error).__name__}: {error}")
