"""Modes: named presets of the assistant (instructions, optionally a model and a temperature) a chat picks.

They come from the owner's `MODES_FILE` — TOML with one `[[modes]]` table per mode, or YAML with a
top-level `modes:` list, chosen by the file's extension — or, without one, from the built-in set below.
The first mode is the default of every chat that has not picked one. A file is checked completely at
start: every problem is named at once, and the bot does not start with a broken file.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_MODES = 50  # one button each under /mode (Telegram shows at most 100)
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 200
MAX_INSTRUCTIONS_CHARS = 20000
REQUIRED_KEYS = ("name", "description", "instructions")
OPTIONAL_KEYS = ("model", "temperature")
TOML_SUFFIXES = frozenset({".toml"})
YAML_SUFFIXES = frozenset({".yaml", ".yml"})


class ModesError(ValueError):
    """The modes file cannot be used; the message names every problem found."""


@dataclass(frozen=True, slots=True)
class ModeText:
    """How a built-in mode is named and described in one language."""

    title: str
    description: str


@dataclass(frozen=True, slots=True)
class Mode:
    """One preset: `instructions` for the model, optionally its own `model` (name or `gpt://` URI) and
    `temperature`. `translations` name and describe built-in modes in other languages."""

    name: str
    description: str
    instructions: str
    model: str | None = None
    temperature: float | None = None
    translations: Mapping[str, ModeText] = field(default_factory=dict)

    def title(self, language: str) -> str:
        text = self.translations.get(language)
        return text.title if text else self.name

    def about(self, language: str) -> str:
        text = self.translations.get(language)
        return text.description if text else self.description

    @property
    def check(self) -> str:
        """A short digest of the name: a button made for this mode still means it after the file changed."""
        return name_check(self.name)


def name_check(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class ModeBook:
    """The modes a chat can pick, in the owner's order; the first is the default."""

    modes: tuple[Mode, ...]
    source: str  # the file's path, or "built-in"

    def __post_init__(self) -> None:
        if not self.modes:
            raise ModesError("there must be at least one mode")

    @property
    def default(self) -> Mode:
        return self.modes[0]

    def get(self, name: str | None) -> Mode | None:
        """The mode of this exact name (as stored for a chat); None when there is none any more."""
        return next((mode for mode in self.modes if mode.name == name), None)

    def find(self, wanted: str) -> Mode | None:
        """The mode a person typed: its name or, for built-in modes, its title in any language."""
        folded = wanted.strip().casefold()
        for mode in self.modes:
            names = [mode.name, *(text.title for text in mode.translations.values())]
            if any(name.casefold() == folded for name in names):
                return mode
        return None

    def at(self, index: int, check: str) -> Mode | None:
        """The mode a button points at, if the list still has it there (the file may have changed)."""
        if 0 <= index < len(self.modes) and self.modes[index].check == check:
            return self.modes[index]
        return None


# ---------------------------------------------------------------------------------------- the file


