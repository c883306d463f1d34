"""`python -m bot chat`, the console chat, run as a real process against the Yandex fake and a real Redis:
through pipes (scripts, `--once`) and in a pseudo-terminal where the interactive behaviour matters."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import struct
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.assistant.modes import builtin_modes
from bot.config import DEFAULT_INSTRUCTIONS, Settings
from bot.keys import RedisKeys
from bot.threads.models import MessageStatus
from bot.threads.store import ThreadStore
from tests.conftest import TEST_REDIS_URL
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import thread_of

SLOW = "A slow answer that takes its time to arrive, word by word, sentence by sentence. " * 12
# CSI and OSC sequences and carriage returns: what is left is the text a person reads.
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\r")


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
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
    }


@pytest.fixture
def store(redis: Redis, redis_prefix: str) -> ThreadStore:
    return ThreadStore(redis, keys=RedisKeys(redis_prefix), ttl_seconds=3600)


async def run(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> Result:
    """The console chat with pipes for stdin and stdout (not a terminal)."""
    # An asyncio subprocess keeps this event loop, and so the fake in it, serving while the chat runs.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        *args,
        env=env,
        cwd=cwd,  # a folder without a .env file
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), timeout=60
    )
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


class Terminal:
    """The console chat in a pseudo-terminal of its own, as a person runs it: keys in, screen out."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self._master = master
        self._raw = bytearray()
        asyncio.get_running_loop().add_reader(master, self._read)

    @classmethod
    async def start(
        cls, env: dict[str, str], cwd: Path, *args: str, rows: int = 40, columns: int = 100
    ) -> Terminal:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

        def controlling_terminal() -> None:  # runs in the child, after setsid: Ctrl-C then reaches it
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "chat",
            *args,
            env=env,
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=controlling_terminal,
        )
        os.close(slave)
        return cls(process, master)

    def _read(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._master)
            return
        self._raw += data

    @property
    def text(self) -> str:
        return ESCAPES.sub("", self._raw.decode("utf-8", errors="replace"))

    @property
    def raw(self) -> str:
        return self._raw.decode("utf-8", errors="replace")

    async def wait_for(self, expected: str, *, after: int = 0, within: float = 30) -> int:
        """Until `expected` shows on the screen after position `after`; where it ends."""
        deadline = time.monotonic() + within
        while (found := self.text.find(expected, after)) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{expected!r} did not show; the screen so far:\n{self.text[after:]}")
            if self.process.returncode is not None:
                await asyncio.sleep(0.1)  # the last output may still be on its way
                if self.text.find(expected, after) < 0:
                    raise AssertionError(f"the chat exited ({self.process.returncode}):\n{self.text}")
            await asyncio.sleep(0.02)
        return found + len(expected)

    def type(self, line: str) -> None:
        os.write(self._master, line.encode() + b"\r")  # Enter sends a carriage return

    def press(self, key: bytes) -> None:
        os.write(self._master, key)

    async def exit_code(self, within: float = 30) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout=within)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)


CTRL_C, CTRL_D = b"\x03", b"\x04"


# ---------------------------------------------------------------------------------------- scripts


async def test_once_answers_into_the_thread_and_the_next_run_continues_it(
    env: dict[str, str], tmp_path: Path, yandex: FakeYandex, store: ThreadStore
) -> None:
    yandex.script("Redis is an **in-memory** store.", "Valkey is its fork.", "A separate thread.")
    first = await run(env, tmp_path, "--once", "What is Redis?")
    assert first.code == 0, first.err
    assert first.out == "Redis is an **in-memory** store.\n", "plain text, as the model wrote it"
    assert "Traceback" not in first.err

    second = await run(env, tmp_path, "--once", "And Valkey?")
    assert second.out == "Valkey is its fork.\n"
    assert [item["content"] for item in yandex.last_input()] == [
        "What is Redis?",
        "Redis is an **in-memory** store.",
        "And Valkey?",
    ]
    thread = await thread_of(store, "console:console")
    assert [(m.role, m.text) for m in thread][-1] == ("assistant", "Valkey is its fork.") and len(thread) == 4

    other = await run(env, tmp_path, "--thread", "ops-2", "--once", "Hello?")
    assert other.out == "A separate thread.\n"
    assert yandex.last_input() == [{"role": "user", "content": "Hello?"}]
    assert len(await thread_of(store, "console:ops-2")) == 2
    assert yandex.requests[-1].body["instructions"] == DEFAULT_INSTRUCTIONS


