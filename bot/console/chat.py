"""The console chat: questions typed in a terminal, answered by the same turn logic, store and model as
the bot's, in a thread of its own (`console:<name>`, which no Telegram chat key can be)."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import re
import signal
import threading
from collections.abc import Iterator

from bot.core import Core
from bot.target import ChatTarget
from bot.texts import Texts
from bot.threads.chat_settings import MAX_INSTRUCTIONS_CHARS
from bot.turns.profiles import (
    defaults_restored,
    instructions_shown,
    mode_changed,
    mode_listing,
    model_changed,
    overview,
)
from bot.turns.runner import Question
from bot.turns.streaming import StreamOutcome

from .screen import Screen
from .streamer import ConsoleStreamers, NoJournal

log = logging.getLogger(__name__)

THREAD_NAME = re.compile(r"[\w.-]{1,64}")
LEAVE_WORDS = frozenset({"exit", "quit", "/exit", "/quit"})
AT_ONCE = frozenset({"/stop", "/reset"})  # not queued behind the answer being written
RESET_WORDS = frozenset({"reset", "default", "clear", "сброс"})
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STOPPED = 130  # what a shell reports for a program stopped with Ctrl-C


def console_target(thread: str) -> ChatTarget:
    """The ChatTarget of a console thread (the one constructor for the console, as `chat_target` is for
    Telegram); the name must match THREAD_NAME."""
    if not THREAD_NAME.fullmatch(thread):
        raise ValueError("a thread name is 1-64 letters, digits, '.', '_' or '-'")
    return ChatTarget(0, True, console=thread)


class StdinLines:
    """Lines typed on stdin, read by a daemon thread so the event loop never blocks on the terminal.

    The thread reads the file descriptor itself (not `sys.stdin`), so a read still waiting when the
    program leaves holds no lock the interpreter's shutdown would wait for.
    """

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=self._read, name="console-input", daemon=True).start()

    async def next(self) -> str | None:
        """The next line without its newline; None at the end of the input (Ctrl-D)."""
        return await self._queue.get()

    def _put(self, line: str | None) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, line)

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(self._fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                rest = pending + decoder.decode(b"", final=True)
                if rest:
                    self._put(rest)
                self._put(None)
                return
            pending += decoder.decode(chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                self._put(line.removesuffix("\r"))


class ConsoleChat:
    def __init__(self, core: Core, screen: Screen, texts: Texts, *, thread: str) -> None:
        self._core = core
        self._screen = screen
        self._texts = texts
        self._thread = thread
        self._target = console_target(thread)
        self.runner = core.turn_runner(
            ConsoleStreamers(screen), self._notify, journal=NoJournal(), bursts=False
        )
        self._answering = False

    @property
    def key(self) -> str:
        return self._target.key

    async def _notify(self, target: ChatTarget, text: str) -> None:
        self._screen.say(text)

    # ------------------------------------------------------------------ modes of running

    async def once(self, question: str) -> int:
        """Answer one question (in the thread, like any other) and say how it went as an exit code."""
        with self._interrupts_stop_answers():
            outcome = await self.ask(question)
        if outcome is None or outcome.failure is not None:
            return EXIT_FAILED
        return EXIT_STOPPED if outcome.stopped else EXIT_OK

    async def interactive(self, lines: StdinLines) -> int:
        """Questions and commands until `exit` or the end of the input; then the whole thread.

        Lines are taken in the order typed, each after the one before is done — except /stop and
        /reset (and Ctrl-C), which act at once on the answer being written, as they do in Telegram.
        """
        profile = await self._core.profiles.profile(self.key)
        banner = self._texts.console.banner.format(
            thread=self._thread, model=profile.model, store=self._core.store_description
        )
        self._screen.say(banner)
        self._screen.prompt()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        with self._interrupts_stop_answers():
            worker = asyncio.create_task(self._work(queue))
            while True:
                line = await lines.next()
                if line is None or line.strip().casefold() in LEAVE_WORDS:
                    break
                if self._answering and line.strip().casefold() in AT_ONCE:
                    await self.command(line.strip())
                    continue
                queue.put_nowait(line)
            queue.put_nowait(None)
            await worker
        await self.print_thread()
        return EXIT_OK

    async def _work(self, queue: asyncio.Queue[str | None]) -> None:
        while (line := await queue.get()) is not None:
            line = line.strip()
            if line:
                try:
                    await (self.command(line) if line.startswith("/") else self.ask(line))
                except Exception:  # one bad line must not end the session
                    log.exception("the console could not handle a line")
                    self._screen.say(self._texts.internal_error)
            if queue.empty():
                self._screen.prompt()

    # ------------------------------------------------------------------ what a line does

    async def ask(self, prompt: str, *, retry: bool = False) -> StreamOutcome | None:
        self._answering = True
        try:
            return await self.runner.answer(Question(self._target, prompt, self._texts, retry=retry))
        finally:
            self._answering = False

    async def command(self, line: str) -> None:
        name, _, args = line.partition(" ")
        name, args = name.casefold(), args.strip()
        texts, profiles = self._texts, self._core.profiles
        if name == "/help":
            self._screen.say(texts.console.help)
        elif name == "/history":
            await self.print_thread()
        elif name == "/reset":
            await self.runner.stop(self.key)  # the stopped answer is not saved: its thread is gone by then
            await self._core.store.reset(self.key)
            self._screen.say(texts.reset_done)
        elif name == "/stop":
            if not self.runner.stop_local(self.key):
                self._screen.say(texts.nothing_to_stop)
        elif name == "/retry":
            await self.ask("", retry=True)
        elif name == "/mode":
            await self._mode(args)
        elif name == "/model":
            await self._model(args)
        elif name == "/instructions":
            await self._instructions(args)
        elif name == "/settings":
            if args.casefold() in RESET_WORDS:
                await profiles.reset(self.key)
                self._screen.say(defaults_restored(await profiles.profile(self.key), texts))
            else:
                self._screen.say(overview(await profiles.profile(self.key), texts))
        else:
            self._screen.say(texts.console.unknown_command.format(command=name))

    async def _mode(self, wanted: str) -> None:
        profiles, texts = self._core.profiles, self._texts
        if not wanted:
            self._screen.say(mode_listing(await profiles.profile(self.key), profiles.modes, texts))
            return
        mode = profiles.modes.find(wanted)
        if mode is None:
            self._screen.say(texts.settings.mode_unknown.format(name=wanted))
            return
        await profiles.choose_mode(self.key, mode)
        self._screen.say(mode_changed(mode, texts))

    async def _model(self, wanted: str) -> None:
        profiles, texts = self._core.profiles, self._texts
        profile = await profiles.profile(self.key)
        if not profiles.allowed_models:
            self._screen.say(texts.console.models_none.format(model=profile.model))
        elif not wanted:
            choices = [texts.settings.model_default.format(model=profiles.default_model(profile.mode))]
            choices += list(profiles.allowed_models)
            self._screen.say("\n".join([texts.settings.model_title.format(model=profile.model), *choices]))
        elif wanted.casefold() in RESET_WORDS or (found := profiles.find_model(wanted)) is not None:
            await profiles.choose_model(self.key, None if wanted.casefold() in RESET_WORDS else found)
            self._screen.say(model_changed(await profiles.profile(self.key), texts))
        else:
            self._screen.say(texts.settings.model_unknown.format(name=wanted))

    async def _instructions(self, wanted: str) -> None:
        profiles, texts = self._core.profiles, self._texts
        if not wanted:
            self._screen.say(instructions_shown(await profiles.profile(self.key), texts))
        elif wanted.casefold() in RESET_WORDS:
            await profiles.set_instructions(self.key, None)
            self._screen.say(texts.settings.instructions_cleared)
        elif len(wanted) > MAX_INSTRUCTIONS_CHARS:
            self._screen.say(texts.settings.instructions_too_long.format(limit=MAX_INSTRUCTIONS_CHARS))
        else:
            await profiles.set_instructions(self.key, wanted)
            mode = (await profiles.profile(self.key)).mode.title(texts.language)
            self._screen.say(texts.settings.instructions_set.format(mode=mode))

    async def print_thread(self) -> None:
        store = self._core.store
        thread_id = await store.thread_id(self.key)
        messages = [] if thread_id is None else await store.messages(thread_id)
        if not messages:
            self._screen.say(self._texts.history_empty)
            return
        self._screen.thread(
            self._texts.console.thread_title.format(thread=self._thread), messages, self._texts
        )

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _interrupts_stop_answers(self) -> Iterator[None]:
        """Ctrl-C stops the answer being written; with none, it reminds how to leave."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._interrupted)
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    def _interrupted(self) -> None:
        if not self.runner.stop_local(self.key) and not self._answering:
            self._screen.say("")  # off the line the terminal left with ^C
            self._screen.say(self._texts.console.leave_hint)
            self._screen.prompt()
