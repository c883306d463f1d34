"""SpeechKit (bot.assistant.speech) through the real SDK against the gRPC fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from yandex.cloud.ai.stt.v3 import stt_pb2
from yandex.cloud.ai.tts.v3 import tts_pb2
from yandex_ai_studio_sdk import AsyncAIStudio
from yandex_ai_studio_sdk.auth import APIKeyAuth, IAMTokenAuth

from bot.assistant.speech import (
    MAX_AUDIO_BYTES,
    MAX_SPEECH_TEXT,
    AudioFormat,
    SpeechError,
    SpeechErrorKind,
    SpeechKit,
    audio_format_for_mime,
    recognition_language,
)
from bot.assistant.yandex_sdk import build_sdk
from tests.fakes.yandex_grpc import (
    Call,
    EmptyRecognition,
    Failure,
    FakeYandexGrpc,
    Transcript,
    mp3_silence,
    ogg_opus_silence,
    parse_ogg,
    wav_silence,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeYandexGrpc]:
    async with FakeYandexGrpc() as server:
        yield server


def make_sdk(fake: FakeYandexGrpc, api_key: str | None = None) -> AsyncAIStudio:
    auth = APIKeyAuth(api_key or fake.credentials.api_key)
    return build_sdk(fake.credentials.folder_id, auth, endpoint=fake.address, insecure=True)


@pytest.fixture
def speech(fake: FakeYandexGrpc) -> SpeechKit:
    return SpeechKit(make_sdk(fake), timeout=5)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - the fake's call record has no event to wait on
            await asyncio.sleep(0.01)


def options(call: Call) -> stt_pb2.RecognitionModelOptions:
    return call.request.session_options.recognition_model


# --- recognition --------------------------------------------------------------------------------------


async def test_a_voice_note_becomes_its_normalised_transcript(
    fake: FakeYandexGrpc, speech: SpeechKit
) -> None:
    voice = ogg_opus_silence(1200)
    fake.stt.script(voice, Transcript("Привет, мир!", "Как дела?"))

    assert await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS) == "Привет, мир! Как дела?"

    (call,) = fake.stt.calls
    model = options(call)
    assert model.audio_format.container_audio.container_audio_type == stt_pb2.ContainerAudio.OGG_OPUS
    assert list(model.language_restriction.language_code) == ["auto"]  # SpeechKit would assume Russian
    assert (
        model.text_normalization.text_normalization
        == stt_pb2.TextNormalizationOptions.TEXT_NORMALIZATION_ENABLED
    )
    assert model.audio_processing_type == stt_pb2.RecognitionModelOptions.FULL_DATA
    assert call.metadata["x-data-logging-enabled"] == "false"


async def test_without_normalization_the_words_come_raw(fake: FakeYandexGrpc) -> None:
    voice = ogg_opus_silence(800)
    fake.stt.script(voice, Transcript("Привет, мир!"))
    speech = SpeechKit(make_sdk(fake), normalize=False)
    assert await speech.recognize(voice, audio_format="OGG_OPUS") == "привет мир"


@pytest.mark.parametrize(
    ("language", "sent"), [("ru", "ru-RU"), ("en-us", "en-US"), ("pt_BR", "pt-BR"), ("auto", "auto")]
)
async def test_a_given_language_is_sent(
    fake: FakeYandexGrpc, speech: SpeechKit, language: str, sent: str
) -> None:
    voice = ogg_opus_silence(400)
    fake.stt.script(voice, Transcript("Hello."))
    assert await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS, language=language) == "Hello."
    assert list(options(fake.stt.calls[0]).language_restriction.language_code) == [sent]


@pytest.mark.parametrize("language", ["uk", "xx-YY", "russian", ""])
async def test_a_language_speechkit_cannot_recognise_is_refused_before_any_call(
    fake: FakeYandexGrpc, speech: SpeechKit, language: str
) -> None:
    with pytest.raises(ValueError, match="cannot recognise"):
        await speech.recognize(ogg_opus_silence(), audio_format=AudioFormat.OGG_OPUS, language=language)
    assert fake.calls == []


def test_recognition_language() -> None:
    assert recognition_language(None) == "auto"
    assert recognition_language("RU") == "ru-RU"
    assert recognition_language("kk-kz") == "kk-KZ"


@pytest.mark.parametrize(
    ("audio", "mime_type", "container"),
    [
        (mp3_silence(), "audio/mpeg", stt_pb2.ContainerAudio.MP3),
        (wav_silence(), "audio/x-wav", stt_pb2.ContainerAudio.WAV),
        (ogg_opus_silence(), "audio/ogg; codecs=opus", stt_pb2.ContainerAudio.OGG_OPUS),
    ],
)
async def test_audio_files_are_recognised_in_the_format_of_their_mime_type(
    fake: FakeYandexGrpc, speech: SpeechKit, audio: bytes, mime_type: str, container: int
) -> None:
    fake.stt.script(audio, Transcript("Раз, два."))
    assert await speech.recognize(audio, audio_format=audio_format_for_mime(mime_type)) == "Раз, два."
    assert options(fake.stt.calls[0]).audio_format.container_audio.container_audio_type == container


@pytest.mark.parametrize(
    ("mime_type", "audio_format"),
    [
        ("audio/ogg", AudioFormat.OGG_OPUS),
        ("audio/opus", AudioFormat.OGG_OPUS),
        ("AUDIO/OGG;codecs=opus", AudioFormat.OGG_OPUS),
        ("audio/mpeg", AudioFormat.MP3),
        ("audio/mp3", AudioFormat.MP3),
        ("audio/wav", AudioFormat.WAV),
        ("audio/x-wav", AudioFormat.WAV),
        ("audio/wave", AudioFormat.WAV),
    ],
)
def test_mime_types(mime_type: str, audio_format: AudioFormat) -> None:
    assert audio_format_for_mime(mime_type) is audio_format


@pytest.mark.parametrize(
    "mime_type", ["audio/aac", "audio/mp4", "audio/x-m4a", "video/ogg", "audio/flac", ""]
)
def test_other_mime_types_are_unsupported(mime_type: str) -> None:
    with pytest.raises(SpeechError) as caught:
        audio_format_for_mime(mime_type)
    assert caught.value.kind is SpeechErrorKind.UNSUPPORTED_AUDIO
    assert "voice message, MP3 or WAV" in str(caught.value)


async def test_long_audio_goes_in_bounded_chunks(fake: FakeYandexGrpc, speech: SpeechKit) -> None:
    audio = wav_silence(25_000)  # 800 kB
    fake.stt.script(audio, Transcript("Тишина."))
    assert await speech.recognize(audio, audio_format=AudioFormat.WAV) == "Тишина."
    chunks = [request.chunk.data for request in fake.stt.calls[0].requests[1:]]
    assert len(chunks) == 4
    assert max(map(len, chunks)) <= 256 * 1024
    assert b"".join(chunks) == audio


@pytest.mark.parametrize("style", ["no_alternatives", "partials_only", "status_only"])
async def test_audio_without_words_gives_an_empty_transcript(
    fake: FakeYandexGrpc, speech: SpeechKit, style: str
) -> None:
    voice = ogg_opus_silence(600)
    fake.stt.script(voice, EmptyRecognition(style))  # type: ignore[arg-type]
    assert await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS) == ""


async def test_an_iam_token_of_a_user_works_because_the_folder_header_is_sent(fake: FakeYandexGrpc) -> None:
    sdk = build_sdk(
        fake.credentials.folder_id,
        IAMTokenAuth(fake.credentials.iam_token),
        endpoint=fake.address,
        insecure=True,
    )
    voice = ogg_opus_silence(400)
    fake.stt.script(voice, Transcript("Да."))
    assert await SpeechKit(sdk).recognize(voice, audio_format=AudioFormat.OGG_OPUS) == "Да."
    assert fake.stt.calls[0].metadata["x-folder-id"] == fake.credentials.folder_id


# --- recognition failures -----------------------------------------------------------------------------


async def test_empty_or_oversized_audio_is_refused_before_any_call(
    fake: FakeYandexGrpc, speech: SpeechKit
) -> None:
    with pytest.raises(SpeechError) as empty:
        await speech.recognize(b"", audio_format=AudioFormat.OGG_OPUS)
    with pytest.raises(SpeechError) as oversized:
        await speech.recognize(bytes(MAX_AUDIO_BYTES + 1), audio_format=AudioFormat.WAV)
    assert (empty.value.kind, oversized.value.kind) == (
        SpeechErrorKind.BAD_AUDIO,
        SpeechErrorKind.AUDIO_TOO_LONG,
    )
    assert fake.calls == []


async def test_a_recording_over_5_minutes_is_refused_before_any_call_when_its_duration_is_known(
    fake: FakeYandexGrpc, speech: SpeechKit
) -> None:
    voice = ogg_opus_silence(300_020)
    with pytest.raises(SpeechError) as caught:
        await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS, duration=300.02)
    assert caught.value.kind is SpeechErrorKind.AUDIO_TOO_LONG
    assert fake.calls == []
    fake.stt.script(voice, Transcript("Долго."))
    with pytest.raises(SpeechError) as caught:  # SpeechKit itself refuses it too
        await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS)
    assert caught.value.kind is SpeechErrorKind.BAD_AUDIO
    assert "5 minutes" in caught.value.detail


async def test_a_recording_of_5_minutes_is_recognised(fake: FakeYandexGrpc, speech: SpeechKit) -> None:
    voice = ogg_opus_silence(300_000)
    fake.stt.script(voice, Transcript("Ровно пять минут."))
    assert (
        await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS, duration=300) == "Ровно пять минут."
    )


async def test_a_wrong_key_is_an_auth_error_that_reveals_nothing(fake: FakeYandexGrpc) -> None:
    fake.stt.read_all_before_rejecting = True  # see the next test
    speech = SpeechKit(make_sdk(fake, api_key="AQVN-leaked-secret"))
    with pytest.raises(SpeechError) as caught:
        await speech.recognize(ogg_opus_silence(), audio_format=AudioFormat.OGG_OPUS)
    error = caught.value
    assert error.kind is SpeechErrorKind.AUTH
    assert fake.stt.calls[0].details == "Unknown api key 'AQVN-leaked-secret'"  # the server did echo it
    for text in (str(error), repr(error), error.detail):
        assert "AQVN" not in text
    assert "Unknown api key" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__


async def test_an_early_rejection_is_auth_or_unavailable_and_reveals_nothing(fake: FakeYandexGrpc) -> None:
    # Without reading the session first, the rejection races grpcio's aio client (grpc/grpc#36066),
    # which may report INTERNAL; the user is then told the service is not responding.
    speech = SpeechKit(make_sdk(fake, api_key="AQVN-leaked-secret"))
    for _ in range(5):
        with pytest.raises(SpeechError) as caught:
            await speech.recognize(ogg_opus_silence(2000), audio_format=AudioFormat.OGG_OPUS)
        assert caught.value.kind in (SpeechErrorKind.AUTH, SpeechErrorKind.UNAVAILABLE)
        assert "AQVN" not in caught.value.detail + str(caught.value)


async def test_an_expired_token_is_an_auth_error(fake: FakeYandexGrpc) -> None:
    fake.stt.read_all_before_rejecting = True
    fake.credentials.iam_token_expired = True
    sdk = build_sdk(
        fake.credentials.folder_id,
        IAMTokenAuth(fake.credentials.iam_token),
        endpoint=fake.address,
        insecure=True,
    )
    with pytest.raises(SpeechError) as caught:
        await SpeechKit(sdk).recognize(ogg_opus_silence(), audio_format=AudioFormat.OGG_OPUS)
    assert caught.value.kind is SpeechErrorKind.AUTH


async def test_a_spent_quota_is_a_quota_error_and_is_not_retried(
    fake: FakeYandexGrpc, speech: SpeechKit
) -> None:
    fake.stt.read_all_before_rejecting = True
    fake.stt.quota.limit = 1
    voice = ogg_opus_silence()
    fake.stt.script(voice, Transcript("Да."))
    await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS)
    with pytest.raises(SpeechError) as caught:
        await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS)
    assert caught.value.kind is SpeechErrorKind.QUOTA
    assert "RESOURCE_EXHAUSTED" in caught.value.detail
    assert len(fake.stt.calls) == 2


async def test_undecodable_audio_is_a_bad_audio_error(fake: FakeYandexGrpc, speech: SpeechKit) -> None:
    with pytest.raises(SpeechError) as caught:
        await speech.recognize(wav_silence(), audio_format=AudioFormat.OGG_OPUS)
    assert caught.value.kind is SpeechErrorKind.BAD_AUDIO
    assert caught.value.detail.startswith("INVALID_ARGUMENT: Invalid audio")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, SpeechErrorKind.UNAVAILABLE),
        (grpc.StatusCode.INTERNAL, SpeechErrorKind.UNAVAILABLE),
        (grpc.StatusCode.UNKNOWN, SpeechErrorKind.UNAVAILABLE),
        (grpc.StatusCode.PERMISSION_DENIED, SpeechErrorKind.AUTH),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, SpeechErrorKind.QUOTA),
        (grpc.StatusCode.DEADLINE_EXCEEDED, SpeechErrorKind.TIMEOUT),
        (grpc.StatusCode.INVALID_ARGUMENT, SpeechErrorKind.BAD_AUDIO),
    ],
)
async def test_server_failures_map_to_kinds(
    fake: FakeYandexGrpc, speech: SpeechKit, code: grpc.StatusCode, kind: SpeechErrorKind
) -> None:
    voice = ogg_opus_silence()
    fake.stt.script(voice, Failure(code, "internal details: host stt-17, trace 0xdead"))
    with pytest.raises(SpeechError) as caught:
        await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS)
    assert caught.value.kind is kind
    assert "stt-17" not in str(caught.value)


async def test_a_slow_recognition_times_out_and_the_server_sees_the_call_end(fake: FakeYandexGrpc) -> None:
    voice = ogg_opus_silence()
    fake.stt.script(voice, Transcript("Поздно.", delay=3))
    speech = SpeechKit(make_sdk(fake), timeout=0.3)
    started = asyncio.get_running_loop().time()
    with pytest.raises(SpeechError) as caught:
        await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS)
    assert caught.value.kind is SpeechErrorKind.TIMEOUT
    assert asyncio.get_running_loop().time() - started < 1.0
    await wait_for(lambda: fake.stt.calls[0].status is not None)
    assert fake.stt.calls[0].cancelled


async def test_a_call_timeout_overrides_the_default(fake: FakeYandexGrpc, speech: SpeechKit) -> None:
    voice = ogg_opus_silence()
    fake.stt.script(voice, Transcript("Поздно.", delay=3))
    with pytest.raises(SpeechError) as caught:
        await speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS, timeout=0.2)
    assert caught.value.kind is SpeechErrorKind.TIMEOUT


async def test_cancelling_a_recognition_stops_it_at_once(fake: FakeYandexGrpc, speech: SpeechKit) -> None:
    voice = ogg_opus_silence()
    fake.stt.script(voice, Transcript("Никогда.", delay=5))
    task = asyncio.create_task(speech.recognize(voice, audio_format=AudioFormat.OGG_OPUS))
    await wait_for(lambda: len(fake.stt.calls) == 1 and len(fake.stt.calls[0].requests) == 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(0.5):
            await task
    await wait_for(lambda: fake.stt.calls[0].cancelled)


async def test_a_dead_endpoint_is_unavailable() -> None:
    fake = FakeYandexGrpc()
    address = await fake.start()
    await fake.stop()  # nothing listens there any more
    sdk = build_sdk("b1gtestfolder", APIKeyAuth("test-api-key"), endpoint=address, insecure=True)
    with pytest.raises(SpeechError) as caught:
        await SpeechKit(sdk, timeout=10).recognize(ogg_opus_silence(), audio_format=AudioFormat.OGG_OPUS)
    assert caught.value.kind is SpeechErrorKind.UNAVAILABLE


# --- synthesis ----------------------------------------------------------------------------------------


async def test_an_answer_becomes_an_ogg_opus_voice_message(fake: FakeYandexGrpc, speech: SpeechKit) -> None:
    audio = await speech.synthesize("Привет! Чем могу помочь?")

    assert audio.startswith(b"OggS")
    assert parse_ogg(audio)[0].packets_data.startswith(b"OpusHead")
    (call,) = fake.tts.calls
    spec = call.request.output_audio_spec
    assert spec.container_audio.container_audio_type == tts_pb2.ContainerAudio.OGG_OPUS
    assert call.request.text == "Привет! Чем могу помочь?"
    assert [hint.WhichOneof("Hint") for hint in call.request.hints] == []  # the service's default voice
    assert call.request.unsafe_mode  # so that up to 5,000 characters are accepted


async def test_a_voice_can_be_chosen(fake: FakeYandexGrpc) -> None:
    speech = SpeechKit(make_sdk(fake), default_voice="alena")
    await speech.synthesize("Привет")
    await speech.synthesize("Hello", voice="john")
    assert [call.request.hints[0].voice for call in fake.tts.calls] == ["alena", "john"]


async def test_the_longest_text_is_spoken_and_a_longer_one_refused_before_any_call(
    fake: FakeYandexGrpc, speech: SpeechKit
) -> None:
    assert (await speech.synthesize("а" * MAX_SPEECH_TEXT)).startswith(b"OggS")
    with pytest.raises(SpeechError) as caught:
        await speech.synthesize("а" * (MAX_SPEECH_TEXT + 1))
    assert caught.value.kind is SpeechErrorKind.TEXT_TOO_LONG
    assert len(fake.tts.calls) == 1


async def test_empty_text_is_refused_before_any_call(fake: FakeYandexGrpc, speech: SpeechKit) -> None:
    with pytest.raises(SpeechError) as caught:
        await speech.synthesize(" \n ")
    assert caught.value.kind is SpeechErrorKind.BAD_TEXT
    assert fake.calls == []


async def test_an_unknown_voice_is_a_bad_text_error(speech: SpeechKit) -> None:
    with pytest.raises(SpeechError) as caught:
        await speech.synthesize("Привет", voice="nobody")
    assert caught.value.kind is SpeechErrorKind.BAD_TEXT


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (Failure(grpc.StatusCode.UNAUTHENTICATED, "Unknown api key 'AQVN-x'"), SpeechErrorKind.AUTH),
        (Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota"), SpeechErrorKind.QUOTA),
        (Failure(grpc.StatusCode.INTERNAL, "boom"), SpeechErrorKind.UNAVAILABLE),
    ],
)
async def test_synthesis_failures_map_to_kinds(
    fake: FakeYandexGrpc, speech: SpeechKit, failure: Failure, kind: SpeechErrorKind
) -> None:
    fake.tts.fail_next(failure)
    with pytest.raises(SpeechError) as caught:
        await speech.synthesize("Привет")
    assert caught.value.kind is kind
    assert "AQVN" not in caught.value.detail


async def test_a_brief_unavailability_of_synthesis_is_retried(
    fake: FakeYandexGrpc, speech: SpeechKit
) -> None:
    fake.tts.fail_next(Failure(grpc.StatusCode.UNAVAILABLE, "restarting"))
    assert (await speech.synthesize("Привет")).startswith(b"OggS")
    assert [call.status for call in fake.tts.calls] == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK]


async def test_a_slow_synthesis_times_out(fake: FakeYandexGrpc) -> None:
    fake.tts.delay = 3
    speech = SpeechKit(make_sdk(fake), timeout=0.3)
    with pytest.raises(SpeechError) as caught:
        await speech.synthesize("Привет")
    assert caught.value.kind is SpeechErrorKind.TIMEOUT


async def test_streaming_calls_end_cleanly_in_the_channel(
    fake: FakeYandexGrpc, speech: SpeechKit, caplog: pytest.LogCaptureFixture
) -> None:
    # The SDK's retrying call cannot take done callbacks; grpc.aio's channel registers one on every call.
    # Unwrapped, each recognition and synthesis logged NotImplementedError from an asyncio callback.
    audio = ogg_opus_silence(400)
    fake.stt.script(audio, Transcript("Hello."))
    with caplog.at_level("ERROR"):
        for _ in range(3):
            assert await speech.recognize(audio, audio_format=AudioFormat.OGG_OPUS) == "Hello."
            assert (await speech.synthesize("Hello.")).startswith(b"OggS")
        await asyncio.sleep(0.1)
    assert not [record for record in caplog.records if "callback" in record.getMessage().lower()]
