"""One credential source for every Yandex call: the openai client's requests and the Yandex SDK alike.

An IAM token lives at most 12 hours, so a bot that keeps the token it started with stops answering after
half a day. `Credentials` keeps the current token of one source (bot/assistant/token_sources.py), renews
it in the background well before it expires — a question never waits for a renewal unless the token is
already dead — and lets every caller share one renewal. The openai client gets it through an httpx auth
flow (`CredentialsAuth`) that also renews once and resends once when Yandex answers 401 "expired"; the
SDK gets it as its own kind of auth provider (`Credentials.sdk_auth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol, Self

import httpx2
import openai
from openai import AsyncOpenAI
from pydantic import SecretStr
from yandex_ai_studio_sdk._auth import BaseAuth  # the SDK's provider interface; not re-exported publicly
from yandex_ai_studio_sdk.auth import APIKeyAuth, IAMTokenAuth

from bot.assistant.token_sources import (
    CliSource,
    CredentialError,
    MetadataSource,
    OAuthSource,
    StaticSource,
    Token,
    TokenSource,
)
from bot.clock import Clock, SystemClock
from bot.config import YandexAuth

if TYPE_CHECKING:
    from yandex_ai_studio_sdk._client import AsyncCloudClient

log = logging.getLogger(__name__)

REQUIRED_ROLES = ("ai.assistants.editor", "ai.languageModels.user")
API_KEY_SCOPE = "yc.ai.foundationModels.execute"

# openai insists on an api_key; ours is set on every request by CredentialsAuth. If anything ever sent
# this instead, Yandex would refuse it as an unknown key: wrong, but no secret leaks.
_PLACEHOLDER_KEY = "set-per-request-by-credentials"


class CredentialUnavailable(httpx2.RequestError):
    """No credential could be obtained for a request.

    An httpx RequestError on purpose: the openai client then treats it as the service being unreachable
    (retried with its backoff, then APIConnectionError), which is what it is to the user.
    """


class Credentials:
    """The current credential of one source, renewed ahead of its expiry.

    A token is renewed when half of its life has passed (at most `max_age` after it was fetched: Yandex
    advises renewing IAM tokens hourly although they live 12 hours). A failed renewal is retried with
    backoff, from `min_interval` up to `max_backoff`, while the old token still works. `authorization()`
    waits only when there is no live token at all; concurrent callers then share one fetch.
    """

    def __init__(
        self,
        source: TokenSource,
        kind: YandexAuth,
        *,
        clock: Clock | None = None,
        max_age: float = 3600.0,
        min_interval: float = 1.0,
        max_backoff: float = 30.0,
        expiry_margin: float = 10.0,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        self._source = source
        # Told every secret this source hands out (the log redaction learns the live IAM tokens).
        self._on_secret = on_secret
        self.kind = kind
        self._clock = clock or SystemClock()
        self._max_age = max_age
        self._min_interval = min_interval
        self._max_backoff = max_backoff
        self._expiry_margin = expiry_margin
        self._token: Token | None = None
        self._fetched_at = 0.0
        self._stale = False
        self._inflight: asyncio.Task[Token] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.renewals = 0  # fetches that replaced a token (for metrics and tests)
        self._sdk_auth: BaseAuth = source.sdk_provider or SharedSdkAuth(self)

    # ------------------------------------------------------------------ what callers use

    @property
    def renewable(self) -> bool:
        return self._source.renewable

    @property
    def sdk_auth(self) -> BaseAuth:
        """The provider to hand to `AsyncAIStudio(auth=...)`: the same credential the openai client uses."""
        return self._sdk_auth

    def describe(self) -> str:
        """Which credential is in use, e.g. "metadata: service account token from ..." (never the secret)."""
        return f"{self.kind.value}: {self._source.description}"

    async def authorization(self) -> str:
        """The `Authorization` header value to send now (`Api-Key <key>` or `Bearer <iam>`)."""
        token = self._token
        if token is not None and not self._stale and (not self._dying(token) or self._just_fetched()):
            # A source may hand out the same nearly dead token again (a metadata service caching it); then
            # asking on every request would only hammer it, and a 401 "expired" will still renew.
            return token.authorization
        if token is not None and not self._source.renewable:
            return token.authorization  # nothing better exists; the service will say what is wrong
        return (await self._fetch_shared()).authorization

    def invalidate(self, authorization: str | None = None) -> None:
        """Forget the current token (or only if it is still `authorization`: a newer one may be in use)."""
        token = self._token
        if token is not None and (authorization is None or token.authorization == authorization):
            self._stale = True

    async def refresh_now(self, stale: str | None = None) -> str:
        """A fresh token now, e.g. after a 401 "expired"; shared with concurrent callers.

        With `stale`, a token that has already replaced that one is returned without another fetch.
        A source that cannot renew returns what it has.
        """
        if not self._source.renewable and self._token is not None:
            return self._token.authorization
        token = self._token
        if stale is not None and token is not None and token.authorization != stale and not self._stale:
            return token.authorization
        return (await self._fetch_shared()).authorization

    def redact(self, text: str) -> str:
        """`text` with the current secret cut out (for error texts a service might echo)."""
        token = self._token
        if token is None or not token.secret:
            return text
        return text.replace(token.secret, "***")

    async def start(self) -> None:
        """Fetch the first token (raising CredentialError when impossible) and start renewing it."""
        await self._fetch_shared()
        if self._source.renewable and self._refresher is None:
            self._refresher = asyncio.create_task(self._renew_forever(), name="yandex-credentials")

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ renewal

    def _dying(self, token: Token) -> bool:
        if token.expires_at is None:
            return False
        lifetime = max(0.0, token.expires_at - self._fetched_at)
        # Never send a token that may die on the way: keep a margin, small for short-lived tokens.
        margin = min(self._expiry_margin, lifetime / 10)
        return self._clock.now() >= token.expires_at - margin

    def _just_fetched(self) -> bool:
        return self._clock.now() - self._fetched_at < self._min_interval

    def _renew_at(self) -> float:
        token = self._token
        if token is None or token.expires_at is None:
            return self._fetched_at + self._max_age
        half_life = (token.expires_at - self._fetched_at) / 2
        return self._fetched_at + max(self._min_interval, min(self._max_age, half_life))

    async def _fetch_shared(self) -> Token:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._fetch(), name="yandex-credentials-fetch")
            self._inflight.add_done_callback(_retrieve)
        # Shielded: a caller cancelled meanwhile (a /stop) must not cancel the fetch the others await.
        return await asyncio.shield(self._inflight)

    async def _fetch(self) -> Token:
        previous = self._token
        token = await self._source.fetch()
        if self._on_secret is not None and token.secret:
            self._on_secret(token.secret)
        self._token = token
        self._fetched_at = self._clock.now()
        self._stale = False
        if previous is not None and previous.authorization != token.authorization:
            self.renewals += 1
        lifetime = (
            "does not expire"
            if token.expires_at is None
            else (f"valid for {token.expires_at - self._fetched_at:.0f} s")
        )
        log.info("Yandex credential ready (%s; %s)", self.describe(), lifetime)
        return token

    async def _renew_forever(self) -> None:
        failures = 0
        while True:
            if failures:
                delay = min(self._max_backoff, self._min_interval * 2 ** (failures - 1))
            else:
                delay = self._renew_at() - self._clock.now()
            await self._clock.sleep(max(0.0, delay))
            try:
                await self._fetch_shared()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep the old token and try again; it may still have hours
                failures += 1
                left = "unknown"
                if self._token is not None and self._token.expires_at is not None:
                    left = f"{self._token.expires_at - self._clock.now():.0f} s"
                log.warning(
                    "could not renew the Yandex credential (%s): %s; current token has %s left",
                    self.describe(),
                    error,
                    left,
                )


def _retrieve(task: asyncio.Task[Token]) -> None:
    # Every awaiter may have been cancelled; the failure is logged by whoever asked, not as "never retrieved".
    if not task.cancelled():
        task.exception()


class SharedSdkAuth(BaseAuth):
    """The SDK's view of a renewed credential: each gRPC/HTTP call of the SDK asks `Credentials`.

    The SDK's own refreshing providers would keep a second token with their own hourly timing; this one
    makes the SDK and the openai client share one token and one renewal.
    """

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get_auth_metadata(
        self,
        client: AsyncCloudClient,
        timeout: float,  # noqa: ASYNC109 - the SDK's interface
        lock: asyncio.Lock,
    ) -> tuple[str, str]:
        return ("authorization", await self._credentials.authorization())

    @classmethod
    async def applicable_from_env(cls, **_: Any) -> Self | None:
        return None  # never chosen from the environment: it is always passed explicitly


# ---------------------------------------------------------------------- the openai client


def token_expired(body: bytes | str) -> bool:
    """Whether a 401's body says the token expired (Yandex: "The token has expired ...")."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return "expired" in text.lower()


