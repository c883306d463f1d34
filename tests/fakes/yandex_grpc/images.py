"""YandexART: ``ImageGenerationAsyncService/Generate`` and the ``OperationService/Get`` that is polled.

``Generate`` answers at once with an operation that is not done; ``Get`` reports it not done until
:attr:`FakeImageGeneration.delay` seconds have passed, then done with an ``ImageGenerationResponse``
(a small valid JPEG) or with an error.

What it enforces, as Yandex documents: credentials; 500 requests a minute and 5,000 a day
(RESOURCE_EXHAUSTED, both configurable); a model URI ``art://<folder>/yandex-art[/<version>]`` of the
caller's folder; a prompt of 1..500 characters; ``image/jpeg`` (or unset) as MIME type; prompts with a
word from :attr:`FakeImageGeneration.forbidden_words` refused for the ethics guidelines (INVALID_ARGUMENT,
at ``Generate`` or, with ``refuse_in_operation``, as the operation's error). Unknown operation ids are
NOT_FOUND; ``Cancel`` is left UNIMPLEMENTED.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc.status_pb2 import Status
from yandex.cloud.ai.foundation_models.v1.image_generation.image_generation_service_pb2 import (
    ImageGenerationRequest,
    ImageGenerationResponse,
)
from yandex.cloud.ai.foundation_models.v1.image_generation.image_generation_service_pb2_grpc import (
    ImageGenerationAsyncServiceServicer,
)
from yandex.cloud.operation.operation_pb2 import Operation
from yandex.cloud.operation.operation_service_pb2 import GetOperationRequest
from yandex.cloud.operation.operation_service_pb2_grpc import OperationServiceServicer

from tests.fakes.yandex_grpc.common import Call, Failure, Hub, RateQuota
from tests.fakes.yandex_grpc.media import jpeg_gray_8x8

__all__ = ["ETHICS_REFUSAL", "MAX_PROMPT", "FakeImageGeneration", "FakeOperations", "ImageJob"]

MAX_PROMPT = 500
ETHICS_REFUSAL = (
    "it is not possible to generate an image from this request because it may violate the terms of use"
)


@dataclass
class ImageJob:
    """One generation the fake accepted: the request, when it was accepted, and how it will end."""

    operation_id: str
    request: ImageGenerationRequest
    accepted_at: float
    ready_after: float
    error: Failure | None = None


class FakeImageGeneration(ImageGenerationAsyncServiceServicer):
    METHOD = "/yandex.cloud.ai.foundation_models.v1.image_generation.ImageGenerationAsyncService/Generate"

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.delay = 0.3  # seconds an operation stays not done
        self.per_minute = RateQuota(500, 60.0, hub.clock)
        self.per_day = RateQuota(5000, 86400.0, hub.clock)
        self.forbidden_words: set[str] = {"forbidden"}
        self.refuse_in_operation = False
        self.image = jpeg_gray_8x8(200)
        self.model_version = "fake-art-1"
        self.generate_failures: deque[Failure] = deque()  # the Generate RPC itself fails
        self.operation_failures: deque[Failure] = deque()  # Generate succeeds, the operation ends in error
        self.jobs: dict[str, ImageJob] = {}

    @property
    def calls(self) -> list[Call]:
        return self._hub.calls_to("Generate")

    async def Generate(
        self, request: ImageGenerationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Operation:
        with self._hub.record(self.METHOD, context) as call:
            call.requests.append(request)
            await self._hub.authenticate(call, context)
            if not self.per_minute.take():
                await self._hub.abort(
                    call,
                    context,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "Quota limit ai.imageGenerationRequestsPerMinute.rate exceeded",
                )
            if not self.per_day.take():
                await self._hub.abort(
                    call,
                    context,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "Quota limit ai.imageGenerationRequestsPerDay.count exceeded",
                )
            if self.generate_failures:
                await self._hub.fail(call, context, self.generate_failures.popleft())
            await self._validate(call, context, request)
            error = self.operation_failures.popleft() if self.operation_failures else None
            if error is None and self.refuse_in_operation and self._forbidden(request):
                error = Failure(grpc.StatusCode.INVALID_ARGUMENT, ETHICS_REFUSAL)
            now = self._hub.clock()
            job = ImageJob(
                str(uuid.uuid4()), request, accepted_at=now, ready_after=now + self.delay, error=error
            )
            self.jobs[job.operation_id] = job
            return _operation(job, done=False)

    def _forbidden(self, request: ImageGenerationRequest) -> bool:
        words = {
            word.strip(".,!?;:").lower() for message in request.messages for word in message.text.split()
        }
        return bool(words & {word.lower() for word in self.forbidden_words})

    async def _validate(
        self, call: Call, context: grpc.aio.ServicerContext[Any, Any], request: ImageGenerationRequest
    ) -> None:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        scheme, _, path = request.model_uri.partition("://")
        parts = path.split("/")
        if scheme != "art" or len(parts) not in (2, 3) or not all(parts):
            await self._hub.abort(call, context, invalid, "invalid model_uri, Failed to parse model URI")
        folder, model = parts[0], parts[1]
        if folder != self._hub.credentials.folder_id:
            await self._hub.abort(
                call, context, invalid, "Specified folder ID does not match with service account"
            )
        if model != "yandex-art":
            await self._hub.abort(call, context, grpc.StatusCode.NOT_FOUND, f"Model {model} not found")
        if not request.messages or not any(message.text.strip() for message in request.messages):
            await self._hub.abort(call, context, invalid, "messages: text must not be empty")
        if sum(len(message.text) for message in request.messages) > MAX_PROMPT:
            await self._hub.abort(call, context, invalid, f"The prompt exceeds {MAX_PROMPT} characters")
        if request.generation_options.mime_type not in ("", "image/jpeg"):
            await self._hub.abort(call, context, invalid, "Unsupported mime type")
        if not self.refuse_in_operation and self._forbidden(request):
            await self._hub.abort(call, context, invalid, ETHICS_REFUSAL)


class FakeOperations(OperationServiceServicer):
    METHOD = "/yandex.cloud.operation.OperationService/Get"

    def __init__(self, hub: Hub, images: FakeImageGeneration) -> None:
        self._hub = hub
        self._images = images
        self.get_failures: deque[Failure] = deque()  # the Get RPC itself fails

    @property
    def calls(self) -> list[Call]:
        return self._hub.calls_to("Get")

    async def Get(
        self, request: GetOperationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Operation:
        with self._hub.record(self.METHOD, context) as call:
            call.requests.append(request)
            await self._hub.authenticate(call, context)
            if self.get_failures:
                await self._hub.fail(call, context, self.get_failures.popleft())
            job = self._images.jobs.get(request.operation_id)
            if job is None:
                await self._hub.abort(
                    call, context, grpc.StatusCode.NOT_FOUND, f"Operation {request.operation_id} not found"
                )
            if self._hub.clock() < job.ready_after:
                return _operation(job, done=False)
            return _operation(job, done=True, image=self._images.image, version=self._images.model_version)


def _operation(job: ImageJob, *, done: bool, image: bytes = b"", version: str = "") -> Operation:
    created = Timestamp()
    created.GetCurrentTime()
    operation = Operation(
        id=job.operation_id,
        description="Image generation",
        created_at=created,
        created_by="fake-yandex",
        modified_at=created,
        done=done,
    )
    if done and job.error is not None:
        operation.error.CopyFrom(Status(code=job.error.code.value[0], message=job.error.details))
    elif done:
        response = AnyProto()
        response.Pack(ImageGenerationResponse(image=image, model_version=version))
        operation.response.CopyFrom(response)
    return operation
