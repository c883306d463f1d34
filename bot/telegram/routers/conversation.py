"""Questions and their answers: text messages, /stop, /reset, and everything that is not text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message, MessageGenerationStopped

from bot.telegram.addressing import author_name, is_private, question_for, replies_to
from bot.telegram.routers.common import reply, target_of, texts_of
from bot.telegram.surface import STOP_CALLBACK
from bot.telegram.target import ChatTarget
from bot.telegram.texts import Texts, texts_for
from bot.threads.limits import LimitHit, UsageLimits
from bot.threads.store import ThreadStore
from bot.turns import Question, TurnRunner


def router() -> Router:
    router = Router(name="conversation")

    @router.message(Command("reset"))
    async def reset(message: Message, bot: Bot, store: ThreadStore, runner: TurnRunner) -> None:
        key = target_of(message).key
        await runner.stop(key)  # the stopped answer is not saved: its thread is gone by then
        await store.reset(key)
        await reply(bot, message, texts_of(message).reset_done)

    @router.message(Command("stop"))
    async def stop(message: Message, bot: Bot, runner: TurnRunner) -> None:
        texts = texts_of(message)
        stopped = await runner.stop(target_of(message).key)
        await reply(bot, message, texts.stopping if stopped else texts.nothing_to_stop)

    @router.callback_query(F.data == STOP_CALLBACK)
    async def stop_button(query: CallbackQuery, runner: TurnRunner) -> None:
        texts = texts_for(query.from_user.language_code)
        message = query.message
        stopped = False
        if isinstance(message, Message):
            stopped = await runner.stop(target_of(message).key)
        await query.answer(texts.stopping if stopped else texts.nothing_to_stop)

    @router.stopped_message_generation()
    async def stop_draft(event: MessageGenerationStopped, runner: TurnRunner) -> None:
        target = ChatTarget(event.chat.id, event.chat.type == "private", event.message_thread_id)
        await runner.stop(target.key)

    @router.message(F.text.startswith("/"))
    async def unknown_command(message: Message, bot: Bot) -> None:
        # In groups a bare /command may be for another bot; answer only what is clearly ours.
        me = await bot.me()
        command = (message.text or "").split(maxsplit=1)[0]
        if is_private(message) or command.lower().endswith(f"@{(me.username or '').lower()}"):
            await reply(bot, message, texts_of(message).help)

    @router.message(F.text)
    async def question(
        message: Message,
        bot: Bot,
        runner: TurnRunner,
        limits: UsageLimits,
        is_admin: bool,
        handoff: Callable[[], None] | None = None,
    ) -> None:
        text = question_for(message, await bot.me())
        if text is None:
            return
        texts = texts_of(message)
        if not text:  # only a mention: say what the bot is for
            await reply(bot, message, texts.help)
            return
        user_id = message.from_user.id if message.from_user else None
        if user_id is not None and not is_admin and (hit := await limits.admit(user_id)):
            await reply(bot, message, _limit_text(hit, texts))
            return
        question = Question(target_of(message), text, texts, user_id, author_name(message))
        await runner.answer(question, on_queued=handoff)

    @router.message()
    async def not_text(message: Message, bot: Bot) -> None:
        if is_private(message) or replies_to(message, await bot.me()):
            await reply(bot, message, texts_of(message).only_text)

    @router.callback_query()
    async def unknown_button(query: CallbackQuery) -> None:
        # A button from an older version of the bot: answer it, or the user's client spins for a while.
        await query.answer()

    return router


def _limit_text(hit: LimitHit, texts: Texts) -> str:
    when = datetime.fromtimestamp(hit.until, UTC).strftime("%H:%M UTC")
    template = texts.rate_limited if hit.kind == "rate" else texts.token_budget_spent
    return template.format(time=when)
