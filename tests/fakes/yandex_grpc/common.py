"""What every fake Yandex gRPC service shares: credentials, the call record, failures and quotas."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf.message import Message

__all__ = [
    "Call",
    "Credentials",
    "Failure",
    "Hub",
    "RateQuota",
]


@dataclass(frozen=True)
class Failure:
    """A scripted failure: the RPC ends with `code` and `details` after `delay` seconds."""

    code: grpc.StatusCode
    details: str = "scripted failure"
    delay: float = 0.0


@dataclass
class Call:
    """One RPC as the fake saw it: metadata, every request message, and how it ended."""

    method: str
    metadata: dict[str, str]
    requests: list[Message] = field(default_factory=list)
    status: grpc.StatusCode | None = None
    details: str = ""
    cancelled: bool = False

    @property
    def name(self) -> str:
        """The method's short name, e.g. ``RecognizeStreaming``."""
        return self.method.rsplit("/", 1)[-1]

    @property
    def request(self) -> Any:
        return self.requests[0]


@dataclass
class Credentials:
    """The one API key and one IAM token the fake accepts, and the folder they belong to.

    `user_account_token`: the IAM token is a user account's, so SpeechKit v3 wants the folder in an
    ``x-folder-id`` header (Yandex's SpeechKit authentication page); a service account's token does not.
    """

    api_key: str = "test-api-key"
    iam_token: str = "t1.test-iam-token"
    folder_id: str = "b1gtestfolder"
    iam_token_expired: bool = False
    user_account_token: bool = True


class RateQuota:
    """At most `limit` requests in any `window` seconds (a sliding window, like Yandex's rate quotas)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: deque[float] = deque()

    def take(self) -> bool:
        now = self._clock()
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


class Hub:
    """State shared by the fake's services: who may call, the record of calls, the clock."""

    def __init__(self, credentials: Credentials, clock: Callable[[], float] = time.monotonic) -> None:
        self.credentials = credentials
        self.clock = clock
        self.calls: list[Call] = []

    @contextmanager
    def record(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Iterator[Call]:
        """Record one RPC; the status is OK unless `abort` or a client cancel ended it."""
        call = Call(method=method, metadata={k: _text(v) for k, v in context.invocation_metadata() or ()})
        self.calls.append(call)
        try:
            yield call
        except (asyncio.CancelledError, GeneratorExit):
            call.cancelled = True
            call.status = grpc.StatusCode.CANCELLED
            raise
        except grpc.aio.AbortError:
            raise
        except BaseException:
            call.status = grpc.StatusCode.UNKNOWN
            raise
        else:
            if call.status is None:
                call.status = grpc.StatusCode.OK

    async def abort(
        self, call: Call, context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, details: str
    ) -> NoReturn:
        call.status, call.details = code, details
        await context.abort(code, details)
        raise AssertionError("context.abort returned")  # it always raises

    async def fail(
        self, call: Call, context: grpc.aio.ServicerContext[Any, Any], failure: Failure
    ) -> NoReturn:
        if failure.delay:
            await asyncio.sleep(failure.delay)
        await self.abort(call, context, failure.code, failure.details)

    def credential_problem(self, call: Call, *, speechkit: bool = False) -> Failure | None:
        """What Yandex would answer to the call's ``authorization`` (SpeechKit v3 also wants
        ``x-folder-id`` with a user's IAM token), or None when it may proceed."""
        creds = self.credentials
        header = call.metadata.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        unauthenticated, denied = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED
        if not header:
            return Failure(unauthenticated, "Authorization header is missing")
        if scheme == "Api-Key":
            # Echoes what was sent: the client must never pass server text on to users.
            return (
                None if secret == creds.api_key else Failure(unauthenticated, f"Unknown api key '{secret}'")
            )
        if scheme != "Bearer":
            return Failure(unauthenticated, "Unsupported authorization scheme")
        if secret != creds.iam_token:
            return Failure(unauthenticated, "The token is invalid")
        if creds.iam_token_expired:
            return Failure(unauthenticated, "The token has expired")
        if speechkit and creds.user_account_token:
            folder = call.metadata.get("x-folder-id")
            if not folder:
                return Failure(denied, "x-folder-id header is required")
            if folder != creds.folder_id:
                return Failure(denied, f"Permission denied to folder {folder}")
        return None

    async def authenticate(
        self, call: Call, context: grpc.aio.ServicerContext[Any, Any], *, speechkit: bool = False
    ) -> None:
        """Abort the call as Yandex would when its credentials do not pass."""
        problem = self.credential_problem(call, speechkit=speechkit)
        if problem is not None:
            await self.fail(call, context, problem)

    def calls_to(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.name == name]


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
