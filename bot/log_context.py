"""What a log line knows about the work it was written for: the turn (one question and its answer) and
the chat, carried by contextvars so every log call on the way, in Telegram and model code alike, has them.

asyncio copies the context into every task a turn starts (the streamer's publisher, the model stream),
so setting it once where the question is taken is enough.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

_turn_id: ContextVar[str | None] = ContextVar("turn_id", default=None)
_chat: ContextVar[str | None] = ContextVar("chat", default=None)


def new_turn_id() -> str:
    return uuid.uuid4().hex[:12]


@contextmanager
def turn(chat_key: str, turn_id: str | None = None) -> Iterator[str]:
    """Everything logged inside (and in tasks started inside) belongs to this turn of this chat."""
    turn_token = _turn_id.set(turn_id or new_turn_id())
    chat_token = _chat.set(chat_key)
    try:
        yield _turn_id.get() or ""
    finally:
        _chat.reset(chat_token)
        _turn_id.reset(turn_token)


def current_turn_id() -> str | None:
    return _turn_id.get()


def current_chat() -> str | None:
    return _chat.get()


@dataclass(frozen=True, slots=True)
class ChatRef:
    """A chat key as a log argument: `log.info("… in %s", ChatRef(key))`. The ContextFilter shows it as
    "chat <key>" when LOG_CHAT_IDS is on, else as "chat ***"; str() alone (no filter) hides it too."""

    key: object
    kind: str = "chat"  # or "user": a user id is as personal as a chat id

    def __str__(self) -> str:
        return f"{self.kind} ***"


class ContextFilter(logging.Filter):
    """Adds `turn_id` (and, with `show_chat_ids`, `chat`) to every record, and resolves ChatRef arguments.

    Installed on the handler before the SecretRedactor, which formats the message.
    """

    def __init__(self, *, show_chat_ids: bool) -> None:
        super().__init__()
        self.show_chat_ids = show_chat_ids

    def filter(self, record: logging.LogRecord) -> bool:
        record.turn_id = _turn_id.get()
        record.chat = _chat.get() if self.show_chat_ids else None
        args = record.args
        if isinstance(args, tuple) and any(isinstance(arg, ChatRef) for arg in args):
            record.args = tuple(self._resolve(arg) for arg in args)
        return True

    def _resolve(self, arg: object) -> object:
        if not isinstance(arg, ChatRef):
            return arg
        return f"{arg.kind} {arg.key}" if self.show_chat_ids else f"{arg.kind} ***"