def load_modes(path: Path) -> ModeBook:
    """Read and check a modes file; raises ModesError naming every problem."""
    suffix = path.suffix.lower()
    if suffix not in TOML_SUFFIXES | YAML_SUFFIXES:
        raise ModesError(f"{path}: use a .toml, .yaml or .yml file (the extension chooses the format)")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ModesError(f"{path}: cannot be read ({error.strerror or type(error).__name__})") from None
    try:
        if suffix in TOML_SUFFIXES:
            data: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            data = yaml.safe_load(raw)
    except UnicodeDecodeError:
        raise ModesError(f"{path}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ModesError(f"{path}: is not valid TOML: {error}") from None
    except yaml.YAMLError as error:
        raise ModesError(f"{path}: is not valid YAML: {_yaml_problem(error)}") from None
    return parse_modes(data, source=str(path), toml=suffix in TOML_SUFFIXES)


def parse_modes(data: Any, *, source: str, toml: bool = True) -> ModeBook:
    """Check the parsed document (`{"modes": [ {...}, ... ]}`) and build the book from it."""
    shape = "one [[modes]] table per mode" if toml else "a top-level 'modes:' list of mappings"
    if not isinstance(data, dict) or "modes" not in data:
        raise ModesError(f"{source}: expected {shape}")
    problems = [f"unknown top-level key {key!r}" for key in data if key != "modes"]
    entries = data["modes"]
    if not isinstance(entries, list) or not entries:
        raise ModesError(f"{source}: expected {shape}, with at least one mode")
    if len(entries) > MAX_MODES:
        problems.append(f"at most {MAX_MODES} modes (found {len(entries)})")
    modes: list[Mode] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        name, mode, found = _parse_mode(entry)
        label = f"mode {number}" + (f" ({name!r})" if name else "")
        problems.extend(f"{label}: {problem}" for problem in found)
        if name:
            folded = name.casefold()
            if folded in seen:
                problems.append(f"{label}: the name is already used by mode {seen[folded]}")
            seen.setdefault(folded, number)
        if mode is not None:
            modes.append(mode)
    if problems:
        raise ModesError(f"{source} has problems:\n" + "\n".join(f"    {problem}" for problem in problems))
    return ModeBook(tuple(modes), source)


def _parse_mode(entry: Any) -> tuple[str | None, Mode | None, list[str]]:
    """The entry's name (when it has a usable one), its mode (when it has no problems), its problems."""
    if not isinstance(entry, dict):
        return (
            None,
            None,
            ["must be a table (a mapping) of name, description, instructions, model, temperature"],
        )
    problems = [
        f"unknown key {key!r} (known: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)})"
        for key in entry
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS
    ]
    texts: dict[str, str] = {}
    limits = {"name": MAX_NAME_CHARS, "description": MAX_DESCRIPTION_CHARS}
    for key in REQUIRED_KEYS:
        value = entry.get(key)
        if value is None:
            problems.append(f"{key!r} is required")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{key!r} must be a non-empty string")
        else:
            texts[key] = value.strip()
            limit = limits.get(key, MAX_INSTRUCTIONS_CHARS)
            if len(texts[key]) > limit:
                problems.append(f"{key!r} is longer than {limit} characters")
    name = texts.get("name", "")
    if "\n" in name:
        problems.append("'name' must be one line")
    model = entry.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip() or " " in model.strip()):
        problems.append("'model' must be a model name or a gpt:// URI, without spaces")
    temperature = entry.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 1
    ):
        problems.append("'temperature' must be a number from 0 to 1")
    if problems:
        return name or None, None, problems
    return (
        name,
        Mode(
            name=name,
            description=texts["description"],
            instructions=texts["instructions"],
            model=model.strip() if isinstance(model, str) else None,
            temperature=float(temperature) if temperature is not None else None,
        ),
        [],
    )


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


# ---------------------------------------------------------------------------------------- built in

_KNOWLEDGE_ONLY = (
    "Answer only from the owner's documents that the file_search tool finds. Search them for every "
    "question. If they do not contain the answer, say plainly that the knowledge base has no answer to "
    "it and do not answer from general knowledge, even where other instructions would allow it. Answer "
    "in the language of the question."
)


def builtin_modes(assistant_instructions: str) -> ModeBook:
    """The set used without a MODES_FILE: the assistant (ASSISTANT_INSTRUCTIONS) first, then four more."""
    return ModeBook(
        (
            Mode(
                "assistant",
                "A helpful assistant for any question.",
                assistant_instructions,
                translations=_texts("ассистент", "Помощник для любых вопросов."),
            ),
            Mode(
                "translator",
                "Translates your messages (Russian ↔ English, or into the language you name).",
                "You are a translator. Translate each message of the user: Russian text into English, text "
                "in any other language into Russian, unless the user names the target language. Keep the "
                "meaning, tone and formatting; give only the translation, with a short note only where a "
                "phrase has no direct equivalent.",
                temperature=0.2,
                translations=_texts(
                    "переводчик", "Переводит ваши сообщения (русский ↔ английский или на названный язык)."
                ),
            ),
            Mode(
                "editor",
                "Corrects and improves the text you send, keeping its language and meaning.",
                "You are a careful editor. Correct the spelling, grammar and punctuation of the text the "
                "user sends and improve its clarity and style, keeping its language, meaning and voice. "
                "Give the edited text first, then a short list of the main changes.",
                temperature=0.3,
                translations=_texts(
                    "редактор", "Исправляет и улучшает присланный текст, сохраняя язык и смысл."
                ),
            ),
            Mode(
                "code",
                "A programming helper: code, reviews, explanations.",
                "You are an experienced software engineer. Help with programming: write correct, idiomatic "
                "code in fenced code blocks with the language named, explain briefly why it works, point "
                "out bugs and risks in code the user shows, and ask for the missing detail when a question "
                "is ambiguous. Answer in the language of the question.",
                temperature=0.2,
                translations=_texts("код", "Помощник программиста: код, ревью, объяснения."),
            ),
            Mode(
                "kb",
                "Answers only from the knowledge base of the owner's documents.",
                _KNOWLEDGE_ONLY,
                temperature=0.1,
                translations=_texts("база", "Отвечает только по базе знаний — документам владельца."),
            ),
        ),
        "built-in",
    )


def _texts(title_ru: str, description_ru: str) -> Mapping[str, ModeText]:
    return {"ru": ModeText(title_ru, description_ru)}
