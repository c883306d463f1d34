"""The credential source: renewal timing (fake clock), and the real openai client streaming against the fake
Yandex with short-lived tokens from the fake metadata service, the fake IAM exchange and a fake `yc`."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from bot.assistant.client import Assistant
from bot.assistant.credentials import (
    Credentials,
    build_credentials,
    build_openai_client,
    describe_auth_failure,
)
from bot.assistant.events import Failed, Finished
from bot.assistant.token_sources import CredentialError, Token
from bot.config import Settings, SettingsError, YandexAuth, load_settings
from tests.fakes.iam import FakeIam
from tests.fakes.metadata import TOKEN_PATH, FakeMetadata
from tests.fakes.yandex import FakeYandex, Reply
from tests.fakes.yandex.tokens import TokenRegistry

# ---------------------------------------------------------------------------- helpers


class FakeClock:
    """Time moves only when someone sleeps."""

    def __init__(self) -> None:
        self.time = 1000.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += max(0.0, seconds)
        await asyncio.sleep(0)


class ScriptedSource:
    """A token source whose tokens live `lifetime` on the fake clock; `failures` first fetches fail."""

    renewable = True
    sdk_provider = None
    description = "scripted"

    def __init__(self, clock: FakeClock, lifetime: float, *, failures: int = 0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.failures = failures
        self.fetched_at: list[float] = []
        self.gate: asyncio.Event | None = None

    async def fetch(self) -> Token:
        self.fetched_at.append(self.clock.now())
        if self.gate is not None:
            await self.gate.wait()
        if len(self.fetched_at) > 1 and self.failures > 0:
            self.failures -= 1
            raise CredentialError("scripted failure")
        n = len(self.fetched_at)
        return Token(f"Bearer tok-{n}", self.clock.now() + self.lifetime, f"tok-{n}")


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0)


def settings_for(yandex: FakeYandex, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "bot_token": "123:test",
        "yandex_folder_id": yandex.folder_id,
        "yandex_base_url": yandex.base_url,
        "yandex_max_retries": 0,
    }
    values.update(overrides)
    return load_settings(**values)


def assistant_for(client: openai.AsyncOpenAI, yandex: FakeYandex) -> Assistant:
    return Assistant(
        client,
        model=f"gpt://{yandex.folder_id}/yandexgpt-5.1",
        instructions="Be brief.",
        temperature=0.3,
        max_output_tokens=100,
    )


async def answer(assistant: Assistant) -> Finished | Failed:
    async for event in assistant.stream([{"role": "user", "content": "hi"}]):
        if isinstance(event, Finished | Failed):
            return event
    raise AssertionError("the stream ended without a terminal event")


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


@pytest.fixture
def registry(yandex: FakeYandex) -> TokenRegistry:
    tokens = TokenRegistry()
    yandex.tokens = tokens
    return tokens


@pytest.fixture
async def metadata(registry: TokenRegistry) -> AsyncIterator[FakeMetadata]:
    fake = FakeMetadata(registry, lifetime=60.0)
    await fake.start()
    yield fake
    await fake.stop()


# ---------------------------------------------------------------------------- timing (fake clock)


async def test_renews_at_half_life_and_at_most_hourly() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock, lifetime=100.0)
    credentials = Credentials(source, YandexAuth.METADATA, clock=clock, min_interval=1.0)
    await credentials.start()
    await wait_for(lambda: len(source.fetched_at) >= 4)
    await credentials.aclose()
    assert source.fetched_at[:4] == [1000.0, 1050.0, 1100.0, 1150.0]

    long_lived = ScriptedSource(clock, lifetime=12 * 3600.0)
    credentials = Credentials(long_lived, YandexAuth.METADATA, clock=clock, max_age=3600.0)
    start = clock.now()
    await credentials.start()
    await wait_for(lambda: len(long_lived.fetched_at) >= 3)
    await credentials.aclose()
    assert [t - start for t in long_lived.fetched_at[:3]] == [0.0, 3600.0, 7200.0]


async def test_failed_renewal_keeps_the_token_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    source = ScriptedSource(clock, lifetime=100.0, failures=3)
    credentials = Credentials(source, YandexAuth.METADATA, clock=clock, min_interval=1.0, max_backoff=30.0)
    await credentials.start()
    await wait_for(lambda: len(source.fetched_at) >= 5)
    await credentials.aclose()
    # At half-life, then 1, 2, 4 s later (three failures), the last one succeeding.
    assert [t - 1000.0 for t in source.fetched_at[:5]] == [0.0, 50.0, 51.0, 53.0, 57.0]
    assert await credentials.authorization() == "Bearer tok-5"
    assert caplog.text.count("could not renew the Yandex credential") == 3


async def test_a_live_token_is_served_at_once_while_a_renewal_is_pending() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock, lifetime=100.0)
    credentials = Credentials(source, YandexAuth.METADATA, clock=clock)
    await credentials.start()
    source.gate = asyncio.Event()  # the next fetch hangs until released
    clock.time += 60  # past half-life: the background renewal is due
    renewal = asyncio.create_task(credentials.refresh_now())
    await wait_for(lambda: len(source.fetched_at) == 2)
    async with asyncio.timeout(0.1):
        assert await credentials.authorization() == "Bearer tok-1"
    source.gate.set()
    assert await renewal == "Bearer tok-2"
    assert await credentials.authorization() == "Bearer tok-2"


async def test_a_dead_token_waits_for_one_shared_fetch() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock, lifetime=100.0)
    credentials = Credentials(source, YandexAuth.METADATA, clock=clock)
    await credentials.start()
    clock.time += 101
    results = await asyncio.gather(*(credentials.authorization() for _ in range(50)))
    assert set(results) == {"Bearer tok-2"}
    assert len(source.fetched_at) == 2
    # A 401 for the old token after the renewal does not renew again.
    assert await credentials.refresh_now(stale="Bearer tok-1") == "Bearer tok-2"
    assert len(source.fetched_at) == 2


# ---------------------------------------------------------------------------- against the fakes


@pytest.mark.parametrize(("lifetime", "seconds"), [(1.0, 3.5), (2.0, 6.5)])
async def test_streams_never_fail_across_token_lifetimes(
    yandex: FakeYandex,
    registry: TokenRegistry,
    http: httpx2.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    lifetime: float,
    seconds: float,
) -> None:
    caplog.set_level(logging.DEBUG)
    metadata = FakeMetadata(registry, lifetime=lifetime)  # the same token until it dies
    await metadata.start()
    yandex.responder = lambda body: Reply(text="one two three four five", chunk_size=4, delay=0.03)
    settings = settings_for(yandex, yandex_auth="metadata", yc_metadata_addr=metadata.address)
    credentials = build_credentials(settings, http=http, min_interval=0.1, expiry_margin=0.2)
    await credentials.start()
    client = build_openai_client(settings, credentials)
    assistant = assistant_for(client, yandex)
    outcomes: list[Finished | Failed] = []

    async def worker() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            outcomes.append(await answer(assistant))

    try:
        await asyncio.gather(*(worker() for _ in range(4)))
    finally:
        await credentials.aclose()
        await client.close()
        await metadata.stop()

    failed = [o for o in outcomes if isinstance(o, Failed)]
    assert not failed, failed[:3]
    assert len(outcomes) > 20
    used = {r.headers["authorization"] for r in yandex.requests if r.headers.get("authorization")}
    assert len(used) >= seconds / lifetime - 1, "tokens were renewed as they aged"
    assert len(metadata.issued) >= seconds / lifetime - 1
    # Near its end the service keeps handing out the same token (expires_in 0): asked at most once per
    # min_interval then, not once per request.
    assert metadata.requests <= seconds / 0.1 + 2 * len(metadata.issued), "the metadata service is hammered"
    assert metadata.refused == 0, "every metadata request carries Metadata-Flavor: Google"
    # Every 401 the fake gave (a token that died in flight) was answered by one renewal and one resend.
    expired = sum(1 for r in registry.refused if r.message == "The token has expired")
    assert len(yandex.requests) == len(outcomes) + expired
    for secret in registry.issued:
        assert secret not in caplog.text


async def test_expired_token_gets_one_renewal_and_one_resend_of_the_stream(
    yandex: FakeYandex, registry: TokenRegistry, metadata: FakeMetadata, http: httpx2.AsyncClient
) -> None:
    settings = settings_for(yandex, yandex_auth="metadata", yc_metadata_addr=metadata.address)
    credentials = build_credentials(settings, http=http)
    await credentials.start()
    client = build_openai_client(settings, credentials)
    assistant = assistant_for(client, yandex)
    assert isinstance(await answer(assistant), Finished)
    first = metadata.issued[-1]
    registry.expire(first)  # Yandex considers it dead although we thought it had a minute left

    outcome = await answer(assistant)

    assert isinstance(outcome, Finished)
    assert [r.headers["authorization"] for r in yandex.requests] == [
        f"Bearer {first}",
        f"Bearer {first}",
        f"Bearer {metadata.issued[-1]}",
    ]
    assert metadata.requests == 2
    assert credentials.renewals == 1
    await client.close()


async def test_unknown_api_key_is_refused_once_and_explained(
    yandex: FakeYandex, registry: TokenRegistry, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registry.add_api_key("the-right-key")
    settings = settings_for(yandex, yandex_api_key="wrong-key-0123456789", yandex_max_retries=2)
    credentials = build_credentials(settings, http=http)
    await credentials.start()
    client = build_openai_client(settings, credentials)

    with pytest.raises(openai.AuthenticationError) as caught:
        await client.responses.create(model=f"gpt://{yandex.folder_id}/yandexgpt-5.1", input="hi")

    assert len(yandex.requests) == 1, "a bad key is not retried"
    assert yandex.requests[0].headers["authorization"] == "Api-Key wrong-key-0123456789"
    line = describe_auth_failure(caught.value, credentials)
    assert line is not None
    assert "Unknown api key" in line
    assert "api_key: YANDEX_API_KEY" in line
    assert "yc.ai.foundationModels.execute" in line
    assert "ai.assistants.editor" in line and "ai.languageModels.user" in line
    assert "wrong-key-0123456789" not in line
    assert "wrong-key-0123456789" not in caplog.text
    await client.close()


async def test_static_iam_token_that_expired_is_not_retried(
    yandex: FakeYandex, registry: TokenRegistry, http: httpx2.AsyncClient
) -> None:
    token = registry.issue_iam_token(60)
    registry.expire(token)
    settings = settings_for(yandex, yandex_iam_token=token)
    credentials = build_credentials(settings, http=http)
    await credentials.start()
    client = build_openai_client(settings, credentials)

    with pytest.raises(openai.AuthenticationError) as caught:
        await client.responses.create(model=f"gpt://{yandex.folder_id}/yandexgpt-5.1", input="hi")

    assert len(yandex.requests) == 1
    line = describe_auth_failure(caught.value, credentials)
    assert line is not None
    assert "The token has expired" in line and "cannot be renewed" in line
    assert token not in line
    await client.close()


async def test_missing_roles_are_named_with_the_folder(
    yandex: FakeYandex, registry: TokenRegistry, metadata: FakeMetadata, http: httpx2.AsyncClient
) -> None:
    settings = settings_for(yandex, yandex_auth="metadata", yc_metadata_addr=metadata.address)
    credentials = build_credentials(settings, http=http)
    await credentials.start()
    registry.deny(metadata.issued[-1])
    client = build_openai_client(settings, credentials)

    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.responses.create(model=f"gpt://{yandex.folder_id}/yandexgpt-5.1", input="hi")

    line = describe_auth_failure(caught.value, credentials)
    assert line is not None
    assert line.startswith("Yandex denied access (HTTP 403")
    assert f"roles ai.assistants.editor and ai.languageModels.user on the folder {yandex.folder_id}" in line
    assert "metadata: service account token from the metadata service at" in line
    assert "yc.ai.foundationModels.execute" not in line, "the scope is for API keys only"
    assert metadata.issued[-1] not in line
    await client.close()


async def test_fake_metadata_refuses_requests_without_the_flavor_header(
    metadata: FakeMetadata, http: httpx2.AsyncClient
) -> None:
    response = await http.get(f"http://{metadata.address}{TOKEN_PATH}")
    assert response.status_code == 403
    assert metadata.refused == 1 and metadata.requests == 0


async def test_metadata_outage_at_start_is_a_clear_error(
    metadata: FakeMetadata, http: httpx2.AsyncClient
) -> None:
    metadata.fail_next = 1
    credentials = build_credentials(
        _CredentialSettings(YandexAuth.METADATA, metadata_addr=metadata.address), http=http
    )
    with pytest.raises(CredentialError, match=r"metadata service at .*HTTP 500"):
        await credentials.start()


async def test_oauth_token_is_exchanged_and_renewed(
    yandex: FakeYandex, registry: TokenRegistry, http: httpx2.AsyncClient
) -> None:
    iam = FakeIam(registry, oauth_token="y0_fake-oauth", lifetime=1.0)
    await iam.start()
    settings = settings_for(yandex, yandex_oauth_token="y0_fake-oauth", yandex_iam_url=iam.url)
    assert settings.yandex_auth_kind is YandexAuth.OAUTH
    credentials = build_credentials(settings, http=http, min_interval=0.1)
    try:
        await credentials.start()
        client = build_openai_client(settings, credentials)
        assistant = assistant_for(client, yandex)
        assert isinstance(await answer(assistant), Finished)
        await asyncio.sleep(1.3)
        assert isinstance(await answer(assistant), Finished)
        assert iam.exchanges >= 2
        used = {r.headers["authorization"] for r in yandex.requests}
        assert len(used) == 2
        await client.close()
    finally:
        await credentials.aclose()
        await iam.stop()


async def test_bad_oauth_token_is_a_clear_error(registry: TokenRegistry, http: httpx2.AsyncClient) -> None:
    iam = FakeIam(registry, oauth_token="y0_right")
    await iam.start()
    try:
        credentials = build_credentials(
            _CredentialSettings(YandexAuth.OAUTH, oauth="y0_wrong", iam_url=iam.url), http=http
        )
        with pytest.raises(CredentialError, match="HTTP 401") as caught:
            await credentials.start()
        assert "y0_wrong" not in str(caught.value)
    finally:
        await iam.stop()


async def test_yc_cli_profile_through_the_sdk_provider(
    yandex: FakeYandex,
    registry: TokenRegistry,
    http: httpx2.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = registry.issue_iam_token(3600)
    calls = tmp_path / "calls"
    script = tmp_path / "yc"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "{token}"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    settings = settings_for(yandex, yandex_auth="yc", yc_profile="dev")
    credentials = build_credentials(settings, http=http)
    await credentials.start()
    client = build_openai_client(settings, credentials)

    assert isinstance(await answer(assistant_for(client, yandex)), Finished)
    assert yandex.requests[-1].headers["authorization"] == f"Bearer {token}"
    assert calls.read_text().split() == ["iam", "create-token", "--no-user-output", "--profile", "dev"]
    assert credentials.describe() == "yc: yc CLI profile 'dev'"
    await credentials.refresh_now()
    assert len(calls.read_text().splitlines()) == 2, "each renewal runs the CLI again"
    await client.close()
    await credentials.aclose()


async def test_the_sdk_gets_the_same_credential(
    yandex: FakeYandex, metadata: FakeMetadata, http: httpx2.AsyncClient
) -> None:
    from yandex_ai_studio_sdk import AsyncAIStudio
    from yandex_ai_studio_sdk.auth import APIKeyAuth

    settings = settings_for(yandex, yandex_auth="metadata", yc_metadata_addr=metadata.address)
    credentials = build_credentials(settings, http=http)
    await credentials.start()
    sdk = AsyncAIStudio(folder_id=yandex.folder_id, auth=credentials.sdk_auth, endpoint=None)
    # The SDK's own path for every call's headers (private, read here only to prove the hand-over).
    headers = await sdk._client._get_metadata(auth_required=True, timeout=1.0)
    assert ("authorization", f"Bearer {metadata.issued[-1]}") in headers
    await credentials.refresh_now()
    headers = await sdk._client._get_metadata(auth_required=True, timeout=1.0)
    assert ("authorization", f"Bearer {metadata.issued[-1]}") in headers

    keyed = build_credentials(settings_for(yandex, yandex_api_key="k-1"), http=http)
    assert isinstance(keyed.sdk_auth, APIKeyAuth), "a static key goes to the SDK as its own provider"
    await keyed.start()
    assert await keyed.authorization() == "Api-Key k-1"


def test_settings_choose_the_credential() -> None:
    base = {"_env_file": None, "bot_token": "1:x", "yandex_folder_id": "b1g"}
    assert load_settings(**base, yandex_auth="metadata").yandex_auth_kind is YandexAuth.METADATA
    both = load_settings(**base, yandex_api_key="k", yandex_iam_token="t")
    assert both.yandex_auth_kind is YandexAuth.API_KEY, "an API key wins, as before"
    assert load_settings(**base, yandex_iam_token="t").yandex_auth_kind is YandexAuth.IAM_TOKEN
    with pytest.raises(SettingsError, match="YANDEX_AUTH=oauth needs YANDEX_OAUTH_TOKEN"):
        load_settings(**base, yandex_auth="oauth")
    with pytest.raises(SettingsError, match="set YANDEX_API_KEY or YANDEX_IAM_TOKEN"):
        load_settings(**base)
    assert load_settings(**base, yandex_auth="metadata").yc_metadata_addr == "169.254.169.254"


class _CredentialSettings:
    """Just the credential settings, for sources tested without the rest of the configuration."""

    def __init__(
        self, kind: YandexAuth, *, metadata_addr: str = "", oauth: str | None = None, iam_url: str = ""
    ) -> None:
        from pydantic import SecretStr

        self.yandex_auth_kind = kind
        self.yandex_api_key = None
        self.yandex_iam_token = None
        self.yandex_oauth_token = SecretStr(oauth) if oauth else None
        self.yc_metadata_addr = metadata_addr
        self.yc_profile = None
        self.yandex_iam_url = iam_url


async def test_every_token_handed_out_is_reported_for_the_log_redaction(
    yandex: FakeYandex, registry: TokenRegistry, metadata: FakeMetadata
) -> None:
    from bot.assistant.connection import YandexConnection
    from bot.logs import SecretRedactor

    metadata.lifetime = 1.0
    redactor = SecretRedactor([])
    settings = settings_for(yandex, yandex_auth="metadata", yc_metadata_addr=metadata.address)
    connection = YandexConnection.open(settings, on_secret=redactor.add)
    await connection.start()
    try:
        await wait_for(lambda: len(metadata.issued) >= 3, timeout=10)
        await connection.credentials.authorization()
    finally:
        await connection.aclose()
    for token in metadata.issued[:3]:
        assert redactor.redact(f"Authorization: Bearer {token}!") == "Authorization: Bearer ***!"
