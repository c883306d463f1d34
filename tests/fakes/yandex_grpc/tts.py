"""SpeechKit text-to-speech v3: ``speechkit.tts.v3.Synthesizer/UtteranceSynthesis`` (server streaming).

The SDK's ``text_to_speech(...).run(text)`` sends one request and joins the audio of every response.
The fake answers real audio: Ogg/Opus silence for the ``OGG_OPUS`` container (what Telegram plays as a
voice message), WAV (the service's default) or raw 16-bit PCM, split over several responses.

What it enforces, as SpeechKit does: credentials (and ``x-folder-id`` for a user's IAM token); 40
requests per second; non-empty text of at most 250 characters, or 5,000 with ``unsafe_mode`` (SpeechKit's
v3 limits); a known voice. MP3 output is not implemented by the fake (UNIMPLEMENTED, so a test that needs
it fails loudly instead of passing on wrong bytes).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
from yandex.cloud.ai.tts.v3 import tts_pb2
from yandex.cloud.ai.tts.v3.tts_service_pb2_grpc import SynthesizerServicer

from tests.fakes.yandex_grpc.common import Call, Failure, Hub, RateQuota
from tests.fakes.yandex_grpc.media import ogg_opus_silence, wav_silence

__all__ = ["MAX_TEXT", "MAX_TEXT_UNSAFE", "VOICES", "FakeSynthesizer"]

MAX_TEXT = 250
MAX_TEXT_UNSAFE = 5000
VOICES = frozenset(
    [
        "alena",
        "filipp",
        "ermil",
        "jane",
        "madirus",
        "omazh",
        "zahar",
        "dasha",
        "julia",
        "lera",
        "masha",
        "marina",
        "alexander",
        "kirill",
        "anton",
        "john",
        "lea",
        "naomi",
        "amira",
        "madi",
        "nigora",
        "saule",
        "zhanar",
        "yulduz",
    ]
)
_MS_PER_CHARACTER = 60
_CHUNK_BYTES = 1024  # small, so that even short answers come in several responses, as long ones do


class FakeSynthesizer(SynthesizerServicer):
    METHOD = "/speechkit.tts.v3.Synthesizer/UtteranceSynthesis"

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.quota = RateQuota(40, 1.0, hub.clock)
        self.failures: deque[Failure] = deque()
        self.delay = 0.0  # seconds before the first audio chunk

    def fail_next(self, failure: Failure) -> None:
        self.failures.append(failure)

    @property
    def calls(self) -> list[Call]:
        return self._hub.calls_to("UtteranceSynthesis")

    async def UtteranceSynthesis(
        self, request: tts_pb2.UtteranceSynthesisRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[tts_pb2.UtteranceSynthesisResponse]:
        with self._hub.record(self.METHOD, context) as call:
            call.requests.append(request)
            await self._hub.authenticate(call, context, speechkit=True)
            if not self.quota.take():
                await self._hub.abort(
                    call,
                    context,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "Quota exceeded: tts requests per second",
                )
            if self.failures:
                await self._hub.fail(call, context, self.failures.popleft())
            await self._validate(call, context, request)
            audio = self._audio(request)
            if audio is None:
                await self._hub.abort(
                    call,
                    context,
                    grpc.StatusCode.UNIMPLEMENTED,
                    "this output format is not implemented by the fake",
                )
            if self.delay:
                await asyncio.sleep(self.delay)
            duration = _MS_PER_CHARACTER * len(request.text)
            pieces = [audio[i : i + _CHUNK_BYTES] for i in range(0, len(audio), _CHUNK_BYTES)]
            for index, piece in enumerate(pieces):
                yield tts_pb2.UtteranceSynthesisResponse(
                    audio_chunk=tts_pb2.AudioChunk(data=piece),
                    text_chunk=tts_pb2.TextChunk(text=request.text if index == 0 else ""),
                    start_ms=duration * index // len(pieces),
                    length_ms=duration // len(pieces),
                )

    async def _validate(
        self,
        call: Call,
        context: grpc.aio.ServicerContext[Any, Any],
        request: tts_pb2.UtteranceSynthesisRequest,
    ) -> None:
        if request.WhichOneof("Utterance") != "text" or not request.text.strip():
            await self._hub.abort(call, context, grpc.StatusCode.INVALID_ARGUMENT, "Text is empty")
        limit = MAX_TEXT_UNSAFE if request.unsafe_mode else MAX_TEXT
        if len(request.text) > limit:
            await self._hub.abort(
                call, context, grpc.StatusCode.INVALID_ARGUMENT, f"Text is too long: over {limit} characters"
            )
        for hint in request.hints:
            if hint.WhichOneof("Hint") == "voice" and hint.voice not in VOICES:
                await self._hub.abort(
                    call, context, grpc.StatusCode.INVALID_ARGUMENT, f"Unknown voice {hint.voice}"
                )

    @staticmethod
    def _audio(request: tts_pb2.UtteranceSynthesisRequest) -> bytes | None:
        duration = _MS_PER_CHARACTER * len(request.text)
        spec = request.output_audio_spec
        kind = spec.WhichOneof("AudioFormat")
        if kind == "raw_audio":
            rate = spec.raw_audio.sample_rate_hertz or 22050
            return b"\x00\x00" * (rate * duration // 1000)
        container = spec.container_audio.container_audio_type if kind == "container_audio" else None
        if container == tts_pb2.ContainerAudio.OGG_OPUS:
            return ogg_opus_silence(duration)
        if container in (None, tts_pb2.ContainerAudio.WAV):
            return wav_silence(duration, rate=22050)
        return None
