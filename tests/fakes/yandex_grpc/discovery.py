"""The endpoint-discovery service (``yandex.cloud.endpoint.ApiEndpointService``).

The SDK asks it once, with ``List`` and no credentials, for the address of every service id (the
ids come from the protobuf package of each stub: ``ai-stt-v3``, ``ai-foundation-models``,
``operation``, ...), then dials those addresses. The fake answers its own address for every id.

Yandex's own list lacks ``ai-tts-v3`` (the SDK hard-codes ``tts.api.cloud.yandex.net:443`` for
``api.cloud.yandex.net:443`` only), so by default the fake leaves it out too.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
from yandex.cloud.endpoint.api_endpoint_pb2 import ApiEndpoint
from yandex.cloud.endpoint.api_endpoint_service_pb2 import (
    GetApiEndpointRequest,
    ListApiEndpointsRequest,
    ListApiEndpointsResponse,
)
from yandex.cloud.endpoint.api_endpoint_service_pb2_grpc import ApiEndpointServiceServicer

from tests.fakes.yandex_grpc.common import Hub

__all__ = ["SERVICE_IDS", "FakeEndpoints"]

# The ids the SDK can look up (its table of protobuf packages), minus TTS, which Yandex does not list.
SERVICE_IDS: tuple[str, ...] = (
    "ai-assistants",
    "ai-files",
    "ai-foundation-models",
    "ai-llm",
    "ai-stt-v3",
    "ai-translate",
    "ai-vision",
    "ai-vision-ocr",
    "endpoint",
    "iam",
    "operation",
    "searchapi",
)


class FakeEndpoints(ApiEndpointServiceServicer):
    def __init__(self, hub: Hub, *, list_tts: bool = False) -> None:
        self._hub = hub
        self.address = ""
        self.list_tts = list_tts

    def _endpoints(self) -> list[ApiEndpoint]:
        ids = SERVICE_IDS + (("ai-tts-v3",) if self.list_tts else ())
        return [ApiEndpoint(id=service_id, address=self.address) for service_id in ids]

    async def List(
        self, request: ListApiEndpointsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ListApiEndpointsResponse:
        with self._hub.record("/yandex.cloud.endpoint.ApiEndpointService/List", context) as call:
            call.requests.append(request)
            return ListApiEndpointsResponse(endpoints=self._endpoints())

    async def Get(
        self, request: GetApiEndpointRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ApiEndpoint:
        with self._hub.record("/yandex.cloud.endpoint.ApiEndpointService/Get", context) as call:
            call.requests.append(request)
            for endpoint in self._endpoints():
                if endpoint.id == request.api_endpoint_id:
                    return endpoint
            await self._hub.abort(
                call, context, grpc.StatusCode.NOT_FOUND, f"Api endpoint {request.api_endpoint_id} not found"
            )
