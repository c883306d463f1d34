"""Credentials as the fake Yandex sees them: API keys, and IAM tokens that stop working at their expiry.

Plugged into FakeYandex with ``fake.tokens = TokenRegistry()`` (see the marked lines in
tests/fakes/yandex.py); without it the fake keeps its single fixed key. The fake metadata service and
the fake IAM exchange issue their tokens here, so an expired token is refused the way Yandex refuses it:

* an IAM token (``t1.``…) is accepted only until its expiry, then 401 "The token has expired";
* an IAM token nobody issued: 401 "The token is invalid" (wording unconfirmed);
* an unknown API key, whether sent as ``Api-Key`` or ``Bearer``: 401 "Unknown api key";
* a known credential without the roles: 403 "Permission denied".
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Refusal:
    """What Yandex answers instead of serving the request."""

    status: int
    message: str


@dataclass
class _Entry:
    expires_at: float | None  # None: an API key, valid until deleted
    allowed: bool = True


class TokenRegistry:
    """Known credentials with their expiry on ``clock`` (monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self.accepted = 0
        self.refused: list[Refusal] = []

    # ------------------------------------------------------------------ issuing

    def add_api_key(self, key: str) -> None:
        self._entries[key] = _Entry(None)

    def issue_iam_token(self, lifetime: float) -> str:
        """A new IAM token valid for ``lifetime`` seconds from now."""
        token = "t1." + secrets.token_urlsafe(64)
        self._entries[token] = _Entry(self._clock() + lifetime)
        return token

    def add_iam_token(self, token: str, lifetime: float) -> None:
        self._entries[token] = _Entry(self._clock() + lifetime)

    def expire(self, token: str) -> None:
        """Make a token expire now (Yandex's clock ran ahead of the client's, or the token was old)."""
        self._entries[token].expires_at = self._clock()

    def deny(self, credential: str) -> None:
        """The credential authenticates but lacks the roles (a 403)."""
        self._entries[credential].allowed = False

    def remaining(self, token: str) -> float:
        """Seconds the token still lives (negative when expired); an API key: infinity."""
        entry = self._entries[token]
        return float("inf") if entry.expires_at is None else entry.expires_at - self._clock()

    @property
    def issued(self) -> list[str]:
        """Every credential ever known (for tests that look for leaks)."""
        return list(self._entries)

    # ------------------------------------------------------------------ checking

    def check(self, authorization: str) -> Refusal | None:
        """None when ``authorization`` (the whole header) may call Yandex; else the refusal."""
        refusal = self._refusal(authorization)
        if refusal is None:
            self.accepted += 1
        else:
            self.refused.append(refusal)
        return refusal

    def _refusal(self, authorization: str) -> Refusal | None:
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme not in ("Bearer", "Api-Key") or not credential:
            return Refusal(401, "Unauthorized")
        entry = self._entries.get(credential)
        iam_shaped = scheme == "Bearer" and credential.startswith("t1.")
        if entry is None or (scheme == "Api-Key" and entry.expires_at is not None):
            return Refusal(401, "The token is invalid" if iam_shaped else "Unknown api key")
        if entry.expires_at is not None and self._clock() >= entry.expires_at:
            return Refusal(401, "The token has expired")
        if not entry.allowed:
            return Refusal(403, "Permission denied")
        return None
