"""Voice notes, audio and photos as questions, /voice (spoken answers) and /image (pictures).

Thin: what a message holds is read here; hearing, looking, speaking and drawing are `bot.telegram.media`.
"""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.telegram.addressing import author_name, caption_question
from bot.telegram.chat_admins import ChatAdmins
from bot.telegram.filters import OnLoop
from bot.telegram.media import PHOTO_MARKER, Media, MediaRefused, Pictures, Recording, TelegramFile
from bot.telegram.render import Rendered
from bot.telegram.routers.common import reply, texts_of
from bot.telegram.routers.conversation import limit_text
from bot.telegram.routers.settings import _may_change as may_change
from bot.telegram.sender import Outbox
from bot.telegram.targets import chat_target
from bot.threads.limits import UsageLimits
from bot.turns.runner import Question, TurnRunner


def router() -> Router:
    router = Router(name="media")

    @router.message(Command("voice"))
    async def voice(
        message: Message, outbox: Outbox, media: Media, chat_admins: ChatAdmins, is_admin: bool
    ) -> None:
        texts = texts_of(message)
        if not await may_change(message, outbox, chat_admins, is_admin, texts):
            return
        on = await media.spoken.toggle(chat_target(message).key)
        await reply(outbox, message, texts.media.voice_on if on else texts.media.voice_off)

    @router.message(Command("image", "draw"))
    async def image(
        message: Message,
        command: CommandObject,
        outbox: Outbox,
        media: Media,
        limits: UsageLimits,
        is_admin: bool,
        handoff: Callable[[], None] | None = None,
    ) -> None:
        texts = texts_of(message)
        prompt = (command.args or "").strip()
        if not prompt:
            await reply(outbox, message, texts.media.image_usage)
            return
        if (too_long := Pictures.too_long(prompt, texts)) is not None:
            await reply(outbox, message, too_long)
            return
        user_id = message.from_user.id if message.from_user else None
        if user_id is not None and not is_admin and (hit := await limits.admit(user_id)):
            await reply(outbox, message, limit_text(hit, texts))
            return
        if handoff is not None:
            handoff()  # a picture takes a while; the chat's next messages (a /stop) need not wait for it
        await media.pictures.draw(chat_target(message), prompt, texts)
        if user_id is not None:
            await limits.count_questions(user_id)

    @router.message(OnLoop(F.voice | F.audio))
    async def recording(
        message: Message,
        bot: Bot,
        outbox: Outbox,
        media: Media,
        runner: TurnRunner,
        limits: UsageLimits,
        is_admin: bool,
        handoff: Callable[[], None] | None = None,
        arrived_at: float | None = None,
    ) -> None:
        if caption_question(message, await bot.me()) is None:
            return
        texts, target = texts_of(message), chat_target(message)
        user_id = message.from_user.id if message.from_user else None
        if user_id is not None and not is_admin and (hit := await limits.admit(user_id)):
            await reply(outbox, message, limit_text(hit, texts))
            return
        clip = message.voice or message.audio
        assert clip is not None
        heard = Recording(
            TelegramFile(clip.file_id, clip.file_size),
            clip.mime_type,
            clip.duration,
            voice_note=message.voice is not None,
        )
        try:
            transcript = await media.listener.transcript(heard, texts)
        except MediaRefused as refusal:
            await reply(outbox, message, str(refusal))
            return
        # What was heard comes first, so that a misheard question is plain before its answer.
        await outbox.to(target).send(Rendered(texts.media.heard.format(text=transcript)))
        question = Question(
            target, transcript, texts, user_id, author_name(message), arrived_at=arrived_at, via="voice"
        )
        await runner.start(question, on_queued=handoff, after=media.after_answer_in(outbox, target, texts))

    @router.message(OnLoop(F.photo))
    async def photo(
        message: Message,
        bot: Bot,
        outbox: Outbox,
        media: Media,
        runner: TurnRunner,
        limits: UsageLimits,
        is_admin: bool,
        handoff: Callable[[], None] | None = None,
        arrived_at: float | None = None,
    ) -> None:
        caption = caption_question(message, await bot.me())
        if caption is None:
            return
        texts, target = texts_of(message), chat_target(message)
        if media.vision_model is None:
            await reply(outbox, message, media.vision_refusal or texts.media.no_vision)
            return
        user_id = message.from_user.id if message.from_user else None
        if user_id is not None and not is_admin and (hit := await limits.admit(user_id)):
            await reply(outbox, message, limit_text(hit, texts))
            return
        assert message.photo
        largest = max(message.photo, key=lambda size: size.width * size.height)
        try:
            image_url = await media.looker.image_url(TelegramFile(largest.file_id, largest.file_size), texts)
        except MediaRefused as refusal:
            await reply(outbox, message, str(refusal))
            return
        question = Question(
            target,
            caption or texts.media.photo_question,
            texts,
            user_id,
            author_name(message),
            arrived_at=arrived_at,
            via="photo",
            stored=f"{caption}\n{PHOTO_MARKER}" if caption else PHOTO_MARKER,
            image_url=image_url,
            model=media.vision_model,
        )
        await runner.start(question, on_queued=handoff, after=media.after_answer_in(outbox, target, texts))

    return router
