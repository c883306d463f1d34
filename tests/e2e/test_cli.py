"""`python -m bot kb ...` run as a real subprocess against the Yandex fake and a real Redis."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.fakes.yandex import FakeYandex

HANDBOOK = "Staff handbook\n\nEmployees get 28 days of paid vacation per year.\n"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def env(yandex: FakeYandex, redis: Redis, redis_prefix: str) -> dict[str, str]:
    # The test's own environment must not leak settings into the child (a stray WEB_SEARCH, say).
    names = {name.upper() for name in Settings.model_fields}
    base = {key: value for key, value in os.environ.items() if key.upper() not in names}
    return {
        **base,
        "YANDEX_BASE_URL": yandex.base_url,
        "YANDEX_API_KEY": yandex.api_key,
        "YANDEX_FOLDER_ID": yandex.folder_id,
        "YANDEX_MAX_RETRIES": "0",
        "BOT_TOKEN": "1:x",
        "REDIS_URL": TEST_REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
    }


async def run(env: dict[str, str], cwd: Path, *args: str) -> Result:
    # An asyncio subprocess keeps this event loop, and so the fake in it, serving while the CLI runs.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,  # a folder without a .env file
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "nested").mkdir(parents=True)
    (folder / "handbook.md").write_text(HANDBOOK)
    (folder / "prices.txt").write_text("Prices\n\nThe basic plan costs 500 roubles a month.\n")
    (folder / "nested" / "policy.pdf").write_text("Refund policy\n\nRefunds are possible within 14 days.\n")
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00")
    return folder


async def test_add_list_search_remove(
    env: dict[str, str], docs: Path, tmp_path: Path, yandex: FakeYandex
) -> None:
    added = await run(env, tmp_path, "kb", "add", str(docs))

    assert added.code == 0, added.err
    assert "skipped" in added.err and "tool.exe" in added.err
    for name in ("handbook.md", "prices.txt", "policy.pdf"):
        lines = [line for line in added.err.splitlines() if name in line]
        assert any("uploading" in line for line in lines), added.err
        assert any("indexing" in line for line in lines), added.err
        assert any(line.endswith("s)") and ": ready (" in line for line in lines), added.err
    assert "3 added, 0 failed, 1 skipped" in added.out
    assert sorted(f.filename for f in yandex.files.values()) == ["handbook.md", "policy.pdf", "prices.txt"]

    listed = await run(env, tmp_path, "kb", "list")
    assert listed.code == 0, listed.err
    for name in ("handbook.md", "prices.txt", "policy.pdf"):
        [line] = [line for line in listed.out.splitlines() if line.startswith(name)]
        assert "ready" in line and " B " in line

    found, missing = await asyncio.gather(  # independent of each other, so at once (each start is slow)
        run(env, tmp_path, "kb", "search", "how", "many", "vacation", "days"),
        run(env, tmp_path, "kb", "remove", "no-such.md"),
    )
    assert found.code == 0, found.err
    assert found.out.splitlines()[0].endswith("handbook.md")
    assert "28 days of paid vacation" in found.out
    assert missing.code == 3
    assert "no-such.md" in missing.err

    removed = await run(env, tmp_path, "kb", "remove", "handbook.md")
    assert removed.code == 0, removed.err
    listed = await run(env, tmp_path, "kb", "list")
    assert "handbook.md" not in listed.out and "prices.txt" in listed.out
    assert yandex.api_key not in added.out + added.err + listed.out + listed.err


async def test_failed_indexing_exits_1(env: dict[str, str], tmp_path: Path, yandex: FakeYandex) -> None:
    yandex.fail_indexing("broken.txt", code="invalid_file", message="The file is not readable text")
    (tmp_path / "good.md").write_text(HANDBOOK)
    (tmp_path / "broken.txt").write_text("\x00\x01")

    result = await run(env, tmp_path, "kb", "add", str(tmp_path / "good.md"), str(tmp_path / "broken.txt"))

    assert result.code == 1
    [line] = [line for line in result.err.splitlines() if "broken.txt: failed" in line]
    assert line.endswith("s): Yandex could not index the file: The file is not readable text")
    assert "1 added, 1 failed, 0 skipped" in result.out


async def test_empty_list_and_search(env: dict[str, str], tmp_path: Path) -> None:
    listed, found = await asyncio.gather(
        run(env, tmp_path, "kb", "list"), run(env, tmp_path, "kb", "search", "anything")
    )
    assert (listed.code, listed.out.strip()) == (0, "The knowledge base is empty.")
    assert (found.code, found.out.strip()) == (0, "Nothing found.")


async def test_bad_usage_and_configuration_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    assert (await run(env, tmp_path, "kb")).code == 2
    assert (await run(env, tmp_path, "kb", "frobnicate")).code == 2

    nowhere = await run(env, tmp_path, "kb", "add", str(tmp_path / "missing"))
    assert nowhere.code == 2 and "no such file or folder" in nowhere.err

    no_folder = {key: value for key, value in env.items() if key != "YANDEX_FOLDER_ID"}
    result = await run(no_folder, tmp_path, "kb", "list")
    assert result.code == 2 and "YANDEX_FOLDER_ID" in result.err

    no_redis = {key: value for key, value in env.items() if key != "REDIS_URL"}
    result = await run(no_redis, tmp_path, "kb", "list")
    assert result.code == 2 and "REDIS_URL" in result.err

    # Plain `python -m bot` still starts the bot: here it stops at the same configuration check.
    result = await run(no_folder, tmp_path)
    assert result.code == 2 and "YANDEX_FOLDER_ID" in result.err
