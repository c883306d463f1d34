"""Beyond text: voice notes heard, photos looked at, answers spoken, pictures drawn.

Plain classes the media router hands over to. Files come from Telegram through `TelegramFiles`, which
reads them into memory: a Telegram file URL carries the bot token, so it is never passed on (to Yandex,
to a log) — Yandex gets the bytes, or a photo as a data URL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.types import BufferedInputFile

from bot.assistant.images import MAX_PROMPT_CHARS, ImageError, ImageGenerator
from bot.assistant.speech import AudioFormat, SpeechError, SpeechKit, audio_format_for_mime
from bot.log_context import ChatRef
from bot.target import ChatTarget
from bot.telegram.errors import Result, file_too_big
from bot.telegram.render import Rendered, render_markdown
from bot.telegram.sender import Outbox, Sender
from bot.texts import Texts
from bot.threads.chat_settings import ChatSettingsStore
from bot.turns.streaming import StreamOutcome

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 2**20  # the Bot API serves bots files up to 20 MB
DOWNLOAD_TIMEOUT_SECONDS = 60
PHOTO_MARKER = "[photo]"
CHAT_ACTION_EVERY_SECONDS = 4.5  # Telegram shows a chat action for about 5 s


class MediaRefused(Exception):
    """A voice note or photo that is not answered; ``str(error)`` is what the user is told."""


@dataclass(frozen=True, slots=True)
class TelegramFile:
    """A file of a user's message, as Telegram describes it."""

    file_id: str
    size: int | None = None  # Telegram's figure, when it gives one


class TelegramFiles:
    """Downloads users' files into memory, refusing what Telegram would not serve before asking."""

    def __init__(self, bot: Bot, *, timeout: int = DOWNLOAD_TIMEOUT_SECONDS) -> None:
        self._bot = bot
        self._timeout = timeout

    async def read(self, file: TelegramFile, texts: Texts) -> bytes:
        if file.size is not None and file.size > TELEGRAM_DOWNLOAD_LIMIT:
            raise MediaRefused(texts.media.too_big)
        buffer = io.BytesIO()
        try:
            await self._bot.download(file.file_id, destination=buffer, timeout=self._timeout)
        except Exception as error:
            # The download URL holds the bot token, and aiogram may put it in the error: log the type only.
            log.warning("downloading a user's file failed: %s", type(error).__name__)
            if file_too_big(error):
                raise MediaRefused(texts.media.too_big) from None
            raise MediaRefused(texts.media.download_failed) from None
        return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Recording:
    """A voice note (Ogg/Opus) or an audio file of a user's message."""

    file: TelegramFile
    mime_type: str | None
    duration: int | None  # seconds, as Telegram reports it
    voice_note: bool


class Listener:
    """Recognises what a user said, with SpeechKit, after checking the limits that cost nothing."""

    def __init__(
        self, files: TelegramFiles, speech: SpeechKit, *, max_seconds: int, language: str | None
    ) -> None:
        self._files = files
        self._speech = speech
        self._max_seconds = max_seconds
        self._language = language

    async def transcript(self, recording: Recording, texts: Texts) -> str:
        """The words heard; `MediaRefused` with what to tell the user when there are none."""
        media = texts.media
        if recording.duration is not None and recording.duration > self._max_seconds:
            raise MediaRefused(
                media.voice_too_long.format(seconds=recording.duration, limit=self._max_seconds)
            )
        try:
            # Voice notes are Ogg/Opus whatever Telegram calls them; audio files go by their MIME type.
            audio_format = (
                AudioFormat.OGG_OPUS
                if recording.voice_note
                else audio_format_for_mime(recording.mime_type or "")
            )
            audio = await self._files.read(recording.file, texts)
            text = await self._speech.recognize(
                audio,
                audio_format=audio_format,
                language=self._language,
                duration=recording.duration,
            )
        except SpeechError as error:
            log.warning("speech recognition failed: %s (%s)", error.kind.value, error.detail)
            raise MediaRefused(media.speech_errors[error.kind.value]) from None
        if not text.strip():
            raise MediaRefused(media.no_words)
        return text.strip()


class Looker:
    """A user's photo as the Responses API takes it: a base64 data URL of its bytes."""

    def __init__(self, files: TelegramFiles) -> None:
        self._files = files

    async def image_url(self, photo: TelegramFile, texts: Texts) -> str:
        data = await self._files.read(photo, texts)
        # Telegram re-encodes every photo it delivers as a JPEG.
        return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def spoken_text(markdown: str, limit: int) -> tuple[str, bool]:
    """The answer as it is read aloud — Markdown gone, at most `limit` characters, cut after a
    sentence where it must be — and whether it was cut."""
    plain = render_markdown(markdown).text
    plain = re.sub(r"[ \t]+", " ", re.sub(r"\n{2,}", "\n", plain)).strip()
    if len(plain) <= limit:
        return plain, False
    head = plain[:limit]
    ends = [match.end() for match in re.finditer(r"[.!?…](?=\s)|\n", head)]
    cut = ends[-1] if ends and ends[-1] > limit // 3 else (head.rfind(" ") if " " in head else limit)
    return head[:cut].strip(), True


