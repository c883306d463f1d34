"""SpeechKit through the Yandex SDK: voice notes to text (STT v3) and answers to voice messages (TTS v3).

Failures come out as one exception, `SpeechError`, whose `kind` says what went wrong and whose message
can be shown to a user as is; server text goes only into `detail`, for logs.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Any

import grpc
import grpc.aio
from yandex.cloud.ai.stt.v3.stt_pb2 import AlternativeUpdate, StreamingResponse
from yandex_ai_studio_sdk import AsyncAIStudio
from yandex_ai_studio_sdk.exceptions import AIStudioError

from bot.assistant.sdk_errors import CREDENTIAL_CODES, rpc_detail

__all__ = [
    "MAX_AUDIO_BYTES",
    "MAX_AUDIO_SECONDS",
    "MAX_SPEECH_TEXT",
    "AudioFormat",
    "SpeechError",
    "SpeechErrorKind",
    "SpeechKit",
    "audio_format_for_mime",
    "recognition_language",
]

MAX_AUDIO_BYTES = 10 * 1024 * 1024
"""SpeechKit's streaming recognition takes at most 10 MB of audio per session..."""

MAX_AUDIO_SECONDS = 5 * 60
"""...and at most 5 minutes of it."""

MAX_SPEECH_TEXT = 5000
"""TTS v3 takes 5,000 characters per request in the "unsafe" mode the SDK uses by default (else 250)."""

# The SDK would send the whole voice note as one gRPC message; bounded chunks stay far below any
# server's message-size limit (gRPC's default is 4 MiB).
_CHUNK_BYTES = 256 * 1024


class AudioFormat(StrEnum):
    """Audio containers SpeechKit recognises; the values are the SDK's own names for them."""

    OGG_OPUS = "OGG_OPUS"  # Telegram voice notes
    MP3 = "MP3"
    WAV = "WAV"  # 16-bit linear PCM in a WAV container; the header carries the sample rate


_MIME_FORMATS = {
    "audio/ogg": AudioFormat.OGG_OPUS,  # Opus is assumed: other Ogg codecs are rejected by SpeechKit
    "audio/opus": AudioFormat.OGG_OPUS,
    "audio/mpeg": AudioFormat.MP3,
    "audio/mp3": AudioFormat.MP3,
    "audio/wav": AudioFormat.WAV,
    "audio/x-wav": AudioFormat.WAV,
    "audio/wave": AudioFormat.WAV,
    "audio/vnd.wave": AudioFormat.WAV,
}

# Language codes SpeechKit's recognition models know, with the region a bare code (as Telegram gives
# a user's language) stands for.
_LANGUAGES = {
    "de": "de-DE",
    "en": "en-US",
    "es": "es-ES",
    "fi": "fi-FI",
    "fr": "fr-FR",
    "he": "he-IL",
    "it": "it-IT",
    "kk": "kk-KZ",
    "nl": "nl-NL",
    "pl": "pl-PL",
    "pt": "pt-PT",
    "ru": "ru-RU",
    "sv": "sv-SE",
    "tr": "tr-TR",
    "uz": "uz-UZ",
}
_REGIONAL = frozenset(_LANGUAGES.values()) | {"pt-BR"}


class SpeechErrorKind(StrEnum):
    AUTH = "auth"
    QUOTA = "quota"
    BAD_AUDIO = "bad_audio"
    UNSUPPORTED_AUDIO = "unsupported_audio"
    AUDIO_TOO_LONG = "audio_too_long"
    BAD_TEXT = "bad_text"
    TEXT_TOO_LONG = "text_too_long"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"


_MESSAGES = {
    SpeechErrorKind.AUTH: "The speech service is not available to this bot right now.",
    SpeechErrorKind.QUOTA: "The speech service is busy right now. Please try again in a minute.",
    SpeechErrorKind.BAD_AUDIO: "I couldn't make out this audio. Please try recording it again.",
    SpeechErrorKind.UNSUPPORTED_AUDIO: (
        "I can't take this audio format: please send a voice message, MP3 or WAV."
    ),
    SpeechErrorKind.AUDIO_TOO_LONG: "This recording is too long for me: 5 minutes at most, please.",
    SpeechErrorKind.BAD_TEXT: "I couldn't read this text aloud.",
    SpeechErrorKind.TEXT_TOO_LONG: "This text is too long to read aloud.",
    SpeechErrorKind.UNAVAILABLE: "The speech service is not responding. Please try again later.",
    SpeechErrorKind.TIMEOUT: "The speech service took too long to answer. Please try again.",
}


