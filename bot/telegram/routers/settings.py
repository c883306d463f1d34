"""The chat's own assistant: /mode and /model (lists with buttons), /instructions, /settings.

Anyone may look; in groups only the chat's admins may change (see `ChatAdmins`). Changes are stored per
chat key, so each forum topic has its own, and apply from the next question.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.assistant.modes import name_check
from bot.target import ChatTarget
from bot.telegram.chat_admins import AdminCheckFailed, ChatAdmins
from bot.telegram.render import Rendered
from bot.telegram.routers.common import reply, texts_of
from bot.telegram.sender import Outbox
from bot.telegram.targets import chat_target
from bot.texts import Texts, texts_for
from bot.threads.chat_settings import MAX_INSTRUCTIONS_CHARS
from bot.turns.profiles import (
    ChatProfile,
    ChatProfiles,
    defaults_restored,
    instructions_shown,
    mode_changed,
    mode_listing,
    model_changed,
    overview,
)

RESET_WORDS = frozenset({"reset", "default", "clear", "сброс"})
DEFAULT_MODEL_INDEX = -1


class ModePick(CallbackData, prefix="mode"):
    """A mode button: the mode's place in the list and a digest of its name (the file may change)."""

    index: int
    check: str


class ModelPick(CallbackData, prefix="model"):
    """A model button: its place in ALLOWED_MODELS (-1: the default) and a digest of the entry."""

    index: int
    check: str


def router() -> Router:
    router = Router(name="settings")

    @router.message(Command("mode"))
    async def mode(
        message: Message,
        command: CommandObject,
        outbox: Outbox,
        profiles: ChatProfiles,
        chat_admins: ChatAdmins,
        is_admin: bool,
    ) -> None:
        texts, target = texts_of(message), chat_target(message)
        wanted = (command.args or "").strip()
        if not wanted:
            text, markup = _mode_listing(await profiles.profile(target.key), profiles, texts)
            await outbox.to(target).send(Rendered(text), markup=markup)
            return
        if not await _may_change(message, outbox, chat_admins, is_admin, texts):
            return
        chosen = profiles.modes.find(wanted)
        if chosen is None:
            await reply(outbox, message, texts.settings.mode_unknown.format(name=wanted))
            return
        await profiles.choose_mode(target.key, chosen)
        await reply(outbox, message, mode_changed(chosen, texts))

    @router.callback_query(ModePick.filter())
    async def mode_button(
        query: CallbackQuery,
        callback_data: ModePick,
        callback_answer: CallbackAnswer,
        outbox: Outbox,
        profiles: ChatProfiles,
        chat_admins: ChatAdmins,
        is_admin: bool,
    ) -> None:
        texts = texts_for(query.from_user.language_code)
        if (target := await _press_target(query, callback_answer, chat_admins, is_admin, texts)) is None:
            return
        chosen = profiles.modes.at(callback_data.index, callback_data.check)
        if chosen is None:
            callback_answer.text, callback_answer.show_alert = texts.settings.stale_list, True
            return
        await profiles.choose_mode(target.key, chosen)
        callback_answer.text = mode_changed(chosen, texts)
        text, markup = _mode_listing(await profiles.profile(target.key), profiles, texts)
        assert query.message is not None
        await outbox.to(target).edit(query.message.message_id, Rendered(text), markup=markup)

    @router.message(Command("model"))
    async def model(
        message: Message,
        command: CommandObject,
        outbox: Outbox,
        profiles: ChatProfiles,
        chat_admins: ChatAdmins,
        is_admin: bool,
    ) -> None:
        texts, target = texts_of(message), chat_target(message)
        wanted = (command.args or "").strip()
        profile = await profiles.profile(target.key)
        if not profiles.allowed_models:
            await reply(outbox, message, texts.settings.model_no_choice.format(model=profile.model))
            return
        if not wanted:
            text, markup = _model_listing(profile, profiles, texts)
            await outbox.to(target).send(Rendered(text), markup=markup)
            return
        if not await _may_change(message, outbox, chat_admins, is_admin, texts):
            return
        if wanted.casefold() in RESET_WORDS:
            await profiles.choose_model(target.key, None)
        elif (found := profiles.find_model(wanted)) is not None:
            await profiles.choose_model(target.key, found)
        else:
            await reply(outbox, message, texts.settings.model_unknown.format(name=wanted))
            return
        profile = await profiles.profile(target.key)
        await reply(outbox, message, model_changed(profile, texts))

    @router.callback_query(ModelPick.filter())
    async def model_button(
        query: CallbackQuery,
        callback_data: ModelPick,
        callback_answer: CallbackAnswer,
        outbox: Outbox,
        profiles: ChatProfiles,
        chat_admins: ChatAdmins,
        is_admin: bool,
    ) -> None:
        texts = texts_for(query.from_user.language_code)
        if (target := await _press_target(query, callback_answer, chat_admins, is_admin, texts)) is None:
            return
        index, allowed = callback_data.index, profiles.allowed_models
        if index == DEFAULT_MODEL_INDEX and callback_data.check == name_check(""):
            await profiles.choose_model(target.key, None)
        elif 0 <= index < len(allowed) and name_check(allowed[index]) == callback_data.check:
            await profiles.choose_model(target.key, allowed[index])
        else:
            callback_answer.text, callback_answer.show_alert = texts.settings.stale_list, True
            return
        profile = await profiles.profile(target.key)
        callback_answer.text = model_changed(profile, texts)
        text, markup = _model_listing(profile, profiles, texts)
        assert query.message is not None
        await outbox.to(target).edit(query.message.message_id, Rendered(text), markup=markup)

    @router.message(Command("instructions"))
    async def instructions(
        message: Message,
        command: CommandObject,
        outbox: Outbox,
        profiles: ChatProfiles,
        chat_admins: ChatAdmins,
        is_admin: bool,
    ) -> None:
        texts, target = texts_of(message), chat_target(message)
        wanted = (command.args or "").strip()
        profile = await profiles.profile(target.key)
        if not wanted:
            await reply(outbox, message, instructions_shown(profile, texts))
            return
        if not await _may_change(message, outbox, chat_admins, is_admin, texts):
            return
        if wanted.casefold() in RESET_WORDS:
            await profiles.set_instructions(target.key, None)
            await reply(outbox, message, texts.settings.instructions_cleared)
        elif len(wanted) > MAX_INSTRUCTIONS_CHARS:
            too_long = texts.settings.instructions_too_long.format(limit=MAX_INSTRUCTIONS_CHARS)
            await reply(outbox, message, too_long)
        else:
            await profiles.set_instructions(target.key, wanted)
            mode_title = profile.mode.title(texts.language)
            await reply(outbox, message, texts.settings.instructions_set.format(mode=mode_title))

    @router.message(Command("settings"))
    async def settings(
        message: Message,
        command: CommandObject,
        outbox: Outbox,
        profiles: ChatProfiles,
        chat_admins: ChatAdmins,
        is_admin: bool,
    ) -> None:
        texts, target = texts_of(message), chat_target(message)
        wanted = (command.args or "").strip().casefold()
        if wanted in RESET_WORDS:
            if not await _may_change(message, outbox, chat_admins, is_admin, texts):
                return
            await profiles.reset(target.key)
            done = defaults_restored(await profiles.profile(target.key), texts)
            await reply(outbox, message, done)
            return
        await reply(outbox, message, overview(await profiles.profile(target.key), texts))

    return router


