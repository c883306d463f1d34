"""YandexART (bot.assistant.images) through the real SDK against the gRPC fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from yandex_ai_studio_sdk.auth import APIKeyAuth, IAMTokenAuth

from bot.assistant.images import MAX_PROMPT_CHARS, ImageError, ImageErrorKind, ImageGenerator
from bot.assistant.yandex_sdk import build_sdk
from tests.fakes.yandex_grpc import Failure, FakeYandexGrpc


@pytest.fixture
async def fake() -> AsyncIterator[FakeYandexGrpc]:
    async with FakeYandexGrpc() as server:
        server.images.delay = 0.2
        yield server


def make_generator(fake: FakeYandexGrpc, *, api_key: str | None = None, **options: float) -> ImageGenerator:
    auth = APIKeyAuth(api_key or fake.credentials.api_key)
    sdk = build_sdk(fake.credentials.folder_id, auth, endpoint=fake.address, insecure=True)
    return ImageGenerator(sdk, **{"poll_interval": 0.05, "timeout": 5.0, **options})


@pytest.fixture
def images(fake: FakeYandexGrpc) -> ImageGenerator:
    return make_generator(fake)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - the fake's call record has no event to wait on
            await asyncio.sleep(0.01)


async def test_a_prompt_becomes_a_jpeg_once_the_operation_is_done(
    fake: FakeYandexGrpc, images: ImageGenerator
) -> None:
    image = await images.generate("  A red fox in the snow, watercolour  ")

    assert image == fake.images.image
    assert image[:2] == b"\xff\xd8" and image[-2:] == b"\xff\xd9"
    (generate,) = fake.images.calls
    assert [message.text for message in generate.request.messages] == ["A red fox in the snow, watercolour"]
    assert generate.request.model_uri == f"art://{fake.credentials.folder_id}/yandex-art/latest"
    polls = fake.operations.calls
    assert len(polls) >= 3  # not done for 0.2 s, polled every 0.05 s
    assert {poll.request.operation_id for poll in polls} == set(fake.images.jobs)
    assert generate.metadata["x-data-logging-enabled"] == "false"


async def test_an_iam_token_works_too(fake: FakeYandexGrpc) -> None:
    auth = IAMTokenAuth(fake.credentials.iam_token)
    sdk = build_sdk(fake.credentials.folder_id, auth, endpoint=fake.address, insecure=True)
    assert await ImageGenerator(sdk, poll_interval=0.05).generate("a cat") == fake.images.image


async def test_the_longest_prompt_is_drawn(fake: FakeYandexGrpc, images: ImageGenerator) -> None:
    await images.generate("a" * MAX_PROMPT_CHARS)
    assert len(fake.images.calls) == 1


async def test_a_longer_prompt_is_refused_before_any_call(
    fake: FakeYandexGrpc, images: ImageGenerator
) -> None:
    with pytest.raises(ImageError) as caught:
        await images.generate("a" * (MAX_PROMPT_CHARS + 1))
    assert caught.value.kind is ImageErrorKind.PROMPT_TOO_LONG
    assert "500" in str(caught.value)
    assert fake.calls == []  # not even endpoint discovery


async def test_an_empty_prompt_is_refused_before_any_call(
    fake: FakeYandexGrpc, images: ImageGenerator
) -> None:
    with pytest.raises(ImageError) as caught:
        await images.generate(" \n\t")
    assert caught.value.kind is ImageErrorKind.EMPTY_PROMPT
    assert fake.calls == []


@pytest.mark.parametrize("in_operation", [False, True])
async def test_a_prompt_against_the_guidelines_is_refused(
    fake: FakeYandexGrpc, images: ImageGenerator, in_operation: bool
) -> None:
    fake.images.refuse_in_operation = in_operation
    with pytest.raises(ImageError) as caught:
        await images.generate("something forbidden")
    assert caught.value.kind is ImageErrorKind.REFUSED
    assert "terms of use" not in str(caught.value)
    assert "terms of use" in caught.value.detail


async def test_a_spent_minute_quota_is_a_quota_error_and_is_not_retried(
    fake: FakeYandexGrpc, images: ImageGenerator
) -> None:
    fake.images.per_minute.limit = 2
    fake.images.delay = 0
    await images.generate("one")
    await images.generate("two")
    with pytest.raises(ImageError) as caught:
        await images.generate("three")
    assert caught.value.kind is ImageErrorKind.QUOTA
    assert "try again later" in str(caught.value)
    assert len(fake.images.calls) == 3  # a retry would only spend more of the quota


async def test_a_spent_daily_quota_is_a_quota_error(fake: FakeYandexGrpc, images: ImageGenerator) -> None:
    fake.images.per_day.limit = 0
    with pytest.raises(ImageError) as caught:
        await images.generate("a cat")
    assert caught.value.kind is ImageErrorKind.QUOTA


async def test_a_wrong_key_is_an_auth_error_that_reveals_nothing(fake: FakeYandexGrpc) -> None:
    images = make_generator(fake, api_key="AQVN-leaked-secret")
    with pytest.raises(ImageError) as caught:
        await images.generate("a cat")
    error = caught.value
    assert error.kind is ImageErrorKind.AUTH
    for text in (str(error), repr(error), error.detail):
        assert "AQVN" not in text


async def test_an_expired_token_is_an_auth_error(fake: FakeYandexGrpc) -> None:
    fake.credentials.iam_token_expired = True
    sdk = build_sdk(
        fake.credentials.folder_id,
        IAMTokenAuth(fake.credentials.iam_token),
        endpoint=fake.address,
        insecure=True,
    )
    with pytest.raises(ImageError) as caught:
        await ImageGenerator(sdk).generate("a cat")
    assert caught.value.kind is ImageErrorKind.AUTH


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (Failure(grpc.StatusCode.INTERNAL, "generation crashed"), ImageErrorKind.FAILED),
        (Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota"), ImageErrorKind.QUOTA),
        (Failure(grpc.StatusCode.INVALID_ARGUMENT, "guidelines"), ImageErrorKind.REFUSED),
        (Failure(grpc.StatusCode.PERMISSION_DENIED, "no role"), ImageErrorKind.AUTH),
    ],
)
async def test_an_operation_that_ends_in_error(
    fake: FakeYandexGrpc, images: ImageGenerator, failure: Failure, kind: ImageErrorKind
) -> None:
    fake.images.operation_failures.append(failure)
    with pytest.raises(ImageError) as caught:
        await images.generate("a cat")
    assert caught.value.kind is kind
    assert caught.value.detail.startswith("operation failed")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.INTERNAL, ImageErrorKind.UNAVAILABLE),
        (grpc.StatusCode.UNKNOWN, ImageErrorKind.UNAVAILABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ImageErrorKind.TIMEOUT),
    ],
)
async def test_a_failed_generate_call(
    fake: FakeYandexGrpc, images: ImageGenerator, code: grpc.StatusCode, kind: ImageErrorKind
) -> None:
    fake.images.generate_failures.append(Failure(code, "node llm-3 is down"))
    with pytest.raises(ImageError) as caught:
        await images.generate("a cat")
    assert caught.value.kind is kind
    assert "llm-3" not in str(caught.value)


async def test_a_brief_unavailability_while_polling_is_retried(
    fake: FakeYandexGrpc, images: ImageGenerator
) -> None:
    fake.operations.get_failures.append(Failure(grpc.StatusCode.UNAVAILABLE, "restarting"))
    assert await images.generate("a cat") == fake.images.image
    assert fake.operations.calls[0].status == grpc.StatusCode.UNAVAILABLE


async def test_a_slow_generation_times_out_and_stops_polling(fake: FakeYandexGrpc) -> None:
    fake.images.delay = 30
    images = make_generator(fake, timeout=0.5)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ImageError) as caught:
        await images.generate("a cat")
    assert caught.value.kind is ImageErrorKind.TIMEOUT
    assert asyncio.get_running_loop().time() - started < 1.0
    polls = len(fake.operations.calls)
    await asyncio.sleep(0.2)
    assert len(fake.operations.calls) == polls


async def test_a_call_timeout_overrides_the_default(fake: FakeYandexGrpc, images: ImageGenerator) -> None:
    fake.images.delay = 30
    with pytest.raises(ImageError) as caught:
        await images.generate("a cat", timeout=0.3)
    assert caught.value.kind is ImageErrorKind.TIMEOUT


async def test_cancelling_stops_waiting_at_once(fake: FakeYandexGrpc) -> None:
    fake.images.delay = 30
    images = make_generator(fake, poll_interval=1.0)  # cancelled in the middle of a pause between polls
    task = asyncio.create_task(images.generate("a cat"))
    await wait_for(lambda: len(fake.operations.calls) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(0.2):
            await task
    await asyncio.sleep(1.2)
    assert len(fake.operations.calls) == 1  # no poll after the cancel