class SpeechError(Exception):
    """A failed speech call. ``str(error)`` can be shown to users; `detail` (logs) may hold server text."""

    def __init__(self, kind: SpeechErrorKind, detail: str = "") -> None:
        super().__init__(_MESSAGES[kind])
        self.kind = kind
        self.detail = detail

    def __repr__(self) -> str:
        return f"SpeechError({self.kind.value!r})"


def audio_format_for_mime(mime_type: str) -> AudioFormat:
    """The SpeechKit format for an audio MIME type (parameters such as ``; codecs=opus`` are ignored).

    Nothing is transcoded, so anything else is a `SpeechError` of kind ``UNSUPPORTED_AUDIO``.
    """
    base = mime_type.split(";", 1)[0].strip().lower()
    audio_format = _MIME_FORMATS.get(base)
    if audio_format is None:
        raise SpeechError(SpeechErrorKind.UNSUPPORTED_AUDIO, f"MIME type {base or '(none)'}")
    return audio_format


def recognition_language(language: str | None) -> str:
    """The code SpeechKit is asked for: ``auto`` for None, ``ru-RU`` for ``ru`` or ``ru_RU``.

    ValueError for a language SpeechKit cannot recognise; callers choose their fallback (such as None).
    """
    if language is None or language.lower() == "auto":
        # Without a language restriction SpeechKit assumes Russian, so "auto" is asked for explicitly.
        return "auto"
    code = language.strip().replace("_", "-")
    base, _, region = code.partition("-")
    if not region:
        regional = _LANGUAGES.get(base.lower())
        if regional is None:
            raise ValueError(f"SpeechKit cannot recognise language {language!r}")
        return regional
    regional = f"{base.lower()}-{region.upper()}"
    if regional not in _REGIONAL:
        raise ValueError(f"SpeechKit cannot recognise language {language!r}")
    return regional


class SpeechKit:
    """Recognises voice notes and synthesises voice messages with SpeechKit v3 through `sdk`.

    Every call is bounded by `timeout` seconds (its own argument, else the constructor's) as a whole —
    endpoint discovery, credentials and the RPC together. `normalize` asks SpeechKit for normalised
    text (punctuation, capitals, digits) rather than raw lowercase words.
    """

    def __init__(
        self,
        sdk: AsyncAIStudio,
        *,
        timeout: float = 30.0,
        normalize: bool = True,
        recognition_model: str | None = None,
        default_voice: str | None = None,
    ) -> None:
        self._sdk = sdk
        self._timeout = timeout
        self._normalize = normalize
        self._model = recognition_model
        self._default_voice = default_voice

    async def recognize(
        self,
        audio: bytes,
        *,
        audio_format: AudioFormat | str,
        language: str | None = None,
        duration: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - it is also the gRPC deadline sent to the server
    ) -> str:
        """The transcript of `audio` (empty when it holds no words).

        `audio_format` is an `AudioFormat` or its name; `language` None means auto-detect. `duration`
        (seconds, as Telegram reports a voice note's) lets a recording over SpeechKit's 5 minutes be
        refused before it is sent; audio over 10 MB always is.
        """
        if not audio:
            raise SpeechError(SpeechErrorKind.BAD_AUDIO, "no audio data")
        if len(audio) > MAX_AUDIO_BYTES:
            raise SpeechError(SpeechErrorKind.AUDIO_TOO_LONG, f"{len(audio)} bytes")
        if duration is not None and duration > MAX_AUDIO_SECONDS:
            raise SpeechError(SpeechErrorKind.AUDIO_TOO_LONG, f"{duration} seconds")
        options: dict[str, Any] = {
            "audio_format": AudioFormat(audio_format).value,
            "language_codes": [recognition_language(language)],
            "text_normalization": self._normalize,
        }
        if self._model:
            options["model"] = self._model
        recognizer = self._sdk.speechkit.speech_to_text(**options)
        chunks: list[bytes | int] = [
            audio[at : at + _CHUNK_BYTES] for at in range(0, len(audio), _CHUNK_BYTES)
        ]
        limit = self._timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                # Private on purpose: `_run_stream_impl` is the very RecognizeStreaming call `run()` makes
                # (FULL_DATA processing, the same options, discovery and auth), minus `run()`'s result
                # parser, which asserts that every final carries a hypothesis and every utterance has a
                # final; on a session where one does not, `run()` raises and the words of every other
                # utterance are lost. The public streaming calls process audio in REAL_TIME mode instead.
                responses = [
                    response
                    async for response in recognizer._run_stream_impl(
                        raw_input=chunks, timeout=limit, mode="full_data"
                    )
                ]
        except _SDK_FAILURES as error:
            raise _speech_error(error, invalid=SpeechErrorKind.BAD_AUDIO) from None
        return _transcript(responses)

    async def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - it is also the gRPC deadline sent to the server
    ) -> bytes:
        """`text` spoken, as Ogg/Opus bytes (what Telegram shows as a voice message)."""
        text = text.strip()
        if not text:
            raise SpeechError(SpeechErrorKind.BAD_TEXT, "empty text")
        if len(text) > MAX_SPEECH_TEXT:
            raise SpeechError(SpeechErrorKind.TEXT_TOO_LONG, f"{len(text)} characters")
        options: dict[str, Any] = {"audio_format": AudioFormat.OGG_OPUS.value}
        if voice := voice or self._default_voice:
            options["voice"] = voice
        synthesizer = self._sdk.speechkit.text_to_speech(**options)
        limit = self._timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                result = await synthesizer.run(text, timeout=limit)
        except _SDK_FAILURES as error:
            raise _speech_error(error, invalid=SpeechErrorKind.BAD_TEXT) from None
        audio = result.data
        if not audio.startswith(b"OggS"):
            raise SpeechError(SpeechErrorKind.UNAVAILABLE, f"synthesis returned {len(audio)} bytes, not Ogg")
        return audio


