"""Where a Yandex credential comes from: one small source per kind, each saying when its token dies.

Yandex's SDK (`yandex_ai_studio_sdk.auth`) has a provider for each kind, and we use them where they do the
whole job: the API key and the static IAM token (their header is the SDK's own), and the `yc` CLI (the
SDK runs `yc iam create-token`). What the SDK does not do is say when a token expires: its refreshing
providers re-fetch lazily, on the first call made an hour after the last fetch, and they throw away the
`expires_in` / `expiresAt` the services send. So the metadata service and the OAuth exchange are read
here, keeping the expiry; the SDK's `MetadataAuth` also takes its address only through YC_METADATA_ADDR in
`applicable_from_env` (its constructor's default is a bare address, not a URL), and its `OAuthTokenAuth`
needs the SDK's internal gRPC client to exchange the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpx2
from yandex_ai_studio_sdk.auth import APIKeyAuth, IAMTokenAuth, YandexCloudCLIAuth

from bot.clock import Clock

if TYPE_CHECKING:
    from yandex_ai_studio_sdk._auth import BaseAuth

log = logging.getLogger(__name__)

# Yandex: an IAM token lives at most 12 hours.
IAM_TOKEN_MAX_LIFETIME = 12 * 3600.0
METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


class CredentialError(Exception):
    """A credential could not be obtained; the message names the source, never a secret."""


@dataclass(frozen=True, slots=True)
class Token:
    """One credential as sent: the whole `Authorization` value and when it stops working."""

    authorization: str = field(repr=False)
    # On the Credentials' clock; None: it never expires (an API key) or nobody can tell (a static token).
    expires_at: float | None
    secret: str = field(repr=False)


class TokenSource(Protocol):
    """Fetches a fresh credential of one kind."""

    @property
    def description(self) -> str:
        """Which credential this is, for logs (never the secret)."""
        ...

    @property
    def renewable(self) -> bool:
        """Whether fetching again can give a different, fresh token."""
        ...

    @property
    def sdk_provider(self) -> BaseAuth | None:
        """An SDK provider that serves exactly this credential as it is, or None when it must be renewed."""
        ...

    async def fetch(self) -> Token: ...


async def _sdk_authorization(provider: BaseAuth, seconds: float) -> str:
    # The SDK asks its providers through get_auth_metadata(client, timeout, lock). The providers used here
    # never touch the client (only OAuthTokenAuth does, to reach the IAM service over gRPC), so none is
    # passed; the lock only serialises a provider's own refresh.
    metadata = await provider.get_auth_metadata(cast(Any, None), seconds, asyncio.Lock())
    if not metadata or metadata[0].lower() != "authorization":
        raise CredentialError(f"{type(provider).__name__} gave no authorization header")
    return metadata[1]


def _secret_of(authorization: str) -> str:
    return authorization.partition(" ")[2]


class StaticSource:
    """An API key or an IAM token given in the settings, served by the SDK's own provider."""

    renewable = False

    def __init__(self, provider: APIKeyAuth | IAMTokenAuth, description: str) -> None:
        self._provider = provider
        self.description = description

    @property
    def sdk_provider(self) -> BaseAuth:
        return self._provider

    async def fetch(self) -> Token:
        authorization = await _sdk_authorization(self._provider, 1.0)
        return Token(authorization, None, _secret_of(authorization))


class CliSource:
    """`yc iam create-token` for the CLI's profile, run by the SDK's YandexCloudCLIAuth."""

    renewable = True
    sdk_provider = None

    def __init__(self, clock: Clock, *, profile: str | None, timeout: float = 30.0) -> None:
        self._clock = clock
        self._profile = profile
        self._timeout = timeout
        self.description = f"yc CLI profile {profile!r}" if profile else "yc CLI (its current profile)"

    async def fetch(self) -> Token:
        # A new provider each time: one provider keeps its token for an hour whatever we ask.
        provider = YandexCloudCLIAuth(yc_profile=self._profile)
        try:
            authorization = await _sdk_authorization(provider, self._timeout)
        except (RuntimeError, OSError) as error:  # no `yc`, not logged in, or it failed
            raise CredentialError(f"{self.description}: {error}") from None
        # The CLI prints only the token; a new one lives the full 12 hours.
        return Token(authorization, self._clock.now() + IAM_TOKEN_MAX_LIFETIME, _secret_of(authorization))


