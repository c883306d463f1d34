"""Logging set-up that keeps secrets out of every log line."""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

from bot.log_context import ContextFilter

REDACTED = "***"
# Live credentials the bot is handed while it runs (renewed IAM tokens) are remembered this many at a
# time: older ones have expired, and a token lives at least minutes.
RECENT_SECRETS = 32
# The shapes of Yandex credentials, cut out even when nobody told us the value (a token echoed in a
# service's error text, one fetched by a library): IAM tokens `t1.…`, API keys `AQVN…`, OAuth `y0_…`.
CREDENTIAL_PATTERN = re.compile(
    r"\b(?:t1\.[A-Za-z0-9_.\-]{20,}|AQVN[A-Za-z0-9_\-]{20,}|y[0-3]_[A-Za-z0-9_\-]{20,})"
)


class SecretRedactor(logging.Filter):
    """Replaces secret values in a record's final message (and traceback) with ***.

    The secrets are the settings' (given at start), the live credentials reported with `add` (the
    credential source reports each IAM token it fetches), and anything shaped like a Yandex credential.
    Libraries may put a URL with the bot token, or a header, into an exception text; this filter is the
    last line of defence, applied to every handler.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._static = {form for secret in secrets if len(secret) >= 6 for form in _forms(secret)}
        self._recent: deque[str] = deque(maxlen=RECENT_SECRETS)
        self._secrets = self._ordered()

    def add(self, secret: str) -> None:
        """Redact `secret` from now on too (a credential handed out while the bot runs)."""
        if len(secret) >= 6 and secret not in self._static and secret not in self._recent:
            self._recent.extend(_forms(secret))
            self._secrets = self._ordered()

    def _ordered(self) -> list[str]:
        # Longest first, so a secret that contains another is cut out whole.
        return sorted(self._static | set(self._recent), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return CREDENTIAL_PATTERN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            message = f"{message}\n{self.redact(formatted)}"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = message, None
        return True


def _forms(secret: str) -> list[str]:
    """The secret as given and as it appears inside a URL (a bot token's ':' becomes %3A in a quoted
    URL, which aiohttp and httpx exceptions may print)."""
    return list(dict.fromkeys((secret, quote(secret, safe=""), quote(secret), quote_plus(secret))))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """The classic one-line format, with `[turn …]` when the line belongs to a question's turn (and the
    chat when LOG_CHAT_IDS is on); the finished line goes through the redactor once more."""

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__(TEXT_FORMAT)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [f"turn {turn_id}"] if (turn_id := getattr(record, "turn_id", None)) else []
        if chat := getattr(record, "chat", None):
            context.append(f"chat {chat}")
        if context:
            head, _, rest = line.partition(": ")
            line = f"{head} [{', '.join(context)}]: {rest}"
        return self._redactor.redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and turn_id / chat_id
    when known. Every value, and the finished line, goes through the redactor (a traceback is already
    part of the message, redacted, by the time a record gets here)."""

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        redact = self._redactor.redact
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if turn_id := getattr(record, "turn_id", None):
            entry["turn_id"] = turn_id
        if chat := getattr(record, "chat", None):
            entry["chat_id"] = redact(str(chat))
        if record.exc_info:  # a record that did not pass the redactor (a handler of someone else's)
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return redact(json.dumps(entry, ensure_ascii=False))


def configure_logging(
    level: str, secrets: Iterable[str], *, log_format: str = "text", chat_ids: bool = False
) -> SecretRedactor:
    """Log to stderr through a SecretRedactor, as text or JSON lines; returns the redactor, so live
    credentials can be added to it. `chat_ids`: LOG_CHAT_IDS (chat ids in log lines)."""
    redactor = SecretRedactor(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(redactor) if log_format == "json" else TextFormatter(redactor))
    # Context first: it resolves chat references before the redactor formats the message.
    handler.addFilter(ContextFilter(show_chat_ids=chat_ids))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if log_format == "json":
        # Python's warnings would be plain lines on stderr: as records, they are JSON like the rest.
        logging.captureWarnings(True)
    # Every update and HTTP request at INFO is noise in production logs.
    logging.getLogger("aiogram.event").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpx2").setLevel(max(logging.WARNING, root.level))
    return redactor