def _transcript(responses: list[StreamingResponse]) -> str:
    """The recognised words: per utterance (ended by an EOU event) the normalised texts, else the finals."""
    texts: dict[str, list[str]] = {}
    finals: dict[str, list[str]] = {}
    refined: dict[str, list[str]] = {}

    def end_utterance(channel: str) -> None:
        raw, normalised = finals.pop(channel, []), refined.pop(channel, [])
        texts.setdefault(channel, []).extend(normalised or raw)

    for response in responses:
        channel = response.channel_tag
        event = response.WhichOneof("Event")
        if event == "final":
            finals.setdefault(channel, []).extend(_best(response.final))
        elif event == "final_refinement":
            refined.setdefault(channel, []).extend(_best(response.final_refinement.normalized_text))
        elif event == "eou_update":
            end_utterance(channel)
    for channel in set(finals) | set(refined):
        end_utterance(channel)
    return " ".join(text for channel in sorted(texts) for text in texts[channel])


def _best(update: AlternativeUpdate) -> list[str]:
    # The first hypothesis is the most likely one; silence may come as an update with none at all.
    if not update.alternatives:
        return []
    text = update.alternatives[0].text.strip()
    return [text] if text else []


# What a call through the SDK can fail with: our deadline, a gRPC status, or the SDK's own errors
# (such as no endpoint known for a service).
_SDK_FAILURES = (TimeoutError, grpc.aio.AioRpcError, AIStudioError)

# Any other status reads as UNAVAILABLE — including INTERNAL "Internal error from Core", which grpcio's aio
# client may report instead of the server's status when the server ends a recognition stream while audio
# is still being written, as it does for bad credentials or a spent quota (grpc/grpc#36066).
_KINDS = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: SpeechErrorKind.QUOTA,
    grpc.StatusCode.DEADLINE_EXCEEDED: SpeechErrorKind.TIMEOUT,
}


def _speech_error(error: BaseException, *, invalid: SpeechErrorKind) -> SpeechError:
    if isinstance(error, TimeoutError):
        return SpeechError(SpeechErrorKind.TIMEOUT, "no answer in time")
    if isinstance(error, grpc.aio.AioRpcError):
        code = error.code()
        if code in CREDENTIAL_CODES:
            kind = SpeechErrorKind.AUTH
        elif code == grpc.StatusCode.INVALID_ARGUMENT:
            kind = invalid
        else:
            kind = _KINDS.get(code, SpeechErrorKind.UNAVAILABLE)
        return SpeechError(kind, rpc_detail(error))
    return SpeechError(SpeechErrorKind.UNAVAILABLE, f"{type(error).__name__}: {error}")
