"""The gRPC fakes themselves: what they enforce, driven by the real SDK (or raw stubs) over real gRPC.

Some tests pin down SDK behaviour the bot's code is built around (discovery without TTS, the result
parser of ``run()``), so an SDK upgrade that changes it shows up here.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from yandex.cloud.ai.stt.v3 import stt_pb2
from yandex.cloud.ai.stt.v3.stt_service_pb2_grpc import RecognizerStub
from yandex.cloud.operation.operation_service_pb2 import GetOperationRequest
from yandex.cloud.operation.operation_service_pb2_grpc import OperationServiceStub
from yandex_ai_studio_sdk import AsyncAIStudio
from yandex_ai_studio_sdk.auth import APIKeyAuth, IAMTokenAuth
from yandex_ai_studio_sdk.exceptions import UnknownEndpointError
from yandex_ai_studio_sdk.retry import NoRetryPolicy

from tests.fakes.yandex_grpc import (
    ETHICS_REFUSAL,
    Credentials,
    EmptyRecognition,
    Failure,
    FakeYandexGrpc,
    Transcript,
    check_audio,
    jpeg_gray_8x8,
    mp3_silence,
    ogg_opus_silence,
    parse_ogg,
    wav_silence,
)
from tests.fakes.yandex_grpc.media import AudioProblem, audio_duration_ms


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeYandexGrpc]:
    async with FakeYandexGrpc() as server:
        yield server


def raw_sdk(fake: FakeYandexGrpc, auth: object | None = None, **options: object) -> AsyncAIStudio:
    """The SDK as it comes, without the bot's builder: no retries, so every RPC shows once."""
    return AsyncAIStudio(
        folder_id=fake.credentials.folder_id,
        auth=auth or APIKeyAuth(fake.credentials.api_key),  # type: ignore[arg-type]
        endpoint=fake.address,
        verify=False,
        retry_policy=NoRetryPolicy(),
        **options,  # type: ignore[arg-type]
    )


def stt(sdk: AsyncAIStudio, **options: object):  # type: ignore[no-untyped-def]
    return sdk.speechkit.speech_to_text(audio_format="OGG_OPUS", **options)  # type: ignore[arg-type]


# --- endpoint discovery -------------------------------------------------------------------------------


async def test_discovery_points_every_service_at_the_fake_and_needs_no_credentials(
    fake: FakeYandexGrpc,
) -> None:
    voice = ogg_opus_silence(300)
    fake.stt.script(voice, Transcript("Да."))
    await stt(raw_sdk(fake)).run(voice, timeout=5)
    await raw_sdk(fake).models.image_generation("yandex-art").run_deferred("a cat", timeout=5)

    (listing, *_) = fake.calls_to("List")
    assert "authorization" not in listing.metadata
    assert [call.name for call in fake.calls] == ["List", "RecognizeStreaming", "List", "Generate"]


async def test_discovery_lists_no_tts_like_yandex_so_the_bare_sdk_cannot_find_it(
    fake: FakeYandexGrpc,
) -> None:
    with pytest.raises(UnknownEndpointError):
        await raw_sdk(fake).speechkit.text_to_speech(audio_format="OGG_OPUS").run("Привет", timeout=5)
    assert fake.tts.calls == []


async def test_discovery_can_list_tts() -> None:
    async with FakeYandexGrpc(list_tts_in_discovery=True) as fake:
        result = (
            await raw_sdk(fake).speechkit.text_to_speech(audio_format="OGG_OPUS").run("Привет", timeout=5)
        )
    assert result.data.startswith(b"OggS")


# --- credentials --------------------------------------------------------------------------------------


