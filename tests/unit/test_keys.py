"""The Redis keys: one module builds them all, and the README's table lists exactly those."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from bot.keys import CATALOGUE, RedisKeys

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_key_table() -> list[tuple[str, str]]:
    """The rows of the README's "Redis keys" table: (key shape, meaning)."""
    text = README.read_text()
    section = text[text.index("Redis keys (under `REDIS_PREFIX`)") :]
    rows = []
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] not in ("key", "---"):
            rows.append((cells[0].strip("`"), cells[1]))
    return rows


def test_the_readme_lists_exactly_the_catalogue() -> None:
    assert readme_key_table() == list(CATALOGUE)


def shape_pattern(shape: str) -> re.Pattern[str]:
    """`chat:<chat key>:thread` → a pattern in which each placeholder stands for anything."""
    parts = re.split(r"(<[^>]+>)", shape)
    return re.compile("".join(".+" if part.startswith("<") else re.escape(part) for part in parts))


def test_every_key_builder_is_one_row_of_the_catalogue() -> None:
    keys = RedisKeys("p:")
    patterns = {shape: shape_pattern(shape) for shape, _ in CATALOGUE}
    covered = set()
    for name, member in inspect.getmembers(RedisKeys):
        if name.startswith("_") or name == "prefix":
            continue
        if isinstance(member, property):
            key = getattr(keys, name)
        else:
            parameters = [
                parameter for parameter in inspect.signature(member).parameters if parameter != "self"
            ]
            key = getattr(keys, name)(*(f"x{index}" for index, _ in enumerate(parameters)))
        assert key.startswith("p:"), name
        [shape] = [shape for shape, pattern in patterns.items() if pattern.fullmatch(key.removeprefix("p:"))]
        covered.add(shape)
    assert covered == set(patterns), "every catalogue row has its builder"
