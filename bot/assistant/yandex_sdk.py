"""The one place the Yandex AI Studio SDK (gRPC: SpeechKit, YandexART) is configured.

Everything the SDK would otherwise pick up on its own — ``YC_API_ENDPOINT``, ``YC_FOLDER_ID``, credentials
from ``YC_*`` variables or the ``yc`` CLI — is passed explicitly, so settings decide and nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from yandex_ai_studio_sdk import AsyncAIStudio

# BaseAuth has no public import path; the public auth classes all derive from it.
from yandex_ai_studio_sdk._auth import BaseAuth
from yandex_ai_studio_sdk.retry import RetryPolicy

__all__ = ["DEFAULT_GRPC_ENDPOINT", "BaseAuth", "build_sdk"]

DEFAULT_GRPC_ENDPOINT = "api.cloud.yandex.net:443"
"""Yandex Cloud's endpoint-discovery service; every other service address is looked up there."""

# SpeechKit v3 needs the folder in an `x-folder-id` header when the IAM token belongs to a user account
# (Yandex's "Authentication with the SpeechKit API"); the SDK never sends it. Other services ignore it.
_FOLDER_HEADER = "x-folder-id"

# The SDK retries UNAVAILABLE and RESOURCE_EXHAUSTED five times with up to 10 s pauses. A spent quota
# (image generation: 500 a minute, 5,000 a day) does not recover in seconds, and each retry spends more of
# it, so only a brief UNAVAILABLE is retried, and not for long: a user is waiting.
_RETRY_POLICY = RetryPolicy(
    max_attempts=3,
    initial_backoff=0.2,  # the SDK waits initial * multiplier ** attempt (+ jitter): 0.4 s, then 0.8 s
    max_backoff=1.0,
    backoff_multiplier=2.0,
    jitter=0.1,
    retriable_codes=(grpc.StatusCode.UNAVAILABLE,),
)


def _with_folder(details: grpc.aio.ClientCallDetails, folder_id: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if not metadata.get_all(_FOLDER_HEADER):
        metadata.add(_FOLDER_HEADER, folder_id)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _FolderHeader:
    """Adds `x-folder-id` to every call, whatever its type."""

    def __init__(self, folder_id: str) -> None:
        self._folder_id = folder_id

    async def _intercept(
        self, continuation: Callable[..., Awaitable[Any]], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_folder(details, self._folder_id), request)


class _StreamingCall:
    """A streaming call of the SDK's retry interceptor, with working done callbacks.

    The SDK's retrying call raises NotImplementedError from `add_done_callback`, and grpc.aio's channel
    registers one on every call to forget it once done: without this, every streaming RPC (recognition,
    synthesis) logged that error and stayed in the channel's set of active calls for good. Callbacks run
    when the responses end, fail or are cancelled.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._callbacks: list[Callable[[Any], None]] = []
        self._finished = False

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            for callback in self._callbacks:
                callback(self)
            self._callbacks.clear()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        if self._finished:
            callback(self)
        else:
            self._callbacks.append(callback)

    def cancelled(self) -> bool:
        return bool(self._call.cancelled())

    def done(self) -> bool:
        return self._finished or bool(self._call.done())

    def time_remaining(self) -> float | None:
        remaining: float | None = self._call.time_remaining()
        return remaining

    def cancel(self) -> bool:
        cancelled = bool(self._call.cancel())
        self._finish()
        return cancelled

    async def initial_metadata(self) -> Any:
        return await self._call.initial_metadata()

    async def trailing_metadata(self) -> Any:
        return await self._call.trailing_metadata()

    async def code(self) -> Any:
        return await self._call.code()

    async def details(self) -> Any:
        return await self._call.details()

    async def wait_for_connection(self) -> None:
        await self._call.wait_for_connection()

    def __aiter__(self) -> Any:
        return self._responses()

    async def _responses(self) -> Any:
        try:
            async for response in self._call:
                yield response
        finally:
            self._finish()

    async def read(self) -> Any:
        try:
            response = await self._call.read()
        except BaseException:
            self._finish()
            raise
        if response is grpc.aio.EOF:
            self._finish()
        return response

    async def write(self, request: Any) -> None:
        await self._call.write(request)

    async def done_writing(self) -> None:
        await self._call.done_writing()


class _UnaryStreamCall(_StreamingCall, grpc.aio.UnaryStreamCall[Any, Any]):
    pass


class _StreamStreamCall(_StreamingCall, grpc.aio.StreamStreamCall[Any, Any]):
    pass


# grpc.aio files an interceptor under one call type only, so each type the SDK uses needs its own class.
class _FolderUnaryUnary(_FolderHeader, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self._intercept(continuation, client_call_details, request)


class _FolderUnaryStream(_FolderHeader, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return _UnaryStreamCall(await self._intercept(continuation, client_call_details, request))


class _FolderStreamStream(_FolderHeader, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return _StreamStreamCall(await self._intercept(continuation, details, requests))


def build_sdk(
    folder_id: str,
    auth: BaseAuth,
    *,
    endpoint: str | None = None,
    insecure: bool = False,
    data_logging: bool = False,
) -> AsyncAIStudio:
    """An `AsyncAIStudio` for `folder_id`, authenticated by `auth` (any SDK auth provider).

    `endpoint` is the discovery endpoint (``YANDEX_GRPC_ENDPOINT``; default Yandex's public one).
    `insecure` (``YANDEX_GRPC_INSECURE``) opens plaintext channels — for local test servers only, so it is
    refused for Yandex's own endpoint. `data_logging` is sent as ``x-data-logging-enabled``: Yandex keeps
    no request data (voice notes, prompts) unless it is true.
    """
    if not folder_id:
        raise ValueError("folder_id is required")
    if not isinstance(auth, BaseAuth):
        raise TypeError(f"auth must be a yandex_ai_studio_sdk auth provider, not {type(auth).__name__}")
    endpoint = endpoint or DEFAULT_GRPC_ENDPOINT
    if insecure and endpoint == DEFAULT_GRPC_ENDPOINT:
        raise ValueError("an insecure channel is for local test servers, not Yandex's public endpoint")
    service_map: dict[str, str] = {}
    if endpoint != DEFAULT_GRPC_ENDPOINT:
        # Yandex's discovery list has no TTS v3 entry; the SDK knows its address only for Yandex's own
        # endpoint. Any other discovery endpoint (a test server, a proxy) serves TTS at its own address.
        service_map["ai-tts-v3"] = endpoint
    return AsyncAIStudio(
        folder_id=folder_id,
        auth=auth,
        endpoint=endpoint,
        service_map=service_map,
        verify=not insecure,
        retry_policy=_RETRY_POLICY,
        interceptors=[
            _FolderUnaryUnary(folder_id),
            _FolderUnaryStream(folder_id),
            _FolderStreamStream(folder_id),
        ],
        enable_server_data_logging=data_logging,
    )
