"""What a stored thread is made of."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Literal

Role = Literal["user", "assistant"]


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"  # cut short: failed, stopped or interrupted mid-answer


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message of a thread: who said it, what, and when (unix seconds)."""

    role: Role
    text: str
    time: float
    status: MessageStatus = MessageStatus.COMPLETE
    citations: tuple[str, ...] = field(default_factory=tuple)
    author: str | None = None  # who wrote a user message in a group thread
    via: str | None = None  # how a user message came: "voice" (text is the transcript), "photo"

    def model_input(self) -> dict[str, str]:
        """The message as a Responses API input item; group messages name their author."""
        content = f"{self.author}: {self.text}" if self.author else self.text
        return {"role": self.role, "content": content}

    def to_json(self) -> str:
        data = asdict(self)
        data["citations"] = list(self.citations)
        if self.author is None:
            del data["author"]
        if self.via is None:
            del data["via"]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ThreadMessage:
        data = json.loads(raw)
        return cls(
            role=data["role"],
            text=data["text"],
            time=float(data["time"]),
            status=MessageStatus(data.get("status", MessageStatus.COMPLETE)),
            citations=tuple(data.get("citations", ())),
            author=data.get("author"),
            via=data.get("via"),
        )


def context_window(
    messages: list[ThreadMessage], *, max_messages: int, max_chars: int
) -> list[ThreadMessage]:
    """The most recent messages that fit both bounds; the oldest are dropped first.

    The newest message is always kept (cut to `max_chars` from its end if it alone is too long), so a
    request never goes out without the question it answers.
    """
    window: list[ThreadMessage] = []
    used = 0
    for message in reversed(messages):
        if len(window) >= max_messages:
            break
        size = len(message.text)
        if window and used + size > max_chars:
            break
        if not window and size > max_chars:
            message = replace(message, text=message.text[-max_chars:])
            size = max_chars
        window.append(message)
        used += size
    window.reverse()
    return window