async def _may_change(
    message: Message, outbox: Outbox, chat_admins: ChatAdmins, is_admin: bool, texts: Texts
) -> bool:
    """Whether the message's author may change the settings; if not, they are told why."""
    try:
        allowed = await chat_admins.may_configure(
            message.chat, message.from_user, sender_chat=message.sender_chat, bot_admin=is_admin
        )
    except AdminCheckFailed:
        await reply(outbox, message, texts.settings.admin_check_failed)
        return False
    if not allowed:
        await reply(outbox, message, texts.settings.admins_only)
    return allowed


async def _press_target(
    query: CallbackQuery,
    callback_answer: CallbackAnswer,
    chat_admins: ChatAdmins,
    is_admin: bool,
    texts: Texts,
) -> ChatTarget | None:
    """Where a settings button was pressed, if its presser may change the settings there."""
    target = chat_target(query)
    if target is None or not isinstance(query.message, Message):
        callback_answer.text, callback_answer.show_alert = texts.settings.stale_list, True
        return None
    try:
        allowed = await chat_admins.may_configure(query.message.chat, query.from_user, bot_admin=is_admin)
    except AdminCheckFailed:
        callback_answer.text, callback_answer.show_alert = texts.settings.admin_check_failed, True
        return None
    if not allowed:
        callback_answer.text, callback_answer.show_alert = texts.settings.admins_only, True
        return None
    return target


def _mode_listing(
    profile: ChatProfile, profiles: ChatProfiles, texts: Texts
) -> tuple[str, InlineKeyboardMarkup]:
    keyboard = InlineKeyboardBuilder()
    for index, mode in enumerate(profiles.modes.modes):
        title = mode.title(texts.language)
        label = f"{texts.settings.current_mark} {title}" if mode.name == profile.mode.name else title
        keyboard.button(text=label[:64], callback_data=ModePick(index=index, check=mode.check))
    keyboard.adjust(2)
    return mode_listing(profile, profiles.modes, texts)[:4000], keyboard.as_markup()


def _model_listing(
    profile: ChatProfile, profiles: ChatProfiles, texts: Texts
) -> tuple[str, InlineKeyboardMarkup]:
    words = texts.settings
    keyboard = InlineKeyboardBuilder()
    default = profiles.default_model(profile.mode)
    choices = [(DEFAULT_MODEL_INDEX, "", words.model_default.format(model=default), not profile.model_chosen)]
    for index, model in enumerate(profiles.allowed_models):
        choices.append((index, model, model, profile.model_chosen and model == profile.model))
    for index, entry, label, current in choices:
        shown = f"{words.current_mark} {label}" if current else label
        keyboard.button(text=shown[:64], callback_data=ModelPick(index=index, check=name_check(entry)))
    keyboard.adjust(1)
    return words.model_title.format(model=profile.model), keyboard.as_markup()
