"""A thread laid out for reading in Telegram: labelled entries, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.telegram.render import Rendered, split_rendered, styled
from bot.telegram.texts import Texts
from bot.threads.models import MessageStatus, ThreadMessage


def format_history(messages: list[ThreadMessage], texts: Texts) -> list[Rendered]:
    """The thread as messages that each fit Telegram's limit. Stored text is shown as data, unformatted."""
    if not messages:
        return [Rendered(texts.history_empty)]
    body = styled(texts.history_title, "bold")
    for message in messages:
        who = texts.you if message.role == "user" else texts.assistant
        when = datetime.fromtimestamp(message.time, UTC).strftime("%Y-%m-%d %H:%M UTC")
        label = f"{who} · {when}"
        if message.status is MessageStatus.INCOMPLETE:
            label += f" {texts.incomplete_mark}"
        body = body + Rendered("\n\n") + styled(label, "bold") + Rendered(f"\n{message.text}")
        if message.citations:
            sources = f"{texts.sources}: {', '.join(message.citations)}"
            body = body + Rendered("\n") + styled(sources, "italic")
    return split_rendered(body)
