"""Questions and their answers: text messages, /stop, /reset, and everything that is not text."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message, MessageGenerationStopped

from bot.telegram.routers.common import reply, target_of, texts_of
from bot.telegram.surface import STOP_CALLBACK
from bot.telegram.target import ChatTarget
from bot.telegram.texts import texts_for
from bot.threads.store import ThreadStore
from bot.turns import TurnRunner


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
        await reply(bot, message, texts_of(message).help)

    @router.message(F.text)
    async def question(message: Message, runner: TurnRunner) -> None:
        assert message.text is not None
        await runner.answer(target_of(message), message.text, texts_of(message))

    @router.message()
    async def not_text(message: Message, bot: Bot) -> None:
        await reply(bot, message, texts_of(message).only_text)

    return router