class SpokenAnswers:
    """After a complete text answer, the same answer as a voice message — in chats that asked (/voice)."""

    def __init__(
        self,
        chat_settings: ChatSettingsStore,
        speech: SpeechKit,
        *,
        default_on: bool,
        max_chars: int,
    ) -> None:
        self._settings = chat_settings
        self._speech = speech
        self._default_on = default_on
        self._max_chars = max_chars
        self._told: set[str] = set()  # chats told of a failure and not spoken to since

    async def enabled(self, chat_key: str) -> bool:
        chosen = (await self._settings.get(chat_key)).voice
        return self._default_on if chosen is None else chosen

    async def toggle(self, chat_key: str) -> bool:
        """Switch the chat's spoken answers; returns whether they are on now."""
        on = not await self.enabled(chat_key)
        await self._settings.set_voice(chat_key, on)
        return on

    async def speak(self, sender: Sender, answer: str, texts: Texts) -> None:
        """Send `answer` spoken. A failure is told in one plain notice and never touches the text answer."""
        key = sender.target.key
        text, cut = spoken_text(answer, self._max_chars)
        try:
            audio = await self._speech.synthesize(text)
        except SpeechError as error:
            log.warning(
                "speech synthesis in %s failed: %s (%s)", ChatRef(key), error.kind.value, error.detail
            )
            if key not in self._told:
                self._told.add(key)
                reason = texts.media.speech_errors[error.kind.value]
                await sender.send_parts([Rendered(texts.media.voice_failed.format(reason=reason))])
            return
        self._told.discard(key)
        caption = texts.media.voice_cut if cut else None
        sent = await sender.send_voice(BufferedInputFile(audio, "answer.ogg"), caption=caption)
        if sent.result is not Result.OK:
            log.warning("could not send a voice answer to %s: %s", ChatRef(key), sent.result.name)


class Pictures:
    """Draws pictures on request with YandexART: a status message while it runs, then the picture in its
    place. `/stop` (`cancel`) ends the wait; the user's rate limit is counted by the caller."""

    def __init__(self, bot: Bot, outbox: Outbox, images: ImageGenerator) -> None:
        self._bot = bot
        self._outbox = outbox
        self._images = images
        self._drawing: dict[str, asyncio.Task[bytes]] = {}

    @staticmethod
    def too_long(prompt: str, texts: Texts) -> str | None:
        """What to say of a prompt YandexART would refuse for its length (before any cost), else None."""
        prompt = prompt.strip()
        if len(prompt) > MAX_PROMPT_CHARS:
            return texts.media.image_too_long.format(limit=MAX_PROMPT_CHARS, length=len(prompt))
        return None

    def cancel(self, chat_key: str) -> bool:
        task = self._drawing.get(chat_key)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def draw(self, target: ChatTarget, prompt: str, texts: Texts) -> None:
        prompt = prompt.strip()
        sender = self._outbox.to(target)
        status = await sender.send(Rendered(texts.media.image_drawing.format(prompt=_short(prompt))))
        work = asyncio.create_task(self._images.generate(prompt))
        self._drawing[target.key] = work
        action = asyncio.create_task(self._keep_showing(target))
        try:
            image = await asyncio.shield(work)
        except asyncio.CancelledError:
            if not work.cancelled():
                work.cancel()
                raise  # the handler itself is being cancelled (shutdown)
            await self._show(sender, status.message_id, texts.media.image_stopped)
            return
        except ImageError as error:
            log.warning("drawing in %s failed: %s (%s)", ChatRef(target.key), error.kind.value, error.detail)
            await self._show(sender, status.message_id, texts.media.image_errors[error.kind.value])
            return
        finally:
            action.cancel()
            if self._drawing.get(target.key) is work:
                del self._drawing[target.key]
        sent = await sender.send_photo(BufferedInputFile(image, "picture.jpg"), caption=_short(prompt, 1024))
        if sent.result is Result.OK and status.message_id is not None:
            await sender.delete(status.message_id)

    async def _show(self, sender: Sender, message_id: int | None, text: str) -> None:
        if message_id is None or await sender.edit(message_id, Rendered(text)) is not Result.OK:
            await sender.send_parts([Rendered(text)])

    async def _keep_showing(self, target: ChatTarget) -> None:
        while True:
            with contextlib.suppress(Exception):  # decoration: never breaks the picture
                await self._bot.send_chat_action(
                    target.chat_id, ChatAction.UPLOAD_PHOTO, message_thread_id=target.topic_id
                )
            await asyncio.sleep(CHAT_ACTION_EVERY_SECONDS)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Media:
    """What the media router works with (one per bot, built in bot.factory)."""

    listener: Listener
    looker: Looker
    spoken: SpokenAnswers
    pictures: Pictures
    vision_model: str | None  # the vision model's URI; None: photos are refused
    vision_refusal: str | None  # the owner's own refusal text (VISION_UNAVAILABLE_TEXT)

    def after_answer_in(
        self, outbox: Outbox, target: ChatTarget, texts: Texts
    ) -> Callable[[StreamOutcome], Awaitable[None]]:
        """What follows a complete answer shown in the chat: spoken too, where the chat asked for that."""

        async def after(outcome: StreamOutcome) -> None:
            answer = outcome.text
            if answer and answer.strip() and await self.spoken.enabled(target.key):
                await self.spoken.speak(outbox.to(target), answer, texts)

        return after