class MetadataSource:
    """The service account's IAM token from the metadata service of a Yandex Cloud VM or container."""

    renewable = True
    sdk_provider = None

    def __init__(self, http: httpx2.AsyncClient, clock: Clock, *, address: str, timeout: float = 5.0) -> None:
        self._http = http
        self._clock = clock
        self._timeout = timeout
        # YC_METADATA_ADDR is a host[:port], as the SDK reads it.
        self._url = f"http://{address}{METADATA_PATH}"
        self.description = f"service account token from the metadata service at {address}"

    async def fetch(self) -> Token:
        request = self._http.get(self._url, headers={"Metadata-Flavor": "Google"}, timeout=self._timeout)
        data, started = await _answer(request, self.description, self._clock, error_text=False)
        try:
            token = _token_field(data, "access_token", self.description)
            lifetime = float(data["expires_in"])
        except (ValueError, KeyError, TypeError):
            raise CredentialError(f"{self.description}: unexpected answer (no expires_in)") from None
        kind = str(data.get("token_type") or "Bearer")
        if kind.lower() != "bearer":
            raise CredentialError(f"{self.description}: unexpected token_type {kind!r}")
        return Token(f"Bearer {token}", started + lifetime, token)


class OAuthSource:
    """A Yandex account's OAuth token exchanged for IAM tokens (IAM's REST `POST /iam/v1/tokens`)."""

    renewable = True
    sdk_provider = None

    def __init__(
        self,
        http: httpx2.AsyncClient,
        clock: Clock,
        *,
        oauth_token: str,
        url: str,
        wall_clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self._http = http
        self._clock = clock
        self._wall = wall_clock
        self._oauth_token = oauth_token.strip()
        self._url = url
        self._timeout = timeout
        self.description = f"IAM token exchanged for YANDEX_OAUTH_TOKEN at {url}"

    async def fetch(self) -> Token:
        request = self._http.post(
            self._url, json={"yandexPassportOauthToken": self._oauth_token}, timeout=self._timeout
        )
        # IAM's error text says why (e.g. an expired OAuth token) and carries no secret of ours.
        data, started = await _answer(request, self.description, self._clock, error_text=True)
        try:
            token = _token_field(data, "iamToken", self.description)
            expires = _parse_rfc3339(str(data["expiresAt"]))
        except (ValueError, KeyError, TypeError):
            raise CredentialError(f"{self.description}: unexpected answer (no expiresAt)") from None
        # expiresAt is wall-clock time; what is left of it is carried over to our monotonic clock.
        lifetime = max(0.0, min(expires - self._wall(), IAM_TOKEN_MAX_LIFETIME))
        return Token(f"Bearer {token}", started + lifetime, token)


async def _answer(
    request: Awaitable[httpx2.Response], description: str, clock: Clock, *, error_text: bool
) -> tuple[dict[str, Any], float]:
    """The JSON object a token endpoint answered with, and when it answered; a CredentialError otherwise."""
    try:
        response = await request
    except httpx2.HTTPError as error:
        raise CredentialError(f"{description}: {type(error).__name__}: {error}") from None
    if response.status_code != 200:
        detail = f" {response.text[:200]}" if error_text else ""
        raise CredentialError(f"{description}: HTTP {response.status_code}{detail}")
    started = clock.now()
    try:
        data = response.json()
    except ValueError:
        raise CredentialError(f"{description}: the answer is not JSON") from None
    if not isinstance(data, dict):
        raise CredentialError(f"{description}: unexpected answer")
    return data, started


def _token_field(data: dict[str, Any], field: str, description: str) -> str:
    token = data.get(field)
    if not isinstance(token, str) or not token.strip():
        raise CredentialError(f"{description}: no {field} in the answer")
    return token.strip()


def _parse_rfc3339(text: str) -> float:
    """Unix seconds of IAM's `expiresAt`, which may carry nanoseconds (more than fromisoformat takes)."""
    text = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("expiresAt has no time zone")
    return moment.timestamp()
