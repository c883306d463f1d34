"""End to end: voice notes and audio heard, spoken answers, photos looked at, pictures drawn — the real
bot (aiogram, the openai client, the Yandex SDK over gRPC) against the Telegram, Yandex HTTP and Yandex
gRPC fakes, with every limit of theirs on."""

from __future__ import annotations

from typing import Any

import grpc
from yandex.cloud.ai.stt.v3 import stt_pb2
from yandex.cloud.ai.tts.v3 import tts_pb2

from bot.telegram.media import TELEGRAM_DOWNLOAD_LIMIT
from bot.texts import ENGLISH, RUSSIAN
from tests.conftest import BotRunner, grpc_settings
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex
from tests.fakes.yandex_grpc import (
    ETHICS_REFUSAL,
    EmptyRecognition,
    Failure,
    FakeYandexGrpc,
    RateQuota,
    Transcript,
    jpeg_gray_8x8,
    mp3_silence,
    ogg_opus_silence,
)
from tests.helpers import mention, saved_thread, thread_of

CHAT = 5151
GROUP = -1005151
MEDIA = ENGLISH.media
VISION = {"yandex_vision_model": "gemma-3-27b-it"}


async def start(run_bot: BotRunner, grpc_fake: FakeYandexGrpc, **overrides: Any) -> Any:
    return await run_bot(**grpc_settings(grpc_fake), **overrides)


def voice_note(telegram: FakeTelegram, audio: bytes, *, duration: int = 2, **kw: Any) -> dict[str, Any]:
    voice = telegram.add_voice(audio, duration=duration, declared_size=kw.pop("declared_size", None))
    return telegram.user_message(kw.pop("chat_id", CHAT), extra={"voice": voice, **kw.pop("extra", {})}, **kw)


def stt_options(call: Any) -> stt_pb2.StreamingOptions:
    options: stt_pb2.StreamingOptions = call.requests[0].session_options
    return options


# ------------------------------------------------------------------------------------ voice questions


