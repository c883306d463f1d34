"""Telegram handlers: thin — read the update, pick the thread, hand over to the logic classes.

Dependencies (`runner`, `store`) arrive as aiogram workflow data, set by the composition root.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, ErrorEvent, Message, MessageGenerationStopped

from bot.telegram.history import format_history
from bot.telegram.render import Rendered
from bot.telegram.sending import send_parts
from bot.telegram.surface import STOP_CALLBACK
from bot.telegram.target import ChatTarget
from bot.telegram.texts import Texts, texts_for
from bot.threads.store import ThreadStore
from bot.turns import TurnRunner

log = logging.getLogger(__name__)


def target_of(message: Message) -> ChatTarget:
    """Where the answer to this message goes; forum topics get their own thread."""
    topic = message.message_thread_id if message.is_topic_message else None
    return ChatTarget(
        chat_id=message.chat.id,
        is_private=message.chat.type == "private",
        message_thread_id=topic,
        reply_to_message_id=message.message_id,
    )


def texts_of(message: Message) -> Texts:
    return texts_for(message.from_user.language_code if message.from_user else None)


async def _reply(bot: Bot, message: Message, text: str) -> None:
    await send_parts(bot, target_of(message), [Rendered(text)])


def build_router() -> Router:
    router = Router(name="assistant")

    @router.message(CommandStart())
    async def start(message: Message, bot: Bot) -> None:
        await _reply(bot, message, texts_of(message).start)

    @router.message(Command("help"))
    async def help_(message: Message, bot: Bot) -> None:
        await _reply(bot, message, texts_of(message).help)

    @router.message(Command("history"))
    async def history(message: Message, bot: Bot, store: ThreadStore) -> None:
        target = target_of(message)
        messages = await store.history(target.key)
        await send_parts(bot, target, format_history(messages, texts_of(message)))

    @router.message(Command("reset"))
    async def reset(message: Message, bot: Bot, store: ThreadStore, runner: TurnRunner) -> None:
        key = target_of(message).key
        await runner.stop(key)  # the stopped answer is not saved: its thread is gone by then
        await store.reset(key)
        await _reply(bot, message, texts_of(message).reset_done)

    @router.message(Command("stop"))
    async def stop(message: Message, bot: Bot, runner: TurnRunner) -> None:
        texts = texts_of(message)
        stopped = await runner.stop(target_of(message).key)
        await _reply(bot, message, texts.stopping if stopped else texts.nothing_to_stop)

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
        await _reply(bot, message, texts_of(message).help)

    @router.message(F.text)
    async def question(message: Message, runner: TurnRunner) -> None:
        assert message.text is not None
        await runner.answer(target_of(message), message.text, texts_of(message))

    @router.message()
    async def not_text(message: Message, bot: Bot) -> None:
        await _reply(bot, message, texts_of(message).only_text)

    @router.errors()
    async def on_error(event: ErrorEvent, bot: Bot) -> bool:
        log.error("handler failed on update %s", event.update.update_id, exc_info=event.exception)
        message = event.update.message
        if message is not None:
            try:
                await _reply(bot, message, texts_of(message).internal_error)
            except Exception:  # the chat may be unreachable; the error is already logged
                log.debug("could not tell the user about the error", exc_info=True)
        return True

    return router
