"""How a stored message is labelled for a person reading the thread (in Telegram or in the console)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.texts import Texts
from bot.threads.models import MessageStatus, ThreadMessage


def utc_minute(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def entry_label(message: ThreadMessage, texts: Texts) -> str:
    """Who spoke and when, e.g. `You · 2025-03-01 12:30 UTC (incomplete)`."""
    # Group threads keep the name of whoever asked; "You" would not say which member it was.
    who = (message.author or texts.you) if message.role == "user" else texts.assistant
    label = f"{who} · {utc_minute(message.time)}"
    if message.via == "voice":
        label += " 🎤"
    if message.status is MessageStatus.INCOMPLETE:
        label += f" {texts.incomplete_mark}"
    return label