async def test_a_voice_note_is_heard_shown_and_answered_like_a_typed_question(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    audio = ogg_opus_silence(1500)
    yandex_grpc.stt.script(audio, Transcript("What is the capital of France?"))
    yandex.script("Paris is the capital of France.")
    app = await start(run_bot, yandex_grpc)
    note = voice_note(telegram, audio)
    await telegram.wait_until(
        lambda: (
            telegram.bot_texts(CHAT)
            == ["🎤 What is the capital of France?", "Paris is the capital of France."]
        ),
        timeout=20,
    )
    heard, answer = telegram.bot_messages(CHAT)
    assert heard.reply_to_message_id == note["message_id"] == answer.reply_to_message_id
    # The bytes as Telegram served them, as Ogg/Opus, the language detected by SpeechKit.
    (call,) = yandex_grpc.stt.calls
    assert b"".join(r.chunk.data for r in call.requests[1:]) == audio
    model = stt_options(call).recognition_model
    assert model.audio_format.container_audio.container_audio_type == stt_pb2.ContainerAudio.OGG_OPUS
    assert list(model.language_restriction.language_code) == ["auto"]
    assert yandex.last_input() == [{"role": "user", "content": "What is the capital of France?"}]
    thread = await saved_thread(app.store, str(CHAT), 2)
    assert (thread[0].text, thread[0].via) == ("What is the capital of France?", "voice")
    # /history shows the transcript, marked as spoken.
    telegram.command(CHAT, "history")
    await telegram.wait_until(lambda: any("🎤" in t and "You" in t for t in telegram.bot_texts(CHAT)[2:]))


async def test_an_audio_file_goes_by_its_mime_type_and_speech_language_is_used(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    audio = mp3_silence(40)
    yandex_grpc.stt.script(audio, Transcript("Сколько будет два плюс два?"))
    yandex.script("Четыре.")
    await start(run_bot, yandex_grpc, speech_language="ru")
    item = telegram.add_audio(audio, file_name="question.mp3", mime_type="audio/mpeg", duration=1)
    telegram.user_message(CHAT, extra={"audio": item}, language_code="ru")
    await telegram.wait_until(
        lambda: telegram.bot_texts(CHAT) == ["🎤 Сколько будет два плюс два?", "Четыре."], timeout=20
    )
    model = stt_options(yandex_grpc.stt.calls[0]).recognition_model
    assert model.audio_format.container_audio.container_audio_type == stt_pb2.ContainerAudio.MP3
    assert list(model.language_restriction.language_code) == ["ru-RU"]


async def test_an_audio_format_speechkit_cannot_take_is_refused_before_download(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    await start(run_bot, yandex_grpc)
    item = telegram.add_audio(b"fLaC" + bytes(100), file_name="a.flac", mime_type="audio/flac", duration=3)
    telegram.user_message(CHAT, extra={"audio": item})
    await telegram.wait_for_text(MEDIA.speech_errors["unsupported_audio"], CHAT)
    assert not telegram.calls_of("getFile") and not yandex_grpc.stt.calls


async def test_too_long_or_too_big_recordings_are_refused_before_any_cost(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    await start(run_bot, yandex_grpc, voice_max_seconds=60)
    voice_note(telegram, ogg_opus_silence(500), duration=61)
    await telegram.wait_for_text(MEDIA.voice_too_long.format(seconds=61, limit=60), CHAT)
    voice_note(telegram, ogg_opus_silence(500), declared_size=TELEGRAM_DOWNLOAD_LIMIT + 1)
    await telegram.wait_for_text(MEDIA.too_big, CHAT)
    assert not telegram.calls_of("getFile") and not yandex_grpc.stt.calls and not yandex.requests


async def test_a_file_telegram_will_not_serve_is_refused_in_plain_words(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    # Telegram did not say how big it is; getFile answers "file is too big".
    await start(run_bot, yandex_grpc)
    voice = telegram.add_voice(ogg_opus_silence(500), duration=2, declared_size=TELEGRAM_DOWNLOAD_LIMIT + 1)
    telegram.user_message(CHAT, extra={"voice": {k: v for k, v in voice.items() if k != "file_size"}})
    await telegram.wait_for_text(MEDIA.too_big, CHAT)
    assert not yandex_grpc.stt.calls


async def test_no_words_heard_is_said_so_and_costs_no_answer(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    audio = ogg_opus_silence(800)
    yandex_grpc.stt.script(audio, EmptyRecognition("partials_only"))
    app = await start(run_bot, yandex_grpc)
    voice_note(telegram, audio)
    await telegram.wait_for_text(MEDIA.no_words, CHAT, timeout=20)
    assert not yandex.requests
    assert await thread_of(app.store, str(CHAT)) == []


async def test_speechkit_failures_are_explained_without_server_text(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    quota, broken = ogg_opus_silence(700), b"OggS" + bytes(300)
    yandex_grpc.stt.script(quota, Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "Quota exceeded"))
    await start(run_bot, yandex_grpc)
    voice_note(telegram, quota)
    await telegram.wait_for_text(MEDIA.speech_errors["quota"], CHAT, timeout=20)
    voice_note(telegram, broken)  # not Ogg/Opus at all: SpeechKit says INVALID_ARGUMENT
    await telegram.wait_for_text(MEDIA.speech_errors["bad_audio"], CHAT, timeout=20)
    assert not yandex.requests
    assert all("Quota" not in text and "Invalid" not in text for text in telegram.bot_texts(CHAT))


async def test_a_refused_credential_is_a_readable_message_and_never_shows_the_key(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    from tests.fakes.yandex_grpc import Credentials

    # The gRPC side knows another key than the one the bot has: Yandex echoes the key it got.
    async with FakeYandexGrpc(Credentials(api_key="another-key")) as other:
        other.stt.read_all_before_rejecting = True
        await start(run_bot, other)
        voice_note(telegram, ogg_opus_silence(600))
        await telegram.wait_for_text(MEDIA.speech_errors["auth"], CHAT, timeout=20)
    assert all(yandex.api_key not in text for text in telegram.bot_texts(CHAT))


async def test_in_groups_a_voice_note_is_answered_only_when_meant_for_the_bot(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    audio = ogg_opus_silence(900)
    yandex_grpc.stt.script(audio, Transcript("And in Spain?"))
    yandex.script("Hi.", "Madrid.")
    await start(run_bot, yandex_grpc)
    voice_note(telegram, audio, chat_id=GROUP, chat_type="supergroup", user_id=21)
    text, entities = mention("hello")
    telegram.user_message(GROUP, text, chat_type="supergroup", user_id=21, entities=entities)
    await telegram.wait_until(lambda: len(telegram.bot_messages(GROUP)) == 1, timeout=20)
    assert not yandex_grpc.stt.calls  # the unaddressed voice note was left alone
    bot_message = telegram.bot_messages(GROUP)[0].message_id
    caption, caption_entities = mention("listen")
    voice_note(
        telegram,
        audio,
        chat_id=GROUP,
        chat_type="supergroup",
        user_id=21,
        reply_to_message_id=bot_message,
        extra={"caption": caption, "caption_entities": caption_entities},
    )
    await telegram.wait_until(
        lambda: telegram.bot_texts(GROUP)[1:] == ["🎤 And in Spain?", "Madrid."], timeout=20
    )
    assert yandex.last_input()[-1]["content"] == "Alice: And in Spain?"


# ------------------------------------------------------------------------------------ spoken answers


async def test_voice_toggles_spoken_answers_sent_after_the_text_without_markdown(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    yandex.script("**Paris** is the capital.", "Berlin.")
    await start(run_bot, yandex_grpc, tts_voice="alena")
    telegram.command(CHAT, "voice")
    await telegram.wait_for_text(MEDIA.voice_on, CHAT)
    question = telegram.user_message(CHAT, "Capital of France?")
    await telegram.wait_until(lambda: len(telegram.calls_of("sendVoice", CHAT)) == 1, timeout=20)
    texts = telegram.bot_texts(CHAT)
    assert texts[:2] == [MEDIA.voice_on, "Paris is the capital."]
    voice = telegram.bot_messages(CHAT)[-1]
    assert voice.voice is not None and voice.content is not None and voice.content.startswith(b"OggS")
    assert voice.reply_to_message_id == question["message_id"] and voice.caption is None
    (synthesis,) = yandex_grpc.tts.calls
    assert synthesis.request.text == "Paris is the capital."
    assert synthesis.request.hints[0].voice == "alena"
    spec = synthesis.request.output_audio_spec.container_audio
    assert spec.container_audio_type == tts_pb2.ContainerAudio.OGG_OPUS
    telegram.command(CHAT, "voice")
    await telegram.wait_for_text(MEDIA.voice_off, CHAT)
    telegram.user_message(CHAT, "And Germany?")
    await telegram.wait_for_text("Berlin.", CHAT, timeout=20)
    assert len(telegram.calls_of("sendVoice", CHAT)) == 1


async def test_a_long_answer_is_read_up_to_a_sentence_under_the_limit_and_says_so(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    long_answer = " ".join(f"Sentence number {n} is here." for n in range(30))
    yandex.script(long_answer)
    await start(run_bot, yandex_grpc, voice_replies=True, tts_max_chars=100)
    telegram.user_message(CHAT, "Talk a lot")
    await telegram.wait_until(lambda: len(telegram.calls_of("sendVoice", CHAT)) == 1, timeout=20)
    spoken = yandex_grpc.tts.calls[0].request.text
    assert len(spoken) <= 100 and spoken.endswith("is here.") and long_answer.startswith(spoken)
    assert telegram.bot_messages(CHAT)[-1].caption == MEDIA.voice_cut


async def test_a_failed_synthesis_keeps_the_text_answer_and_is_told_once(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    for _ in range(2):
        yandex_grpc.tts.fail_next(Failure(grpc.StatusCode.PERMISSION_DENIED, "Permission denied"))
    yandex.script("First answer.", "Second answer.")
    app = await start(run_bot, yandex_grpc, voice_replies=True)
    told = MEDIA.voice_failed.format(reason=MEDIA.speech_errors["auth"])
    telegram.user_message(CHAT, "one")
    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == ["First answer.", told], timeout=20)
    telegram.user_message(CHAT, "two")
    await telegram.wait_for_text("Second answer.", CHAT, timeout=20)
    await telegram.wait_until(lambda: len(yandex_grpc.tts.calls) == 2, timeout=20)
    await saved_thread(app.store, str(CHAT), 4)
    assert telegram.bot_texts(CHAT) == ["First answer.", told, "Second answer."]
    assert not telegram.calls_of("sendVoice")


# ------------------------------------------------------------------------------------ photo questions


async def test_a_photo_goes_to_the_vision_model_inline_with_its_caption_and_context(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    yandex.script("Hello there.", "A grey square.")
    app = await start(run_bot, yandex_grpc, **VISION)
    telegram.user_message(CHAT, "hi")
    await telegram.wait_for_text("Hello there.", CHAT, timeout=20)
    big, small = jpeg_gray_8x8(120), jpeg_gray_8x8(30)
    sizes = telegram.add_photo(big, thumbnail=small)
    telegram.user_message(CHAT, extra={"photo": sizes, "caption": "What is on it?"})
    await telegram.wait_for_text("A grey square.", CHAT, timeout=20)
    request = yandex.requests[-1]
    assert request.body["model"] == f"gpt://{yandex.folder_id}/gemma-3-27b-it"
    assert request.images() == [big]  # the largest size, inline
    last = request.body["input"][-1]
    assert last["content"][0] == {"type": "input_text", "text": "What is on it?"}
    assert [item["content"] for item in yandex.last_input()[:2]] == ["hi", "Hello there."]
    body = str(request.body)
    assert telegram.token not in body and "/file/bot" not in body
    thread = await saved_thread(app.store, str(CHAT), 4)
    assert (thread[2].text, thread[2].via) == ("What is on it?\n[photo]", "photo")
    telegram.command(CHAT, "history")
    await telegram.wait_until(lambda: any("[photo]" in text for text in telegram.bot_texts(CHAT)[2:]))


async def test_a_photo_without_caption_asks_the_default_question_in_the_users_language(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    yandex.script("Серый квадрат.")
    app = await start(run_bot, yandex_grpc, **VISION)
    telegram.user_message(CHAT, extra={"photo": telegram.add_photo(jpeg_gray_8x8(90))}, language_code="ru")
    await telegram.wait_for_text("Серый квадрат.", CHAT, timeout=20)
    assert yandex.requests[-1].body["input"][-1]["content"][0]["text"] == RUSSIAN.media.photo_question
    thread = await saved_thread(app.store, str(CHAT), 2)
    assert thread[0].text == "[photo]"


async def test_without_a_vision_model_photos_get_a_clear_refusal(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    await start(run_bot, yandex_grpc)
    telegram.user_message(CHAT, extra={"photo": telegram.add_photo(jpeg_gray_8x8(90))})
    await telegram.wait_for_text(MEDIA.no_vision, CHAT)
    assert not yandex.requests and not telegram.calls_of("getFile")


async def test_the_refusal_is_the_owners_own_when_configured(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    await start(run_bot, yandex_grpc, vision_unavailable_text="Pictures are off on this bot.")
    telegram.user_message(CHAT, extra={"photo": telegram.add_photo(jpeg_gray_8x8(90))})
    await telegram.wait_for_text("Pictures are off on this bot.", CHAT)


async def test_a_photo_over_telegrams_download_limit_is_refused(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    await start(run_bot, yandex_grpc, **VISION)
    sizes = telegram.add_photo(jpeg_gray_8x8(90), declared_size=TELEGRAM_DOWNLOAD_LIMIT + 1)
    telegram.user_message(CHAT, extra={"photo": sizes})
    await telegram.wait_for_text(MEDIA.too_big, CHAT)
    assert not yandex.requests


async def test_the_text_model_is_never_sent_a_picture(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    # The fake refuses pictures for a model that cannot see, as Yandex does: a misconfigured vision
    # model ends in the usual plain failure, not a crash.
    await start(run_bot, yandex_grpc, yandex_vision_model="yandexgpt-5.1")
    telegram.user_message(CHAT, extra={"photo": telegram.add_photo(jpeg_gray_8x8(90)), "caption": "?"})
    await telegram.wait_until(lambda: len(telegram.bot_texts(CHAT)) == 1, timeout=20)
    assert yandex.requests[-1].body["model"].endswith("/yandexgpt-5.1")
    assert telegram.bot_texts(CHAT)[0] in ENGLISH.failure_before_text.values()


# ------------------------------------------------------------------------------------ pictures


async def test_image_draws_a_picture_replacing_its_status_message(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    yandex_grpc.images.delay = 1.0
    await start(run_bot, yandex_grpc)
    request = telegram.command(CHAT, "image", "a red fox in the snow")
    drawing = MEDIA.image_drawing.format(prompt="a red fox in the snow")
    await telegram.wait_for_text(drawing, CHAT)
    await telegram.wait_until(lambda: "upload_photo" in telegram.chat_actions(CHAT))
    await telegram.wait_until(lambda: len(telegram.calls_of("sendPhoto", CHAT)) == 1, timeout=20)
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    (picture,) = telegram.bot_messages(CHAT)
    assert picture.photo is not None and picture.content == yandex_grpc.images.image
    assert picture.caption == "a red fox in the snow"
    assert picture.reply_to_message_id == request["message_id"]
    (generate,) = yandex_grpc.images.calls
    assert generate.request.messages[0].text == "a red fox in the snow"
    assert len(yandex_grpc.operations.calls) >= 1  # the operation was polled until done
    telegram.command(CHAT, "draw", "a blue whale")  # the alias
    await telegram.wait_until(lambda: len(telegram.calls_of("sendPhoto", CHAT)) == 2, timeout=20)


async def test_image_refuses_empty_and_over_long_prompts_before_any_cost(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    await start(run_bot, yandex_grpc)
    telegram.command(CHAT, "image")
    await telegram.wait_for_text(MEDIA.image_usage, CHAT)
    telegram.command(CHAT, "image", "x" * 501)
    await telegram.wait_for_text(MEDIA.image_too_long.format(limit=500, length=501), CHAT)
    assert not yandex_grpc.images.calls


async def test_image_failures_are_explained_in_plain_words(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    yandex_grpc.images.delay = 0.1
    await start(run_bot, yandex_grpc)
    drawing = MEDIA.image_drawing.format(prompt="something forbidden")
    telegram.command(CHAT, "image", "something forbidden")
    await telegram.wait_for_text(MEDIA.image_errors["refused"], CHAT, timeout=20)
    assert drawing not in telegram.bot_texts(CHAT)  # the status message became the explanation
    assert ETHICS_REFUSAL not in " ".join(telegram.bot_texts(CHAT))
    yandex_grpc.images.per_minute = RateQuota(0, 60.0, yandex_grpc.hub.clock)
    telegram.command(CHAT, "image", "a cat")
    await telegram.wait_for_text(MEDIA.image_errors["quota"], CHAT, timeout=20)
    assert not telegram.calls_of("sendPhoto")


async def test_image_gives_up_after_its_timeout(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    yandex_grpc.images.delay = 30.0
    await start(run_bot, yandex_grpc, image_timeout=1.5)
    telegram.command(CHAT, "image", "a slow sunset")
    await telegram.wait_for_text(MEDIA.image_errors["timeout"], CHAT, timeout=20)
    assert not telegram.calls_of("sendPhoto")


async def test_stop_cancels_waiting_for_a_picture(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    yandex_grpc.images.delay = 30.0
    await start(run_bot, yandex_grpc)
    telegram.command(CHAT, "image", "a slow sunset")
    await telegram.wait_for_text(MEDIA.image_drawing.format(prompt="a slow sunset"), CHAT)
    telegram.command(CHAT, "stop")
    await telegram.wait_for_text(MEDIA.image_stopped, CHAT, timeout=10)
    await telegram.wait_for_text(ENGLISH.stopping, CHAT)
    assert not telegram.calls_of("sendPhoto")


async def test_pictures_count_against_the_users_rate_limit(
    telegram: FakeTelegram, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    yandex_grpc.images.delay = 0.1
    await start(run_bot, yandex_grpc, rate_limit_per_minute=1)
    telegram.command(CHAT, "image", "a cat")
    await telegram.wait_until(lambda: len(telegram.calls_of("sendPhoto", CHAT)) == 1, timeout=20)
    telegram.command(CHAT, "image", "a dog")
    await telegram.wait_until(
        lambda: any(text.startswith(ENGLISH.rate_limited.split("{")[0]) for text in telegram.bot_texts(CHAT)),
        timeout=10,
    )
    assert len(yandex_grpc.images.calls) == 1


async def test_a_recognition_that_takes_too_long_is_given_up_in_plain_words(
    telegram: FakeTelegram, yandex: FakeYandex, yandex_grpc: FakeYandexGrpc, run_bot: BotRunner
) -> None:
    audio = ogg_opus_silence(600)
    yandex_grpc.stt.script(audio, Transcript("Too late.", delay=10.0))
    await start(run_bot, yandex_grpc, yandex_grpc_timeout=1.0)
    voice_note(telegram, audio)
    await telegram.wait_for_text(MEDIA.speech_errors["timeout"], CHAT, timeout=20)
    assert not yandex.requests
