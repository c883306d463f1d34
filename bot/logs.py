"""Logging set-up that keeps secrets out of every log line."""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

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


def configure_logging(level: str, secrets: Iterable[str]) -> SecretRedactor:
    """Log to stderr through a SecretRedactor; returns it, so live credentials can be added to it."""
    redactor = SecretRedactor(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Every update and HTTP request at INFO is noise in production logs.
    logging.getLogger("aiogram.event").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpx2").setLevel(max(logging.WARNING, root.level))
    return redactor