class CredentialsAuth(httpx2.Auth):
    """httpx auth flow: the current credential on every request; one renewal and one resend on "expired".

    Only a 401 whose body says the token expired is retried, once, and only if renewing gave a different
    token; a bad API key or a static token is answered as the service answered it. A streaming request is
    retried too: the 401 arrives before any event, so nothing was consumed.
    """

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        raise RuntimeError("CredentialsAuth serves async clients only")

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        try:
            used = await self._credentials.authorization()
        except CredentialError as error:
            raise CredentialUnavailable(str(error), request=request) from error
        request.headers["Authorization"] = used
        response = yield request
        if response.status_code != 401 or not self._credentials.renewable:
            return
        await response.aread()  # a short JSON error body; openai would read it anyway
        if not token_expired(response.content):
            return
        self._credentials.invalidate(used)
        try:
            fresh = await self._credentials.refresh_now(stale=used)
        except CredentialError as error:
            log.warning(
                "token expired and could not be renewed (%s): %s", self._credentials.describe(), error
            )
            return
        if fresh == used or not _replayable(request):
            return
        log.info(
            "Yandex said the token expired; resending with a renewed one (%s)", self._credentials.describe()
        )
        request.headers["Authorization"] = fresh
        yield request


def _replayable(request: httpx2.Request) -> bool:
    try:
        request.content  # noqa: B018 - raises when the body is a one-shot stream
    except httpx2.RequestNotRead:
        return False
    return True


