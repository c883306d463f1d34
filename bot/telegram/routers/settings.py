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
from bot.turns.profiles import ChatProfile, ChatProfiles

RESET_WORDS = frozenset({"reset", "default", "clear", "сброс"})
INSTRUCTIONS_PREVIEW = 600
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
        await reply(outbox, message, _mode_set(chosen.title(texts.language), texts))

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
        callback_answer.text = _mode_set(chosen.title(texts.language), texts)
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
        await reply(outbox, message, _model_set(profile.model, texts))

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
        callback_answer.text = _model_set(profile.model, texts)
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
        mode_title = profile.mode.title(texts.language)
        if not wanted:
            if profile.own_instructions is None:
                await reply(outbox, message, texts.settings.instructions_none)
            else:
                shown = texts.settings.instructions_show.format(
                    mode=mode_title, text=profile.own_instructions
                )
                await reply(outbox, message, shown)
            return
        if not await _may_change(message, outbox, chat_admins, is_admin, texts):
            return
        if wanted.casefold() in RESET_WORDS:
            await profiles.set_instructions(target.key, None)
            await reply(outbox, message, texts.settings.instructions_cleared)
        elif len(wanted) > MAX_INSTRUCTIONS_CHARS:
            await reply(
                outbox, message, texts.settings.instructions_too_long.format(limit=MAX_INSTRUCTIONS_CHARS)
            )
        else:
            await profiles.set_instructions(target.key, wanted)
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
            profile = await profiles.profile(target.key)
            done = texts.settings.reset_done.format(
                mode=profile.mode.title(texts.language), model=profile.model
            )
            await reply(outbox, message, done)
            return
        await reply(outbox, message, _overview(await profiles.profile(target.key), texts))

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


def _mode_set(title: str, texts: Texts) -> str:
    return texts.settings.mode_set.format(mode=title, applies=texts.settings.applies_next)


def _model_set(model: str, texts: Texts) -> str:
    return texts.settings.model_set.format(model=model, applies=texts.settings.applies_next)


def _mode_listing(
    profile: ChatProfile, profiles: ChatProfiles, texts: Texts
) -> tuple[str, InlineKeyboardMarkup]:
    language, words = texts.language, texts.settings
    lines = [words.mode_title.format(mode=profile.mode.title(language)), ""]
    keyboard = InlineKeyboardBuilder()
    for index, mode in enumerate(profiles.modes.modes):
        current = mode.name == profile.mode.name
        mark = words.current_mark if current else "•"
        lines.append(
            words.mode_entry.format(mark=mark, title=mode.title(language), description=mode.about(language))
        )
        label = f"{words.current_mark} {mode.title(language)}" if current else mode.title(language)
        keyboard.button(text=label[:64], callback_data=ModePick(index=index, check=mode.check))
    keyboard.adjust(2)
    return "\n".join(lines)[:4000], keyboard.as_markup()


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


def _overview(profile: ChatProfile, texts: Texts) -> str:
    words, language = texts.settings, texts.language
    own = profile.own_instructions
    if own is not None and len(own) > INSTRUCTIONS_PREVIEW:
        own = own[:INSTRUCTIONS_PREVIEW].rstrip() + "…"
    return words.overview.format(
        mode=profile.mode.title(language),
        description=profile.mode.about(language),
        model=profile.model,
        temperature=f"{profile.temperature:g}",
        instructions=own or words.own_none,
    )
