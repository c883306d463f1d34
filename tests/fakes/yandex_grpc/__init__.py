"""gRPC fakes of the Yandex services the SDK side uses, built from the real ``yandexcloud`` protobufs.

Typical use (the real ``yandex_ai_studio_sdk`` client talks to it over real gRPC)::

    fake = FakeYandexGrpc()
    await fake.start()
    sdk = build_sdk(fake.credentials.folder_id, APIKeyAuth(fake.credentials.api_key),
                    endpoint=fake.address, insecure=True)
    voice = ogg_opus_silence(800)
    fake.stt.script(voice, Transcript("Привет, мир!"))
    assert await SpeechKit(sdk).recognize(voice, audio_format=AudioFormat.OGG_OPUS) == "Привет, мир!"
    await fake.stop()

See each module for what its service enforces; :class:`FakeYandexGrpc` records every call.
"""

from tests.fakes.yandex_grpc.common import Call, Credentials, Failure, RateQuota
from tests.fakes.yandex_grpc.images import ETHICS_REFUSAL, ImageJob
from tests.fakes.yandex_grpc.media import (
    check_audio,
    jpeg_gray_8x8,
    mp3_silence,
    ogg_opus_silence,
    parse_ogg,
    wav_silence,
)
from tests.fakes.yandex_grpc.server import FakeYandexGrpc
from tests.fakes.yandex_grpc.stt import EmptyRecognition, Transcript

__all__ = [
    "ETHICS_REFUSAL",
    "Call",
    "Credentials",
    "EmptyRecognition",
    "Failure",
    "FakeYandexGrpc",
    "ImageJob",
    "RateQuota",
    "Transcript",
    "check_audio",
    "jpeg_gray_8x8",
    "mp3_silence",
    "ogg_opus_silence",
    "parse_ogg",
    "wav_silence",
]