class OpenAISettings(Protocol):
    """What the openai client needs from the settings (bot.config.Settings has all of it)."""

    @property
    def yandex_base_url(self) -> str: ...
    @property
    def yandex_folder_id(self) -> str: ...
    @property
    def yandex_timeout(self) -> float: ...
    @property
    def yandex_max_retries(self) -> int: ...
    @property
    def yandex_data_logging(self) -> bool: ...


async def _generation_quota_retried_by_us(response: httpx2.Response) -> None:
    """A 429 from the Responses endpoint is the folder's generation quota: the turn logic waits for it
    (bot/turns/generation.py: bounded, honouring Retry-After, the user told that the question waits), so
    the client's own quick retries are switched off for it with the header openai obeys. Other endpoints
    (files, vector stores) keep the client's retries."""
    if response.status_code == 429 and response.request.url.path.endswith("/responses"):
        response.headers["x-should-retry"] = "false"


def build_openai_client(settings: OpenAISettings, credentials: Credentials) -> AsyncOpenAI:
    """The official client pointed at Yandex, authorised by `credentials` on every request (and retry)."""
    http_client = openai.DefaultAsyncHttpxClient(
        auth=CredentialsAuth(credentials), event_hooks={"response": [_generation_quota_retried_by_us]}
    )
    return AsyncOpenAI(
        base_url=settings.yandex_base_url,
        api_key=_PLACEHOLDER_KEY,
        project=settings.yandex_folder_id,
        # The read timeout bounds the silence between two stream chunks, not the whole answer.
        timeout=openai.Timeout(settings.yandex_timeout, connect=10.0),
        max_retries=settings.yandex_max_retries,
        default_headers={"x-data-logging-enabled": "true" if settings.yandex_data_logging else "false"},
        http_client=http_client,
    )


# ---------------------------------------------------------------------- building from settings


