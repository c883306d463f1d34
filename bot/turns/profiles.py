"""A chat's assistant: its stored choices resolved against the modes and the owner's lists of models.

Precedence, per answer: the model the chat picked (while ALLOWED_MODELS still lists it), else its mode's
model, else YANDEX_MODEL; the mode's temperature, else TEMPERATURE; the mode's instructions with the
chat's own instructions after them. A stored mode or model the owner has since removed falls back to the
default, so a changed MODES_FILE never breaks a chat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.assistant.client import RequestOptions
from bot.assistant.modes import Mode, ModeBook
from bot.texts import Texts
from bot.threads.chat_settings import ChatSettings, ChatSettingsStore

OWN_INSTRUCTIONS_HEADER = "Additional instructions for this chat, set by its members:"
INSTRUCTIONS_PREVIEW = 600


@dataclass(frozen=True, slots=True)
class ChatProfile:
    """What a chat's answers are made with, and what the chat chose to get there."""

    chosen: ChatSettings
    mode: Mode
    model: str  # as the owner wrote it: an ALLOWED_MODELS entry, the mode's model or YANDEX_MODEL
    model_uri: str
    temperature: float
    own_instructions: str | None

    @property
    def model_chosen(self) -> bool:
        """Whether the model is the chat's own pick rather than its mode's or the bot's default."""
        return self.chosen.model is not None and self.chosen.model == self.model

    @property
    def instructions(self) -> str:
        if not self.own_instructions:
            return self.mode.instructions
        return f"{self.mode.instructions}\n\n{OWN_INSTRUCTIONS_HEADER}\n{self.own_instructions}"

    def request_options(self) -> RequestOptions:
        return RequestOptions(
            model=self.model_uri, instructions=self.instructions, temperature=self.temperature
        )


class ChatProfiles:
    """Reads and changes chats' choices; `options(chat_key)` is what `TurnRunner` asks before each answer."""

    def __init__(
        self,
        store: ChatSettingsStore,
        *,
        modes: ModeBook,
        allowed_models: tuple[str, ...],
        default_model: str,
        default_temperature: float,
        model_uri: Callable[[str], str],
    ) -> None:
        self._store = store
        self.modes = modes
        self.allowed_models = allowed_models
        self._default_model = default_model
        self._default_temperature = default_temperature
        self._model_uri = model_uri

    async def profile(self, chat_key: str) -> ChatProfile:
        chosen = await self._store.get(chat_key)
        mode = self.modes.get(chosen.mode) or self.modes.default
        model = chosen.model if chosen.model in self.allowed_models else None
        model = model or self.default_model(mode)
        temperature = self._default_temperature if mode.temperature is None else mode.temperature
        return ChatProfile(chosen, mode, model, self._model_uri(model), temperature, chosen.instructions)

    async def options(self, chat_key: str) -> RequestOptions:
        return (await self.profile(chat_key)).request_options()

    def default_model(self, mode: Mode) -> str:
        """The model a chat in this mode uses when it has not picked one."""
        return mode.model or self._default_model

    def find_model(self, wanted: str) -> str | None:
        """The ALLOWED_MODELS entry a person typed: the entry itself or its full URI, any letter case."""
        folded = wanted.strip().casefold()
        for model in self.allowed_models:
            if folded in (model.casefold(), self._model_uri(model).casefold()):
                return model
        return None

    async def choose_mode(self, chat_key: str, mode: Mode) -> None:
        await self._store.set_mode(chat_key, mode.name)

    async def choose_model(self, chat_key: str, model: str | None) -> None:
        """Pick an ALLOWED_MODELS entry; None goes back to the mode's (or the bot's) model."""
        if model is not None and model not in self.allowed_models:
            raise ValueError(f"{model!r} is not in ALLOWED_MODELS")
        await self._store.set_model(chat_key, model)

    async def set_instructions(self, chat_key: str, instructions: str | None) -> None:
        await self._store.set_instructions(chat_key, instructions)

    async def reset(self, chat_key: str) -> None:
        await self._store.clear(chat_key)


# ---------------------------------------------------------------------------------------- shown to people
# The same words in Telegram and in the console chat.


def mode_listing(profile: ChatProfile, modes: ModeBook, texts: Texts) -> str:
    """The modes, one a line with its description, the chat's current one marked."""
    words, language = texts.settings, texts.language
    lines = [words.mode_title.format(mode=profile.mode.title(language)), ""]
    for mode in modes.modes:
        mark = words.current_mark if mode.name == profile.mode.name else "•"
        lines.append(
            words.mode_entry.format(mark=mark, title=mode.title(language), description=mode.about(language))
        )
    return "\n".join(lines)


def mode_changed(mode: Mode, texts: Texts) -> str:
    return texts.settings.mode_set.format(
        mode=mode.title(texts.language), applies=texts.settings.applies_next
    )


def model_changed(profile: ChatProfile, texts: Texts) -> str:
    return texts.settings.model_set.format(model=profile.model, applies=texts.settings.applies_next)


def instructions_shown(profile: ChatProfile, texts: Texts) -> str:
    if profile.own_instructions is None:
        return texts.settings.instructions_none
    mode = profile.mode.title(texts.language)
    return texts.settings.instructions_show.format(mode=mode, text=profile.own_instructions)


def overview(profile: ChatProfile, texts: Texts) -> str:
    """/settings: the mode, model, temperature and own instructions (shortened) of the chat."""
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


def defaults_restored(profile: ChatProfile, texts: Texts) -> str:
    return texts.settings.reset_done.format(mode=profile.mode.title(texts.language), model=profile.model)
