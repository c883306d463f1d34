"""One grpc.aio server on 127.0.0.1 that plays every Yandex service the bot's SDK code reaches."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

import grpc
import grpc.aio
from yandex.cloud.ai.foundation_models.v1.image_generation.image_generation_service_pb2_grpc import (
    add_ImageGenerationAsyncServiceServicer_to_server,
)
from yandex.cloud.ai.stt.v3.stt_service_pb2_grpc import add_RecognizerServicer_to_server
from yandex.cloud.ai.tts.v3.tts_service_pb2_grpc import add_SynthesizerServicer_to_server
from yandex.cloud.endpoint.api_endpoint_service_pb2_grpc import add_ApiEndpointServiceServicer_to_server
from yandex.cloud.operation.operation_service_pb2_grpc import add_OperationServiceServicer_to_server

from tests.fakes.yandex_grpc.common import Call, Credentials, Hub
from tests.fakes.yandex_grpc.discovery import FakeEndpoints
from tests.fakes.yandex_grpc.images import FakeImageGeneration, FakeOperations
from tests.fakes.yandex_grpc.stt import FakeRecognizer
from tests.fakes.yandex_grpc.tts import FakeSynthesizer

__all__ = ["FakeYandexGrpc"]


class FakeYandexGrpc:
    """Endpoint discovery, SpeechKit STT v3 and TTS v3, YandexART and operations on one port.

    ``start()`` binds 127.0.0.1 on a free port; :attr:`address` is what the SDK's ``endpoint`` gets
    (with ``verify=False``). Every RPC is in :attr:`calls`; the services' knobs are on :attr:`stt`,
    :attr:`tts`, :attr:`images` and :attr:`operations`; :attr:`credentials` says what authenticates.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        list_tts_in_discovery: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = Hub(credentials or Credentials(), clock)
        self.discovery = FakeEndpoints(self.hub, list_tts=list_tts_in_discovery)
        self.stt = FakeRecognizer(self.hub)
        self.tts = FakeSynthesizer(self.hub)
        self.images = FakeImageGeneration(self.hub)
        self.operations = FakeOperations(self.hub, self.images)
        self._server: grpc.aio.Server | None = None
        self.address = ""

    @property
    def credentials(self) -> Credentials:
        return self.hub.credentials

    @property
    def calls(self) -> list[Call]:
        return self.hub.calls

    def calls_to(self, name: str) -> list[Call]:
        """Calls of one method by short name: ``List``, ``RecognizeStreaming``, ``Generate``, ``Get``..."""
        return self.hub.calls_to(name)

    async def start(self) -> str:
        server = grpc.aio.server()
        add_ApiEndpointServiceServicer_to_server(self.discovery, server)
        add_RecognizerServicer_to_server(self.stt, server)
        add_SynthesizerServicer_to_server(self.tts, server)
        add_ImageGenerationAsyncServiceServicer_to_server(self.images, server)
        add_OperationServiceServicer_to_server(self.operations, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self.address = self.discovery.address = f"127.0.0.1:{port}"
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None

    async def __aenter__(self) -> FakeYandexGrpc:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
