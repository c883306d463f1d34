"""`python -m bot chat [--thread NAME] [--once QUESTION]`: the console chat's command line.

Exit codes: 0 done, 1 the model failed (`--once`) or Redis could not be reached, 2 bad usage or
configuration, 130 the answer was stopped with Ctrl-C (`--once`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence

from bot.config import Settings, SettingsError, load_settings

EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot chat",
        description="Chat with the assistant in a terminal: the bot's settings, store and model.",
    )
    parser.add_argument(
        "--thread",
        default="console",
        metavar="NAME",
        help="the conversation to continue (default: console); kept in Redis across runs",
    )
    parser.add_argument("--once", metavar="QUESTION", help="answer this one question and exit (for scripts)")
    return parser


def main(argv: Sequence[str]) -> int:
    """`argv` is what follows `python -m bot chat`; returns the exit code."""
    from bot.console.chat import THREAD_NAME

    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as stop:  # argparse exits on --help (0) and on bad usage (2)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if not THREAD_NAME.fullmatch(args.thread):
        print("error: --thread: 1-64 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return EXIT_USAGE
    if args.once is not None and not args.once.strip():
        print("error: --once: the question is empty", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE

    from bot.logs import configure_logging

    # The terminal is the conversation: the log keeps to warnings unless debugging is asked for, and
    # an answer's failure is left to the screen, which says it in words.
    debug = settings.log_level == "DEBUG"
    redactor = configure_logging("DEBUG" if debug else "WARNING", settings.secrets())
    if not debug:
        logging.getLogger("bot.turns.runner").setLevel(logging.ERROR)
    return asyncio.run(_run(settings, args.thread, args.once, on_secret=redactor.add))


async def _run(
    settings: Settings, thread: str, once: str | None, *, on_secret: Callable[[str], None] | None = None
) -> int:
    from redis.exceptions import RedisError
    from rich.console import Console

    from bot.assistant.token_sources import CredentialError
    from bot.console.chat import ConsoleChat, StdinLines
    from bot.console.screen import PlainScreen, RichScreen, Screen
    from bot.core import build_core
    from bot.texts import texts_for

    core = build_core(settings, on_secret=on_secret)
    texts = texts_for(_language())
    screen: Screen = RichScreen(Console()) if sys.stdout.isatty() else PlainScreen(sys.stdout, sys.stderr)
    try:
        try:
            await core.redis.ping()
        except (RedisError, OSError) as error:
            print(f"error: the store ({core.store_description}) is unreachable: {error}", file=sys.stderr)
            return EXIT_FAILED
        try:
            await core.yandex.start()  # the first token; renewed before it expires from here on
        except CredentialError as error:
            credentials = core.yandex.credentials
            print(f"error: no Yandex credential ({credentials.describe()}): {error}", file=sys.stderr)
            return EXIT_FAILED
        chat = ConsoleChat(core, screen, texts, thread=thread)
        if once is not None:
            return await chat.once(once)
        return await chat.interactive(StdinLines())
    finally:
        await core.aclose()
        logging.shutdown()


def _language() -> str | None:
    """The terminal's language (LC_ALL, LC_MESSAGES, LANG: `ru_RU.UTF-8` → `ru`)."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if value := os.environ.get(name):
            return value.split(".")[0].split("_")[0]
    return None
