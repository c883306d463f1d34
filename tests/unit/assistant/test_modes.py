"""Modes: the owner's MODES_FILE (TOML or YAML, checked completely at start) and the built-in set."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.assistant.modes import MAX_MODES, ModeBook, ModesError, builtin_modes, load_modes

TOML = """
[[modes]]
name = "support"
description = "Answers customers politely"
instructions = "You answer customers of ACME."
model = "yandexgpt-5-lite"
temperature = 0.2

[[modes]]
name = "Lawyer"
description = "Careful legal wording"
instructions = "You are a careful lawyer."
"""

YAML = """
modes:
  - name: support
    description: Answers customers politely
    instructions: |
      You answer customers of ACME.
    model: gpt://b1gother/qwen3-235b-a22b-fp8
    temperature: 0
  - name: Lawyer
    description: Careful legal wording
    instructions: You are a careful lawyer.
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_file_gives_its_modes_in_order(tmp_path: Path) -> None:
    book = load_modes(write(tmp_path, "modes.toml", TOML))
    assert [mode.name for mode in book.modes] == ["support", "Lawyer"]
    support = book.default
    assert support.model == "yandexgpt-5-lite" and support.temperature == 0.2
    assert support.instructions == "You answer customers of ACME."
    assert book.modes[1].model is None and book.modes[1].temperature is None
    assert book.source.endswith("modes.toml")


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_a_yaml_file_gives_the_same_modes(tmp_path: Path, suffix: str) -> None:
    book = load_modes(write(tmp_path, f"modes{suffix}", YAML))
    assert [mode.name for mode in book.modes] == ["support", "Lawyer"]
    assert book.default.model == "gpt://b1gother/qwen3-235b-a22b-fp8"
    assert book.default.temperature == 0.0
    assert book.default.instructions == "You answer customers of ACME."  # the block's newline is trimmed


def test_every_problem_of_a_file_is_named_at_once(tmp_path: Path) -> None:
    broken = """
[[modes]]
name = "support"
description = ""
instructions = "x"
temprature = 3

[[modes]]
name = "SUPPORT"
description = "again"
instructions = "y"
temperature = 1.5
model = "two words"

[[modes]]
description = "no name"
instructions = "z"
"""
    with pytest.raises(ModesError) as caught:
        load_modes(write(tmp_path, "modes.toml", broken))
    message = str(caught.value)
    for expected in (
        "mode 1 ('support'): unknown key 'temprature'",
        "mode 1 ('support'): 'description' must be a non-empty string",
        "mode 2 ('SUPPORT'): 'temperature' must be a number from 0 to 1",
        "mode 2 ('SUPPORT'): 'model' must be a model name or a gpt:// URI",
        "mode 2 ('SUPPORT'): the name is already used by mode 1",
        "mode 3: 'name' is required",
    ):
        assert expected in message, message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("modes.toml", "[[modes]]\nname = 'x'\ndescription = ", "is not valid TOML"),
        ("modes.yaml", "modes:\n  - name: x\n   bad: [", "is not valid YAML"),
        ("modes.yaml", "- name: x\n", "expected a top-level 'modes:' list"),
        ("modes.toml", "title = 'no modes'\n", "expected one [[modes]] table per mode"),
        ("modes.yaml", "modes: []\n", "with at least one mode"),
        ("modes.yaml", "modes:\n  - just a string\n", "must be a table"),
        ("modes.json", "{}", "use a .toml, .yaml or .yml file"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    with pytest.raises(ModesError) as caught:
        load_modes(write(tmp_path, name, text))
    assert expected in str(caught.value)


def test_a_yaml_syntax_error_says_where(tmp_path: Path) -> None:
    with pytest.raises(ModesError, match=r"line \d+, column \d+"):
        load_modes(write(tmp_path, "modes.yaml", "modes:\n  - name: x\n   bad: [\n"))


def test_a_missing_file_and_too_many_modes(tmp_path: Path) -> None:
    with pytest.raises(ModesError, match="cannot be read"):
        load_modes(tmp_path / "nowhere.toml")
    many = "".join(
        f"[[modes]]\nname = 'm{n}'\ndescription = 'd'\ninstructions = 'i'\n" for n in range(MAX_MODES + 1)
    )
    with pytest.raises(ModesError, match=f"at most {MAX_MODES} modes"):
        load_modes(write(tmp_path, "modes.toml", many))


def test_the_built_in_set_speaks_english_and_russian() -> None:
    book = builtin_modes("Be helpful.")
    assert [mode.name for mode in book.modes] == ["assistant", "translator", "editor", "code", "kb"]
    assistant = book.default
    assert assistant.instructions == "Be helpful." and assistant.temperature is None
    assert assistant.title("en") == "assistant" and assistant.title("ru") == "ассистент"
    assert book.get("translator") is not None and book.get("translator").about("ru").startswith("Переводит")  # type: ignore[union-attr]
    assert "do not answer from general knowledge" in book.modes[-1].instructions


def test_modes_are_found_by_name_or_title_and_buttons_by_place_and_name() -> None:
    book = builtin_modes("x")
    assert book.find("Translator") is book.modes[1]
    assert book.find(" переводчик ") is book.modes[1]
    assert book.find("nothing") is None
    editor = book.modes[2]
    assert book.at(2, editor.check) is editor
    assert book.at(2, book.modes[1].check) is None, "a button of a changed file must not pick another mode"
    assert book.at(99, editor.check) is None
    with pytest.raises(ModesError):
        ModeBook((), "empty")
