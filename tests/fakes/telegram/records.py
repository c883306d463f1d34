"""What the fake remembers: every API call, the bot's messages with their versions, files, failures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.telegram.errors import ApiError


@dataclass
class Call:
    """One API request as the fake saw it: params are decoded (ints, bools and JSON fields parsed).

    Uploaded files appear in params as ``{"file_name", "mime_type", "content"}``. ``status`` is 0 while the
    request is still being answered (a waiting long poll).
    """

    method: str
    params: dict[str, Any]
    at: float
    status: int = 0


@dataclass
class SentMessage:
    """A message the bot sent, in its current state; ``history`` holds every (text, entities) version.

    For documents ``text`` is None, ``caption``/``document`` are set and ``entities`` are caption entities.
    """

    message_id: int
    chat_id: int
    text: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    reply_to_message_id: int | None
    message_thread_id: int | None
    history: list[tuple[str | None, list[dict[str, Any]]]]
    deleted: bool = False
    date: int = 0
    caption: str | None = None
    document: dict[str, Any] | None = None
    voice: dict[str, Any] | None = None  # sendVoice: the Voice object
    photo: list[dict[str, Any]] | None = None  # sendPhoto: the PhotoSize objects
    content: bytes | None = None  # the bytes of an uploaded voice or photo


@dataclass
class _Failure:
    method: str
    error: ApiError
    times: int
    chat_id: int | None
    when: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class _StoredFile:
    content: bytes
    file_path: str
    document: dict[str, Any]
    size: int