async def test_once_exits_non_zero_when_the_model_failed(
    env: dict[str, str], tmp_path: Path, yandex: FakeYandex
) -> None:
    yandex.script(Reply(http_status=503))
    result = await run(env, tmp_path, "--once", "anyone?")
    assert result.code == 1
    assert result.out == ""
    assert "The AI service is unavailable right now. Please try again later." in result.err
    assert "Traceback" not in result.err

    yandex.script(Reply(text="Half an answer and then", fail_after=15, failure="disconnect"))
    cut = await run(env, tmp_path, "--once", "go on")
    assert cut.code == 1 and cut.out == "Half an answer \n"
    assert "The answer was interrupted by an error" in cut.err
    assert "RemoteProtocolError" not in cut.err, "the screen says it in words; the log keeps out"


async def test_sources_are_listed_under_the_answer(
    env: dict[str, str], tmp_path: Path, yandex: FakeYandex
) -> None:
    citations = [
        {"type": "file_citation", "file_id": "file-1", "filename": "handbook.pdf", "index": 0},
        {"type": "url_citation", "url": "https://example.com/leave", "title": "Leave policy"},
    ]
    yandex.script(Reply(text="You get 28 days.", citations=citations))
    result = await run(env, tmp_path, "--once", "vacation?")
    assert result.code == 0, result.err
    assert (
        result.out
        == "You get 28 days.\n\nSources:\n1. handbook.pdf\n2. Leave policy — https://example.com/leave\n"
    )


async def test_bad_usage_and_settings_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    assert (await run(env, tmp_path, "--thread", "no spaces please", "--once", "x")).code == 2
    assert (await run(env, tmp_path, "--once", "  ")).code == 2
    helped = await run(env, tmp_path, "--help")
    assert helped.code == 0 and "--thread NAME" in helped.out and "--once QUESTION" in helped.out
    broken = {key: value for key, value in env.items() if key != "YANDEX_FOLDER_ID"}
    result = await run(broken, tmp_path, "--once", "x")
    assert result.code == 2 and "YANDEX_FOLDER_ID" in result.err and "Traceback" not in result.err


async def test_without_redis_url_it_uses_the_embedded_store_like_the_bot(
    env: dict[str, str], tmp_path: Path, yandex: FakeYandex
) -> None:
    yandex.script("From memory.")
    local = {key: value for key, value in env.items() if key != "REDIS_URL"}
    result = await run(local, tmp_path, "--once", "hi")
    assert result.code == 0 and result.out == "From memory.\n"
    assert "REDIS_URL is not set" in result.err


async def test_lines_from_a_pipe_then_the_whole_thread(
    env: dict[str, str], tmp_path: Path, yandex: FakeYandex
) -> None:
    yandex.script("First answer.", "Erste Antwort.")
    lines = "first question\n/mode translator\n\nsecond question\n"
    result = await run(env, tmp_path, stdin=lines)
    assert result.code == 0, result.err
    translator = builtin_modes("").get("translator")
    assert translator is not None and yandex.requests[-1].body["instructions"] == translator.instructions
    out = result.out
    assert out.index("First answer.") < out.index("Mode: translator. It applies from the next question.")
    thread = out[out.index("# Thread “console”") :]
    positions = [thread.index(text) for text in ("first question", "First answer.", "second question")]
    assert positions == sorted(positions) and thread.rstrip().endswith("Erste Antwort.")
    assert thread.count("## You · ") == 2 and thread.count("## Assistant · ") == 2


# ---------------------------------------------------------------------------------------- a terminal


