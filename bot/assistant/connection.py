"""One process's way to Yandex: the renewed credential, the openai client it authorises, their lifecycle.

The bot (bot/factory.py) and the `kb` CLI (bot/cli.py) both open it the same way, so every Yandex call
either of them makes — the Responses API, files and vector stores through `openai`, and the Yandex SDK
through `credentials.sdk_auth` — uses the one credential, renewed before it expires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx2
from openai import AsyncOpenAI

from bot.assistant.credentials import Credentials, build_credentials, build_openai_client
from bot.assistant.diagnosis import ServiceDiagnosis
from bot.clock import Clock
from bot.config import Settings

# The metadata service and IAM answer within a second; these bound a hung token endpoint.
TOKEN_ENDPOINT_TIMEOUT = httpx2.Timeout(10.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class YandexConnection:
    credentials: Credentials
    openai: AsyncOpenAI
    diagnosis: ServiceDiagnosis
    token_http: httpx2.AsyncClient  # reaches the metadata service and IAM, not AI Studio

    @classmethod
    def open(
        cls, settings: Settings, *, clock: Clock | None = None, on_secret: Callable[[str], None] | None = None
    ) -> YandexConnection:
        """Build it (no I/O yet); `on_secret` learns every credential handed out (the log redaction)."""
        token_http = httpx2.AsyncClient(timeout=TOKEN_ENDPOINT_TIMEOUT)
        credentials = build_credentials(settings, http=token_http, clock=clock, on_secret=on_secret)
        diagnosis = ServiceDiagnosis(
            credentials, model_setting=settings.yandex_model, model_uri=settings.model_uri
        )
        return cls(credentials, build_openai_client(settings, credentials), diagnosis, token_http)

    async def start(self) -> None:
        """Fetch the first credential and start renewing it; raises CredentialError when impossible."""
        await self.credentials.start()

    async def aclose(self) -> None:
        await self.credentials.aclose()
        await self.openai.close()
        await self.token_http.aclose()