class CredentialSettings(Protocol):
    """The credential settings (bot.config.Settings has all of them)."""

    @property
    def yandex_auth_kind(self) -> YandexAuth | None: ...
    @property
    def yandex_api_key(self) -> SecretStr | None: ...
    @property
    def yandex_iam_token(self) -> SecretStr | None: ...
    @property
    def yandex_oauth_token(self) -> SecretStr | None: ...
    @property
    def yc_metadata_addr(self) -> str: ...
    @property
    def yc_profile(self) -> str | None: ...
    @property
    def yandex_iam_url(self) -> str: ...


def build_credentials(
    settings: CredentialSettings,
    *,
    http: httpx2.AsyncClient,
    clock: Clock | None = None,
    on_secret: Callable[[str], None] | None = None,
    **timing: float,
) -> Credentials:
    """The credential YANDEX_AUTH (or the secret that is set) names; `http` reaches metadata/IAM.

    `on_secret` is told every secret handed out (for the log redaction); `timing` goes to Credentials
    (max_age, min_interval, max_backoff, expiry_margin).
    """
    clock = clock or SystemClock()
    kind = settings.yandex_auth_kind
    source: TokenSource
    if kind is YandexAuth.API_KEY:
        source = StaticSource(
            APIKeyAuth(_secret(settings.yandex_api_key, "YANDEX_API_KEY")), "YANDEX_API_KEY"
        )
    elif kind is YandexAuth.IAM_TOKEN:
        token = _secret(settings.yandex_iam_token, "YANDEX_IAM_TOKEN")
        source = StaticSource(
            IAMTokenAuth(token), "static YANDEX_IAM_TOKEN (dies within 12 h, never renewed)"
        )
        log.warning(
            "YANDEX_IAM_TOKEN is used as given: it expires within 12 hours and cannot be renewed. "
            "Use YANDEX_AUTH=metadata on Yandex Cloud, or an API key."
        )
    elif kind is YandexAuth.OAUTH:
        source = OAuthSource(
            http,
            clock,
            oauth_token=_secret(settings.yandex_oauth_token, "YANDEX_OAUTH_TOKEN"),
            url=settings.yandex_iam_url,
        )
    elif kind is YandexAuth.METADATA:
        source = MetadataSource(http, clock, address=settings.yc_metadata_addr)
    elif kind is YandexAuth.YC:
        source = CliSource(clock, profile=settings.yc_profile)
    else:
        raise CredentialError("no Yandex credential configured")
    return Credentials(source, kind, clock=clock, on_secret=on_secret, **timing)


def _secret(value: SecretStr | None, name: str) -> str:
    if value is None or not value.get_secret_value().strip():
        raise CredentialError(f"{name} is not set")
    return value.get_secret_value()


# ---------------------------------------------------------------------- explaining a refusal


def describe_auth_failure(error: openai.APIStatusError, credentials: Credentials) -> str | None:
    """One log line for a 401/403 from Yandex: which credential, what Yandex said, what access it needs.

    None for any other status. The service's message is included with the current secret cut out.
    """
    if error.status_code not in (401, 403):
        return None
    said = credentials.redact(_service_message(error))
    what = "refused the credential" if error.status_code == 401 else "denied access"
    needs = (
        f"the service account needs the roles {' and '.join(REQUIRED_ROLES)} on the folder{_folder_of(error)}"
    )
    if credentials.kind is YandexAuth.API_KEY:
        needs = f"the API key needs the scope {API_KEY_SCOPE}, and {needs}"
    hint = ""
    if error.status_code == 401 and token_expired(said) and not credentials.renewable:
        hint = "; this IAM token cannot be renewed: use YANDEX_AUTH=metadata, oauth or yc, or an API key"
    return f"Yandex {what} (HTTP {error.status_code}: {said!r}) for {credentials.describe()}; {needs}{hint}"


def _service_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        nested = body.get("error")
        if isinstance(nested, dict) and nested.get("message"):
            return str(nested["message"])
        if body.get("message"):
            return str(body["message"])
    return error.message


def _folder_of(error: openai.APIStatusError) -> str:
    folder = error.response.request.headers.get("OpenAI-Project")
    return f" {folder}" if folder else ""