async def test_a_terminal_session_streams_stops_and_prints_the_thread_on_ctrl_d(
    env: dict[str, str], tmp_path: Path, yandex: FakeYandex, store: ThreadStore
) -> None:
    yandex.script(
        Reply(text="# Heading\n\nSome **bold** words and `code`.", chunk_size=6, delay=0.02),
        Reply(text=SLOW, chunk_size=10, delay=0.1),
        "After the stop.",
        "A fresh start.",
    )
    terminal = await Terminal.start(env, tmp_path)
    try:
        at = await terminal.wait_for("› ")
        terminal.type("format something")
        at = await terminal.wait_for("Some bold words and code.", after=at)  # Markdown rendered
        assert "\x1b[1m" in terminal.raw, "in colour and bold on a terminal"
        at = await terminal.wait_for("› ", after=at)

        terminal.type("talk slowly")
        await terminal.wait_for("A slow answer", after=at)
        terminal.press(CTRL_C)
        at = await terminal.wait_for("⏹ Stopped.", after=at)
        await yandex.wait_until(lambda: yandex.closed_by_client == 1, timeout=5)
        assert terminal.process.returncode is None, "Ctrl-C stops the answer, not the program"
        at = await terminal.wait_for("› ", after=at)

        terminal.type("still there?")
        at = await terminal.wait_for("After the stop.", after=at)
        thread = await thread_of(store, "console:console")
        assert [m.text for m in thread][2:4] == ["talk slowly", thread[3].text]
        assert thread[3].status is MessageStatus.INCOMPLETE and SLOW.startswith(thread[3].text)

        terminal.press(CTRL_C)  # nothing running: a reminder, not an exit
        at = await terminal.wait_for("(exit or Ctrl-D leaves; Ctrl-C stops a running answer)", after=at)
        terminal.type("/history")
        at = await terminal.wait_for("Thread “console”", after=at)
        at = await terminal.wait_for("After the stop.", after=at)
        terminal.type("/reset")
        at = await terminal.wait_for("Done: I forgot our conversation.", after=at)
        terminal.type("new subject")
        at = await terminal.wait_for("A fresh start.", after=at)
        await terminal.wait_for("› ", after=at)

        terminal.press(CTRL_D)
        assert await terminal.exit_code() == 0
        final = terminal.text[at:]
        listing = final[final.index("Thread “console”") :]
        assert listing.index("new subject") < listing.index("A fresh start.")
        assert "talk slowly" not in listing, "the thread printed is the one after /reset"
    finally:
        await terminal.close()


async def test_stop_and_reset_typed_during_an_answer_act_at_once(
    env: dict[str, str], tmp_path: Path, yandex: FakeYandex, store: ThreadStore
) -> None:
    yandex.script(
        Reply(text=SLOW, chunk_size=10, delay=0.1), Reply(text=SLOW, chunk_size=10, delay=0.1), "Quick one."
    )
    terminal = await Terminal.start(env, tmp_path, "--thread", "typed")
    try:
        at = await terminal.wait_for("› ")
        terminal.type("/mode")
        at = await terminal.wait_for("✓ assistant — A helpful assistant for any question.", after=at)
        terminal.type("go slowly")
        at = await terminal.wait_for("A slow answer", after=at)
        terminal.type("/stop")  # typed while the answer streams
        at = await terminal.wait_for("⏹ Stopped.", after=at)
        assert [m.role for m in await thread_of(store, "console:typed")] == ["user", "assistant"]

        terminal.type("slowly again")
        at = await terminal.wait_for("A slow answer", after=at)
        terminal.type("/reset")
        at = await terminal.wait_for("Done: I forgot our conversation.", after=at)
        await yandex.wait_until(lambda: yandex.closed_by_client == 2, timeout=5)
        terminal.type("quick?")
        at = await terminal.wait_for("Quick one.", after=at)
        terminal.type("exit")
        assert await terminal.exit_code() == 0
        listing = terminal.text[terminal.text.index("Thread “typed”", at) :]
        assert listing.index("quick?") < listing.index("Quick one.")
        assert "go slowly" not in listing and "slowly again" not in listing
        assert [m.text for m in await thread_of(store, "console:typed")] == ["quick?", "Quick one."]
    finally:
        await terminal.close()


async def test_once_on_a_terminal_renders_markdown(
    env: dict[str, str], tmp_path: Path, yandex: FakeYandex
) -> None:
    yandex.script(
        Reply(text="Use **bold** sparingly.", citations=[{"type": "file_citation", "filename": "style.md"}])
    )
    terminal = await Terminal.start(env, tmp_path, "--once", "style?", columns=60)
    try:
        assert await terminal.exit_code() == 0
        await terminal.wait_for("Use bold sparingly.")
        await terminal.wait_for("Sources:")
        await terminal.wait_for("1. style.md")
    finally:
        await terminal.close()