async def test_a_wrong_api_key_is_unauthenticated(fake: FakeYandexGrpc) -> None:
    fake.stt.read_all_before_rejecting = True
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stt(raw_sdk(fake, APIKeyAuth("wrong-key"))).run(ogg_opus_silence(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert fake.stt.calls[0].metadata["authorization"] == "Api-Key wrong-key"


async def test_an_early_rejection_may_reach_the_client_as_an_internal_error(fake: FakeYandexGrpc) -> None:
    # The fake, like Yandex, ends a session with bad credentials before reading it. grpcio's aio client
    # (grpc/grpc#36066) may then fail its next write and report INTERNAL instead of the server's status.
    recognizer = stt(raw_sdk(fake, APIKeyAuth("wrong-key")))
    seen = set()
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await recognizer.run(ogg_opus_silence(2000), timeout=5)
        seen.add((caught.value.code(), caught.value.details()))
    assert seen <= {
        (grpc.StatusCode.UNAUTHENTICATED, "Unknown api key 'wrong-key'"),
        (grpc.StatusCode.INTERNAL, "Internal error from Core"),
    }
    assert {call.status for call in fake.stt.calls} == {grpc.StatusCode.UNAUTHENTICATED}


async def test_an_iam_token_of_a_user_needs_the_folder_header(fake: FakeYandexGrpc) -> None:
    fake.stt.read_all_before_rejecting = True
    sdk = raw_sdk(fake, IAMTokenAuth(fake.credentials.iam_token))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stt(sdk).run(ogg_opus_silence(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_service_account_token_needs_no_folder_header() -> None:
    async with FakeYandexGrpc(Credentials(user_account_token=False)) as fake:
        voice = ogg_opus_silence()
        fake.stt.script(voice, Transcript("Да."))
        result = await stt(raw_sdk(fake, IAMTokenAuth(fake.credentials.iam_token))).run(voice, timeout=5)
    assert result.text == "да"


async def test_an_expired_token_is_unauthenticated(fake: FakeYandexGrpc) -> None:
    fake.credentials.iam_token_expired = True
    model = raw_sdk(fake, IAMTokenAuth(fake.credentials.iam_token)).models.image_generation("yandex-art")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await model.run_deferred("a cat", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "The token has expired"


async def test_operations_need_credentials_too(fake: FakeYandexGrpc) -> None:
    operation = await raw_sdk(fake).models.image_generation("yandex-art").run_deferred("a cat", timeout=5)
    async with grpc.aio.insecure_channel(fake.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await OperationServiceStub(channel).Get(GetOperationRequest(operation_id=operation.id), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- speech to text -----------------------------------------------------------------------------------


async def test_recognition_records_the_session_options_and_the_audio(fake: FakeYandexGrpc) -> None:
    voice = ogg_opus_silence(500)
    fake.stt.script(voice, Transcript("Привет, мир!"))
    recognizer = stt(raw_sdk(fake), language_codes=["ru-RU"], text_normalization=True)
    result = await recognizer.run([voice[:100], voice[100:]], timeout=5)

    assert result.text == "Привет, мир!"
    (call,) = fake.stt.calls
    options = call.request.session_options.recognition_model
    assert options.audio_format.container_audio.container_audio_type == stt_pb2.ContainerAudio.OGG_OPUS
    assert list(options.language_restriction.language_code) == ["ru-RU"]
    assert options.audio_processing_type == stt_pb2.RecognitionModelOptions.FULL_DATA
    assert b"".join(r.chunk.data for r in call.requests[1:]) == voice


async def test_without_normalization_the_text_is_raw(fake: FakeYandexGrpc) -> None:
    voice = ogg_opus_silence(500)
    fake.stt.script(voice, Transcript("Привет, мир! Как дела?"))
    result = await stt(raw_sdk(fake)).run(voice, timeout=5)
    assert result.text == "привет мир как дела"


async def test_the_sdk_result_parser_breaks_on_a_final_without_hypotheses(fake: FakeYandexGrpc) -> None:
    # Why bot.assistant.speech reads the response stream itself instead of calling run().
    voice = ogg_opus_silence(500)
    fake.stt.script(voice, EmptyRecognition("no_alternatives"))
    with pytest.raises(AssertionError):
        await stt(raw_sdk(fake)).run(voice, timeout=5)


@pytest.mark.parametrize(
    ("audio", "audio_format"),
    [
        (b"definitely not audio", "OGG_OPUS"),
        (ogg_opus_silence()[:-5], "OGG_OPUS"),  # truncated last page
        (wav_silence(), "OGG_OPUS"),  # the declared container is not what was sent
        (wav_silence(channels=2), "WAV"),  # SpeechKit streams take one channel
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "WAV"),
        (b"ID3\x03\x00\x00\x00\x00\x00\x00not a frame", "MP3"),
    ],
)
async def test_undecodable_audio_is_an_invalid_argument(
    fake: FakeYandexGrpc, audio: bytes, audio_format: str
) -> None:
    recognizer = raw_sdk(fake).speechkit.speech_to_text(audio_format=audio_format)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await recognizer.run(audio, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("audio", "audio_format"),
    [
        (ogg_opus_silence(), "OGG_OPUS"),
        (wav_silence(), "WAV"),
        (mp3_silence(), "MP3"),
        (b"\x00" * 320, "PCM16(16000)"),
    ],
)
async def test_decodable_audio_is_recognised(fake: FakeYandexGrpc, audio: bytes, audio_format: str) -> None:
    fake.stt.script(audio, Transcript("Раз два."))
    result = await raw_sdk(fake).speechkit.speech_to_text(audio_format=audio_format).run(audio, timeout=5)
    assert result.text == "раз два"


async def test_scripted_failures_and_delays(fake: FakeYandexGrpc) -> None:
    voice = ogg_opus_silence()
    fake.stt.script(voice, Failure(grpc.StatusCode.INTERNAL, "boom", delay=0.2))
    started = asyncio.get_running_loop().time()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stt(raw_sdk(fake)).run(voice, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert asyncio.get_running_loop().time() - started >= 0.2


async def test_recognition_quota(fake: FakeYandexGrpc) -> None:
    fake.stt.read_all_before_rejecting = True
    fake.stt.quota.limit = 2
    voice = ogg_opus_silence()
    fake.stt.script(voice, Transcript("Да."))
    recognizer = stt(raw_sdk(fake))
    await recognizer.run(voice, timeout=5)
    await recognizer.run(voice, timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await recognizer.run(voice, timeout=5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def _raw_recognize(
    fake: FakeYandexGrpc, requests: list[stt_pb2.StreamingRequest]
) -> list[stt_pb2.StreamingResponse]:
    fake.stt.read_all_before_rejecting = True  # so that the rejection's status reaches the client
    async with grpc.aio.insecure_channel(fake.address) as channel:
        call = RecognizerStub(channel).RecognizeStreaming(
            iter(requests), metadata=[("authorization", f"Api-Key {fake.credentials.api_key}")], timeout=5
        )
        return [response async for response in call]


def _options(language: str = "auto") -> stt_pb2.StreamingRequest:
    audio_format = stt_pb2.AudioFormatOptions(
        container_audio=stt_pb2.ContainerAudio(container_audio_type=stt_pb2.ContainerAudio.OGG_OPUS)
    )
    model = stt_pb2.RecognitionModelOptions(
        audio_format=audio_format,
        language_restriction=stt_pb2.LanguageRestrictionOptions(language_code=[language]),
    )
    return stt_pb2.StreamingRequest(session_options=stt_pb2.StreamingOptions(recognition_model=model))


async def test_a_session_must_start_with_its_options(fake: FakeYandexGrpc) -> None:
    chunk = stt_pb2.StreamingRequest(chunk=stt_pb2.AudioChunk(data=ogg_opus_silence()))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _raw_recognize(fake, [chunk, _options()])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_session_takes_at_most_10_mb_of_audio(fake: FakeYandexGrpc) -> None:
    chunk = stt_pb2.StreamingRequest(chunk=stt_pb2.AudioChunk(data=bytes(1024 * 1024)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _raw_recognize(fake, [_options(), *[chunk] * 11])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10 MB" in (caught.value.details() or "")


async def test_an_unknown_language_is_an_invalid_argument(fake: FakeYandexGrpc) -> None:
    chunk = stt_pb2.StreamingRequest(chunk=stt_pb2.AudioChunk(data=ogg_opus_silence()))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _raw_recognize(fake, [_options("xx-XX"), chunk])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_responses_come_in_speechkit_order(fake: FakeYandexGrpc) -> None:
    voice = ogg_opus_silence()
    fake.stt.script(voice, Transcript("Один.", "Два."))
    options = _options()
    options.session_options.recognition_model.text_normalization.text_normalization = (
        stt_pb2.TextNormalizationOptions.TEXT_NORMALIZATION_ENABLED
    )
    chunk = stt_pb2.StreamingRequest(chunk=stt_pb2.AudioChunk(data=voice))
    responses = await _raw_recognize(fake, [options, chunk])

    events = [response.WhichOneof("Event") for response in responses]
    utterance = ["partial", "final", "final_refinement", "eou_update"]
    assert events == ["status_code", *utterance, *utterance, "status_code"]
    assert len({response.session_uuid.uuid for response in responses}) == 1
    assert {response.channel_tag for response in responses} == {"0"}


# --- text to speech -----------------------------------------------------------------------------------


def tts_sdk(fake: FakeYandexGrpc) -> AsyncAIStudio:
    return raw_sdk(fake, service_map={"ai-tts-v3": fake.address})


async def test_synthesis_answers_a_valid_ogg_opus_file_in_several_chunks(fake: FakeYandexGrpc) -> None:
    text = "Это довольно длинный ответ, который синтезатор разобьёт на несколько кусков. " * 3
    result = await tts_sdk(fake).speechkit.text_to_speech(audio_format="OGG_OPUS").run(text, timeout=5)

    assert len(result.chunks) > 1
    pages = parse_ogg(result.data)  # every page checksum verified
    assert pages[0].packets_data.startswith(b"OpusHead")
    assert pages[-1].header_type & 0x04  # end of stream
    assert fake.tts.calls[0].request.unsafe_mode is True  # the SDK's default


async def test_synthesis_defaults_to_wav(fake: FakeYandexGrpc) -> None:
    result = await tts_sdk(fake).speechkit.text_to_speech().run("Привет", timeout=5)
    check_audio(result.data, "WAV")


@pytest.mark.parametrize(("single_chunk", "limit"), [(True, 250), (False, 5000)])
async def test_synthesis_text_limits(fake: FakeYandexGrpc, single_chunk: bool, limit: int) -> None:
    tts = tts_sdk(fake).speechkit.text_to_speech(audio_format="OGG_OPUS", single_chunk_mode=single_chunk)
    await tts.run("а" * limit, timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tts.run("а" * (limit + 1), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_synthesis_of_an_unknown_voice_or_no_text_is_refused(fake: FakeYandexGrpc) -> None:
    sdk = tts_sdk(fake)
    for tts, text in (
        (sdk.speechkit.text_to_speech(voice="nobody"), "Привет"),
        (sdk.speechkit.text_to_speech(), " "),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tts.run(text, timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_synthesis_mp3_is_not_faked(fake: FakeYandexGrpc) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tts_sdk(fake).speechkit.text_to_speech(audio_format="MP3").run("Привет", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- image generation and operations ------------------------------------------------------------------


async def test_an_image_operation_is_not_done_until_its_delay_passed() -> None:
    clock = FakeClock()
    async with FakeYandexGrpc(clock=clock) as fake:
        fake.images.delay = 30
        operation = await raw_sdk(fake).models.image_generation("yandex-art").run_deferred("a cat", timeout=5)
        assert (await operation.get_status(timeout=5)).is_running
        clock.now += 30
        status = await operation.get_status(timeout=5)
        assert status.is_succeeded
        result = await operation.get_result(timeout=5)
    assert result.image_bytes == fake.images.image
    assert fake.images.calls[0].request.model_uri == f"art://{fake.credentials.folder_id}/yandex-art/latest"


async def test_image_quota_is_500_a_minute() -> None:
    clock = FakeClock()
    async with FakeYandexGrpc(clock=clock) as fake:
        model = raw_sdk(fake).models.image_generation("yandex-art")
        for _ in range(500):
            await model.run_deferred("a cat", timeout=5)
        clock.now += 59.9
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await model.run_deferred("a cat", timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "PerMinute" in (caught.value.details() or "")
        clock.now += 0.1
        await model.run_deferred("a cat", timeout=5)


async def test_image_quota_per_day() -> None:
    clock = FakeClock()
    async with FakeYandexGrpc(clock=clock) as fake:
        assert fake.images.per_day.limit == 5000  # Yandex's default; a smaller one keeps this test quick
        fake.images.per_day.limit = 3
        model = raw_sdk(fake).models.image_generation("yandex-art")
        for _ in range(3):
            await model.run_deferred("a cat", timeout=5)
            clock.now += 3600
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await model.run_deferred("a cat", timeout=5)
        assert "PerDay" in (caught.value.details() or "")
        clock.now += 86400 - 3 * 3600
        await model.run_deferred("a cat", timeout=5)


@pytest.mark.parametrize(
    ("prompt", "model_name", "code"),
    [
        ("a" * 501, "yandex-art", grpc.StatusCode.INVALID_ARGUMENT),
        ("  ", "yandex-art", grpc.StatusCode.INVALID_ARGUMENT),
        ("a forbidden cat", "yandex-art", grpc.StatusCode.INVALID_ARGUMENT),
        ("a cat", "art://b1gsomeoneelse/yandex-art/latest", grpc.StatusCode.INVALID_ARGUMENT),
        ("a cat", "no-such-model", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_image_requests_yandex_rejects(
    fake: FakeYandexGrpc, prompt: str, model_name: str, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw_sdk(fake).models.image_generation(model_name).run_deferred(prompt, timeout=5)
    assert caught.value.code() == code
    assert fake.images.jobs == {}


async def test_an_image_prompt_of_500_characters_is_accepted(fake: FakeYandexGrpc) -> None:
    await raw_sdk(fake).models.image_generation("yandex-art").run_deferred("a" * 500, timeout=5)
    assert len(fake.images.jobs) == 1


async def test_a_refusal_can_come_as_the_operation_error(fake: FakeYandexGrpc) -> None:
    fake.images.refuse_in_operation = True
    fake.images.delay = 0
    operation = (
        await raw_sdk(fake).models.image_generation("yandex-art").run_deferred("a forbidden cat", timeout=5)
    )
    status = await operation.get_status(timeout=5)
    assert status.is_failed
    assert status.error is not None
    assert (status.error.code, status.error.message) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        ETHICS_REFUSAL,
    )


async def test_an_unknown_operation_is_not_found(fake: FakeYandexGrpc) -> None:
    metadata = [("authorization", f"Api-Key {fake.credentials.api_key}")]
    async with grpc.aio.insecure_channel(fake.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await OperationServiceStub(channel).Get(
                GetOperationRequest(operation_id="no-such-operation"), metadata=metadata, timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


# --- media --------------------------------------------------------------------------------------------


def test_the_jpeg_is_a_baseline_8x8_grayscale_image() -> None:
    image = jpeg_gray_8x8(-300)
    assert image[:2] == b"\xff\xd8" and image[-2:] == b"\xff\xd9"
    frame = image.index(b"\xff\xc0")
    precision, height, width, components = struct.unpack_from(">BHHB", image, frame + 4)
    assert (precision, height, width, components) == (8, 8, 8, 1)


def test_ogg_checksums_catch_corruption() -> None:
    audio = bytearray(ogg_opus_silence(400))
    parse_ogg(bytes(audio))
    audio[-10] ^= 0xFF
    with pytest.raises(AudioProblem, match="checksum"):
        parse_ogg(bytes(audio))


def test_ogg_opus_silence_lasts_what_was_asked() -> None:
    pages = parse_ogg(ogg_opus_silence(1500))
    assert pages[-1].granule == 312 + 1500 // 20 * 960  # pre-skip + 48 kHz samples
    assert audio_duration_ms(ogg_opus_silence(1500), "OGG_OPUS") == 1500
    assert audio_duration_ms(wav_silence(2500), "WAV") == 2500
