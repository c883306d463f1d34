"""build_sdk (bot.assistant.yandex_sdk): the SDK pointed where the settings say, with the bot's headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from yandex_ai_studio_sdk.auth import APIKeyAuth

from bot.assistant.images import ImageError, ImageErrorKind, ImageGenerator
from bot.assistant.speech import AudioFormat, SpeechKit
from bot.assistant.yandex_sdk import DEFAULT_GRPC_ENDPOINT, build_sdk
from tests.fakes.yandex_grpc import Failure, FakeYandexGrpc, Transcript, ogg_opus_silence


@pytest.fixture
async def fake() -> AsyncIterator[FakeYandexGrpc]:
    async with FakeYandexGrpc() as server:
        server.images.delay = 0
        yield server


async def use_every_service(fake: FakeYandexGrpc, **options: bool) -> None:
    sdk = build_sdk(
        fake.credentials.folder_id,
        APIKeyAuth(fake.credentials.api_key),
        endpoint=fake.address,
        insecure=True,
        **options,
    )
    voice = ogg_opus_silence()
    fake.stt.script(voice, Transcript("Да."))
    await SpeechKit(sdk).recognize(voice, audio_format=AudioFormat.OGG_OPUS)
    await SpeechKit(sdk).synthesize("Да")
    await ImageGenerator(sdk, poll_interval=0.01).generate("a cat")


async def test_every_call_carries_the_folder_and_the_data_logging_choice(fake: FakeYandexGrpc) -> None:
    await use_every_service(fake)
    names = [call.name for call in fake.calls]
    assert names == ["List", "RecognizeStreaming", "UtteranceSynthesis", "Generate", "Get"]
    for call in fake.calls:
        assert call.metadata["x-folder-id"] == fake.credentials.folder_id
        assert call.metadata["x-data-logging-enabled"] == "false"


async def test_data_logging_can_be_allowed(fake: FakeYandexGrpc) -> None:
    await use_every_service(fake, data_logging=True)
    assert {call.metadata["x-data-logging-enabled"] for call in fake.calls} == {"true"}


async def test_tts_is_found_whether_or_not_discovery_lists_it() -> None:
    async with FakeYandexGrpc(list_tts_in_discovery=True) as fake:
        await use_every_service(fake)
    assert len(fake.tts.calls) == 1


async def test_sdk_environment_variables_do_not_steer_it(
    fake: FakeYandexGrpc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YC_API_ENDPOINT", "127.0.0.1:1")
    monkeypatch.setenv("YC_FOLDER_ID", "b1gfromenvironment")
    monkeypatch.setenv("YC_API_KEY", "key-from-environment")
    await use_every_service(fake)
    assert {call.metadata.get("authorization") for call in fake.calls[1:]} == {
        f"Api-Key {fake.credentials.api_key}"
    }
    assert fake.images.calls[0].request.model_uri.startswith(f"art://{fake.credentials.folder_id}/")


async def test_only_unavailable_is_retried(fake: FakeYandexGrpc) -> None:
    sdk = build_sdk(
        fake.credentials.folder_id, APIKeyAuth(fake.credentials.api_key), endpoint=fake.address, insecure=True
    )
    fake.images.generate_failures.extend(
        [Failure(grpc.StatusCode.UNAVAILABLE), Failure(grpc.StatusCode.RESOURCE_EXHAUSTED)]
    )
    with pytest.raises(ImageError) as caught:
        await ImageGenerator(sdk).generate("a cat")
    assert caught.value.kind is ImageErrorKind.QUOTA
    assert [call.status for call in fake.images.calls] == [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ]


async def test_unavailable_is_retried_at_most_twice(fake: FakeYandexGrpc) -> None:
    sdk = build_sdk(
        fake.credentials.folder_id, APIKeyAuth(fake.credentials.api_key), endpoint=fake.address, insecure=True
    )
    fake.images.generate_failures.extend([Failure(grpc.StatusCode.UNAVAILABLE)] * 4)
    with pytest.raises(ImageError) as caught:
        await ImageGenerator(sdk).generate("a cat")
    assert caught.value.kind is ImageErrorKind.UNAVAILABLE
    assert len(fake.images.calls) == 3


def test_an_insecure_channel_to_yandex_is_refused() -> None:
    with pytest.raises(ValueError, match="insecure"):
        build_sdk("b1gfolder", APIKeyAuth("key"), insecure=True)
    with pytest.raises(ValueError, match="insecure"):
        build_sdk("b1gfolder", APIKeyAuth("key"), endpoint=DEFAULT_GRPC_ENDPOINT, insecure=True)


def test_auth_must_be_an_sdk_auth_provider() -> None:
    with pytest.raises(TypeError, match="auth provider"):
        build_sdk("b1gfolder", "AQVN-plain-string")  # type: ignore[arg-type]


def test_a_folder_is_required() -> None:
    with pytest.raises(ValueError, match="folder"):
        build_sdk("", APIKeyAuth("key"))
