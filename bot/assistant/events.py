"""The one small vocabulary the model side and the Telegram side share.

The assistant yields these; the reply streamer consumes them. Neither side knows the other's library.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FinishReason(StrEnum):
    COMPLETED = "completed"
    MAX_OUTPUT_TOKENS = "max_output_tokens"
    CONTENT_FILTER = "content_filter"


class FailureKind(StrEnum):
    """Why an answer failed, in terms a user can be told (never a raw server message)."""

    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    ERROR = "error"
    # The bot's own set-up, not the moment: Yandex refused the credential (401/403), or does not serve
    # the configured model (400 on the model URI). Logged once for the owner, explained to the user.
    ACCESS_DENIED = "access_denied"
    MODEL_UNAVAILABLE = "model_unavailable"


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the model used: a document name or a URL."""

    title: str
    url: str | None = None


class Tool(StrEnum):
    FILE_SEARCH = "file_search"
    WEB_SEARCH = "web_search"


@dataclass(frozen=True, slots=True)
class ToolActivity:
    """The model is using a tool (searching documents or the web) before it writes."""

    tool: Tool


@dataclass(frozen=True, slots=True)
class Finished:
    reason: FinishReason = FinishReason.COMPLETED
    total_tokens: int | None = None  # as the model reports it (input + output), for per-user budgets


@dataclass(frozen=True, slots=True)
class Failed:
    kind: FailureKind
    detail: str = ""  # for logs only; may contain server text, never shown to users
    retry_after: float | None = None  # seconds the service asked to wait (Retry-After), when it said


AnswerEvent = TextDelta | Citation | ToolActivity | Finished | Failed
