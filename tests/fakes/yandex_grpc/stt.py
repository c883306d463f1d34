"""SpeechKit speech-to-text v3: ``yandex.cloud.ai.stt.v3.Recognizer/RecognizeStreaming``.

The SDK's ``speech_to_text(...).run(audio)`` opens this bidirectional stream, sends the session options,
then the audio chunks, half-closes, and reads every response (``FULL_DATA`` processing). The fake reads
the whole stream, then answers what the test scripted for those exact audio bytes.

What it enforces, as SpeechKit does: credentials (and ``x-folder-id`` for a user's IAM token); a
requests-per-second quota (40 by default, SpeechKit's streaming quota); session options first, with a
known audio format and valid language codes; at most 10 MB and 5 minutes of audio per session
(SpeechKit's streaming limits; the length is read from Ogg granules or the WAV header); audio that
decodes as the declared container (Ogg pages with valid checksums carrying mono Opus, 16-bit mono WAV,
MPEG frames) — otherwise INVALID_ARGUMENT. The session's scripted reply is chosen by its audio bytes.

Responses follow SpeechKit's order per utterance: ``partial`` → ``final`` → ``final_refinement`` (only
when text normalization was asked for; the final itself is raw lowercase text without punctuation) →
``eou_update``, every event on channel ``"0"`` with one session UUID, framed by ``status_code`` events.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import grpc
import grpc.aio
from yandex.cloud.ai.stt.v3 import stt_pb2
from yandex.cloud.ai.stt.v3.stt_service_pb2_grpc import RecognizerServicer

from tests.fakes.yandex_grpc.common import Call, Failure, Hub, RateQuota
from tests.fakes.yandex_grpc.media import AudioProblem, audio_duration_ms, check_audio

__all__ = [
    "LANGUAGES",
    "MAX_SESSION_AUDIO_BYTES",
    "MAX_SESSION_AUDIO_MS",
    "EmptyRecognition",
    "FakeRecognizer",
    "Recognition",
    "Transcript",
]

MAX_SESSION_AUDIO_BYTES = 10 * 1024 * 1024
MAX_SESSION_AUDIO_MS = 5 * 60 * 1000
LANGUAGES = frozenset(
    [
        "auto",
        "de-DE",
        "en-US",
        "es-ES",
        "fi-FI",
        "fr-FR",
        "he-IL",
        "it-IT",
        "kk-KZ",
        "nl-NL",
        "pl-PL",
        "pt-PT",
        "pt-BR",
        "ru-RU",
        "sv-SE",
        "tr-TR",
        "uz-UZ",
    ]
)
_RAW_SAMPLE_RATES = frozenset({8000, 16000, 48000})
_CONTAINERS = {
    stt_pb2.ContainerAudio.WAV: "WAV",
    stt_pb2.ContainerAudio.OGG_OPUS: "OGG_OPUS",
    stt_pb2.ContainerAudio.MP3: "MP3",
}


@dataclass(frozen=True)
class Transcript:
    """Speech was recognised: one normalised text per utterance ("Привет, мир!").

    Without text normalization the client gets `raw` forms instead: lowercase, no punctuation.
    """

    utterances: tuple[str, ...]
    delay: float = 0.0

    def __init__(self, *utterances: str, delay: float = 0.0) -> None:
        object.__setattr__(self, "utterances", utterances)
        object.__setattr__(self, "delay", delay)


@dataclass(frozen=True)
class EmptyRecognition:
    """No words in the audio, in one of the shapes a recogniser can answer that with.

    ``no_alternatives``: a final with an empty list of hypotheses; ``partials_only``: empty partials and
    no final at all; ``status_only``: nothing but status events.
    """

    style: Literal["no_alternatives", "partials_only", "status_only"] = "no_alternatives"
    delay: float = 0.0


Recognition = Transcript | EmptyRecognition | Failure


def raw_text(text: str) -> str:
    """What the recogniser says before normalization: lowercase words, no punctuation."""
    return " ".join(re.sub(r"[^\w\s-]", " ", text.lower()).split())


@dataclass(frozen=True)
class _Session:
    options: stt_pb2.StreamingOptions
    audio: bytes


class FakeRecognizer(RecognizerServicer):
    METHOD = "/speechkit.stt.v3.Recognizer/RecognizeStreaming"

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.quota = RateQuota(40, 1.0, hub.clock)
        self.scripts: dict[bytes, Recognition] = {}
        self.default: Recognition = EmptyRecognition()
        # Like Yandex, the fake rejects a session (credentials, quota, options, size) as soon as it
        # knows, while the client may still be writing audio. grpcio's aio client can then report
        # INTERNAL "Internal error from Core" instead of the server's status (grpc/grpc#36066). A test
        # that needs the server's status to arrive sets this, and the fake reads the whole stream first.
        self.read_all_before_rejecting = False

    def script(self, audio: bytes, reply: Recognition) -> None:
        """Answer `reply` whenever a session sends exactly these audio bytes."""
        self.scripts[audio] = reply

    @property
    def calls(self) -> list[Call]:
        return self._hub.calls_to("RecognizeStreaming")

    async def RecognizeStreaming(
        self,
        request_iterator: AsyncIterator[stt_pb2.StreamingRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[stt_pb2.StreamingResponse]:
        with self._hub.record(self.METHOD, context) as call:
            problem = self._hub.credential_problem(call, speechkit=True)
            if problem is None and not self.quota.take():
                problem = Failure(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota exceeded: stt streaming requests"
                )
            if problem is not None:
                await self._reject(call, context, request_iterator, problem.code, problem.details)
            session = await self._read_session(call, context, request_iterator)
            reply = self.scripts.get(session.audio, self.default)
            if isinstance(reply, Failure):
                await self._hub.fail(call, context, reply)
            container = self._container(session.options)
            try:
                if container == "PCM":
                    if len(session.audio) % 2:
                        raise AudioProblem("odd number of bytes in 16-bit PCM")
                else:
                    check_audio(session.audio, container)
            except AudioProblem as undecodable:
                await self._hub.abort(
                    call, context, grpc.StatusCode.INVALID_ARGUMENT, f"Invalid audio: {undecodable}"
                )
            length = audio_duration_ms(session.audio, container)
            if length is not None and length > MAX_SESSION_AUDIO_MS:
                await self._hub.abort(
                    call, context, grpc.StatusCode.INVALID_ARGUMENT, "Audio duration exceeds 5 minutes"
                )
            if reply.delay:
                await asyncio.sleep(reply.delay)
            normalize = (
                session.options.recognition_model.text_normalization.text_normalization
                == stt_pb2.TextNormalizationOptions.TEXT_NORMALIZATION_ENABLED
            )
            for response in _responses(reply, normalize=normalize, audio_ms=_duration_ms(session)):
                yield response

    async def _read_session(
        self,
        call: Call,
        context: grpc.aio.ServicerContext[Any, Any],
        requests: AsyncIterator[stt_pb2.StreamingRequest],
    ) -> _Session:
        options: stt_pb2.StreamingOptions | None = None
        audio = bytearray()
        async for request in requests:
            call.requests.append(request)
            kind = request.WhichOneof("Event")
            if options is None:
                if kind != "session_options":
                    await self._reject(
                        call,
                        context,
                        requests,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "First message must be session options",
                    )
                options = request.session_options
                await self._check_options(call, context, requests, options)
            elif kind == "session_options":
                await self._reject(
                    call, context, requests, grpc.StatusCode.INVALID_ARGUMENT, "Session options sent twice"
                )
            elif kind == "chunk":
                audio.extend(request.chunk.data)
                if len(audio) > MAX_SESSION_AUDIO_BYTES:
                    await self._reject(
                        call,
                        context,
                        requests,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "Audio data exceeds 10 MB per session",
                    )
        if options is None:
            await self._reject(
                call, context, requests, grpc.StatusCode.INVALID_ARGUMENT, "No session options"
            )
        return _Session(options=options, audio=bytes(audio))

    async def _check_options(
        self,
        call: Call,
        context: grpc.aio.ServicerContext[Any, Any],
        requests: AsyncIterator[stt_pb2.StreamingRequest],
        options: stt_pb2.StreamingOptions,
    ) -> None:
        model = options.recognition_model
        try:
            self._container(options)
        except ValueError as error:
            await self._reject(call, context, requests, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        for code in model.language_restriction.language_code:
            if code not in LANGUAGES:
                await self._reject(
                    call,
                    context,
                    requests,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unsupported language code {code}",
                )
        if model.model not in ("", "general", "general:rc", "general:deprecated"):
            await self._reject(
                call, context, requests, grpc.StatusCode.INVALID_ARGUMENT, f"Unknown model {model.model}"
            )

    async def _reject(
        self,
        call: Call,
        context: grpc.aio.ServicerContext[Any, Any],
        requests: AsyncIterator[stt_pb2.StreamingRequest],
        code: grpc.StatusCode,
        details: str,
    ) -> NoReturn:
        if self.read_all_before_rejecting:
            async for request in requests:
                call.requests.append(request)
        await self._hub.abort(call, context, code, details)

    @staticmethod
    def _container(options: stt_pb2.StreamingOptions) -> str:
        audio_format = options.recognition_model.audio_format
        kind = audio_format.WhichOneof("AudioFormat")
        if kind == "container_audio":
            container = _CONTAINERS.get(audio_format.container_audio.container_audio_type)
            if container is None:
                raise ValueError("Audio container type is not specified")
            return container
        if kind == "raw_audio":
            raw = audio_format.raw_audio
            if raw.audio_encoding != stt_pb2.RawAudio.LINEAR16_PCM:
                raise ValueError("Raw audio encoding is not specified")
            if raw.sample_rate_hertz not in _RAW_SAMPLE_RATES:
                raise ValueError(f"Unsupported sample rate {raw.sample_rate_hertz}")
            if raw.audio_channel_count > 1:
                raise ValueError("Only one audio channel is supported")
            return "PCM"
        raise ValueError("Audio format is not specified")


def _duration_ms(session: _Session) -> int:
    # Only for plausible cursors and timings; nothing depends on the exact value.
    return max(100, len(session.audio) // 4)


def _responses(
    reply: Transcript | EmptyRecognition, *, normalize: bool, audio_ms: int
) -> list[stt_pb2.StreamingResponse]:
    session = stt_pb2.SessionUuid(uuid=str(uuid.uuid4()), user_request_id="")
    out: list[stt_pb2.StreamingResponse] = []

    def emit(**event: Any) -> None:
        out.append(
            stt_pb2.StreamingResponse(
                session_uuid=session,
                audio_cursors=stt_pb2.AudioCursors(received_data_ms=audio_ms, partial_time_ms=audio_ms),
                channel_tag="0",
                **event,
            )
        )

    def alternatives(text: str | None, start: int, end: int) -> stt_pb2.AlternativeUpdate:
        if text is None:
            return stt_pb2.AlternativeUpdate(alternatives=[], channel_tag="0")
        words = [stt_pb2.Word(text=word, start_time_ms=start, end_time_ms=end) for word in text.split()]
        alternative = stt_pb2.Alternative(words=words, text=text, start_time_ms=start, end_time_ms=end)
        return stt_pb2.AlternativeUpdate(alternatives=[alternative], channel_tag="0")

    emit(status_code=stt_pb2.StatusCode(code_type=stt_pb2.WORKING, message=""))
    if isinstance(reply, EmptyRecognition):
        if reply.style == "no_alternatives":
            emit(partial=alternatives(None, 0, 0))
            emit(final=alternatives(None, 0, audio_ms))
            emit(eou_update=stt_pb2.EouUpdate(time_ms=audio_ms))
        elif reply.style == "partials_only":
            emit(partial=alternatives(None, 0, 0))
            emit(partial=alternatives(None, 0, audio_ms))
    else:
        span = audio_ms // max(1, len(reply.utterances))
        for index, text in enumerate(reply.utterances):
            start, end = index * span, (index + 1) * span
            raw = raw_text(text)
            emit(partial=alternatives(raw.split(" ", 1)[0], start, end))
            emit(final=alternatives(raw, start, end))
            if normalize:
                emit(
                    final_refinement=stt_pb2.FinalRefinement(
                        final_index=index, normalized_text=alternatives(text, start, end)
                    )
                )
            emit(eou_update=stt_pb2.EouUpdate(time_ms=end))
    emit(status_code=stt_pb2.StatusCode(code_type=stt_pb2.CLOSED, message=""))
    return out
