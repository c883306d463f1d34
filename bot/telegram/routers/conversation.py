"""Questions and their answers: text messages, /stop, /reset, /retry (and ↻), and whatever else is not
understood (voice notes, audio and photos are the media router's)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message, MessageGenerationStopped
from aiogram.utils.callback_answer import CallbackAnswer

from bot.telegram.addressing import author_name, question_for, replies_to
from bot.telegram.filters import OnLoop
from bot.telegram.media import Media
from bot.telegram.middlewares.callback_answers import answer_quietly
from bot.telegram.retry_button import RETRY_CALLBACK, RetryButtons
from bot.telegram.routers.common import reply, texts_of
from bot.telegram.sender import Outbox
from bot.telegram.surface import STOP_CALLBACK
from bot.telegram.targets import chat_target, is_private
from bot.texts import Texts, texts_for
from bot.threads.limits import LimitHit, UsageLimits
from bot.threads.store import ThreadStore
from bot.turns.runner import Question, TurnRunner


def router() -> Router:
    router = Router(name="conversation")

    @router.message(Command("reset"))
    async def reset(message: Message, outbox: Outbox, store: ThreadStore, runner: TurnRunner) -> None:
        key = chat_target(message).key
        await runner.stop(key)  # the stopped answer is not saved: its thread is gone by then
        await store.reset(key)
        await reply(outbox, message, texts_of(message).reset_done)

    @router.message(Command("stop"))
    async def stop(message: Message, outbox: Outbox, runner: TurnRunner, media: Media) -> None:
        texts = texts_of(message)
        key = chat_target(message).key
        drawing = media.pictures.cancel(key)  # waiting for a picture (/image) ends too
        stopped = await runner.stop(key) or drawing
        await reply(outbox, message, texts.stopping if stopped else texts.nothing_to_stop)

    @router.callback_query(OnLoop(F.data == STOP_CALLBACK))
    async def stop_button(query: CallbackQuery, callback_answer: CallbackAnswer, runner: TurnRunner) -> None:
        texts = texts_for(query.from_user.language_code)
        target = chat_target(query)
        stopped = target is not None and await runner.stop(target.key)
        callback_answer.text = texts.stopping if stopped else texts.nothing_to_stop

    @router.message(Command("retry"))
    async def retry(
        message: Message,
        outbox: Outbox,
        runner: TurnRunner,
        limits: UsageLimits,
        is_admin: bool,
        handoff: Callable[[], None] | None = None,
    ) -> None:
        texts = texts_of(message)
        user_id = message.from_user.id if message.from_user else None
        if user_id is not None and not is_admin and (hit := await limits.admit(user_id)):
            await reply(outbox, message, _limit_text(hit, texts))
            return
        again = Question(chat_target(message), "", texts, user_id, retry=True)
        await runner.start(again, on_queued=handoff)

    @router.callback_query(OnLoop(F.data == RETRY_CALLBACK))
    async def retry_button(
        query: CallbackQuery,
        callback_answer: CallbackAnswer,
        outbox: Outbox,
        runner: TurnRunner,
        limits: UsageLimits,
        retry_buttons: RetryButtons,
        is_admin: bool,
    ) -> None:
        texts = texts_for(query.from_user.language_code)
        target = chat_target(query)
        if target is None or query.message is None:
            callback_answer.text = texts.retry_not_last
            return
        if not await retry_buttons.is_current(target.key, query.message.message_id):
            callback_answer.text = texts.retry_not_last
            await retry_buttons.take_off(outbox.to(target), query.message.message_id)
            return
        if not is_admin and (hit := await limits.admit(query.from_user.id)):
            callback_answer.text, callback_answer.show_alert = _limit_text(hit, texts), True
            return
        # Answered now: the new answer takes a while, and the button should not spin meanwhile.
        callback_answer.disabled = True
        await answer_quietly(query, texts.retrying)
        await runner.start(Question(target, "", texts, query.from_user.id, retry=True))

    @router.stopped_message_generation()
    async def stop_draft(event: MessageGenerationStopped, runner: TurnRunner) -> None:
        await runner.stop(chat_target(event).key)

    @router.message(OnLoop(F.text.startswith("/")))
    async def unknown_command(message: Message, bot: Bot, outbox: Outbox) -> None:
        # In groups a bare /command may be for another bot; answer only what is clearly ours.
        me = await bot.me()
        command = (message.text or "").split(maxsplit=1)[0]
        if is_private(message.chat) or command.lower().endswith(f"@{(me.username or '').lower()}"):
            await reply(outbox, message, texts_of(message).help)

    @router.message(OnLoop(F.text))
    async def question(
        message: Message,
        bot: Bot,
        outbox: Outbox,
        runner: TurnRunner,
        limits: UsageLimits,
        media: Media,
        is_admin: bool,
        handoff: Callable[[], None] | None = None,
        arrived_at: float | None = None,
    ) -> None:
        prompt = question_for(message, await bot.me())
        if prompt is None:
            return
        texts = texts_of(message)
        if not prompt:  # only a mention: say what the bot is for
            await reply(outbox, message, texts.help)
            return
        user_id = message.from_user.id if message.from_user else None
        if user_id is not None and not is_admin and (hit := await limits.admit(user_id)):
            await reply(outbox, message, _limit_text(hit, texts))
            return
        target = chat_target(message)
        question = Question(target, prompt, texts, user_id, author_name(message), arrived_at=arrived_at)
        await runner.start(question, on_queued=handoff, after=media.after_answer_in(outbox, target, texts))

    @router.message()
    async def not_text(message: Message, bot: Bot, outbox: Outbox) -> None:
        if is_private(message.chat) or replies_to(message, await bot.me()):
            await reply(outbox, message, texts_of(message).only_text)

    @router.callback_query()
    async def unknown_button(query: CallbackQuery) -> None:
        """A button from an older version of the bot: answered (by `CallbackAnswers`) and nothing more."""

    return router


def _limit_text(hit: LimitHit, texts: Texts) -> str:
    when = datetime.fromtimestamp(hit.until, UTC).strftime("%H:%M UTC")
    template = texts.rate_limited if hit.kind == "rate" else texts.token_budget_spent
    return template.format(time=when)


limit_text = _limit_text  # the media router's questions and pictures are limited the same way
