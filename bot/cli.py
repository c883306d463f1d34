"""`python -m bot kb ...`: fill and inspect the knowledge base from a shell.

Exit codes a script can rely on: 0 all good, 1 something failed (some files, or a Yandex/Redis error),
2 bad usage or configuration, 3 the document to remove was not found.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bot.assistant.knowledge import (
    Document,
    DocumentNotFound,
    DocumentStage,
    KnowledgeBase,
    KnowledgeError,
    check_document,
    is_supported,
)
from bot.config import Settings, SettingsError, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
# Tries to reach Redis (1 s, then 2 s apart) before a command gives up: a CLI should not hang.
REDIS_ATTEMPTS = 3

_STATUS_WORDS = {"in_progress": "indexing", "completed": "ready"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Manage the bot's knowledge base.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kb = commands.add_parser("kb", help="the knowledge base (documents the bot answers from)")
    actions = kb.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="upload files, and folders recursively, and wait until indexed")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument("--jobs", type=_positive_int, default=3, help="files uploaded at once (default 3)")
    add.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for one file's indexing (default 600)"
    )

    actions.add_parser("list", help="list the documents")

    remove = actions.add_parser("remove", help="remove a document by name or file id")
    remove.add_argument("name_or_id", metavar="NAME|ID")

    search = actions.add_parser("search", help="show the passages that best match a query")
    search.add_argument("query", nargs="+", metavar="QUERY")
    search.add_argument("-n", "--max-results", type=_positive_int, default=5)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str]) -> int:
    """Run one command; `argv` is what follows `python -m bot` (e.g. ["kb", "list"]). The exit code."""
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as stop:  # argparse exits on --help (0) and on bad usage (2)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    if settings.redis_url is None:
        # Without a shared Redis the catalogue and the store id would vanish with this process.
        print("Invalid configuration:\n  REDIS_URL: the knowledge base commands need it", file=sys.stderr)
        return EXIT_USAGE

    plan = None
    if args.action == "add":
        # Checked before anything is built or uploaded, so a typo does not leave half a folder uploaded.
        plan = plan_upload(args.paths)
        for path in plan.missing:
            print(f"error: {path}: no such file or folder", file=sys.stderr)
        if plan.missing:
            return EXIT_USAGE

    from bot.logs import configure_logging

    redactor = configure_logging(settings.log_level, settings.secrets())
    return asyncio.run(_run(args, settings, plan, on_secret=redactor.add))


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    plan: UploadPlan | None,
    *,
    on_secret: Callable[[str], None] | None = None,
) -> int:
    # Imported here so `--help` and configuration errors answer without loading the heavy libraries.
    from bot.assistant.connection import YandexConnection
    from bot.assistant.token_sources import CredentialError
    from bot.keys import RedisKeys
    from bot.startup import StartupFailed, wait_for_redis
    from bot.storage import build_redis

    redis, _ = build_redis(settings)
    assert settings.redis_url is not None  # checked by main()
    try:
        # One line per attempt, then one saying it gave up: never a traceback for a Redis that is down.
        await wait_for_redis(settings.redis_url.get_secret_value(), attempts=REDIS_ATTEMPTS)
    except StartupFailed as failed:
        await redis.aclose()
        return failed.exit_code
    # The bot's own way to Yandex: the same credential source, renewed, and the same diagnosis.
    yandex = YandexConnection.open(settings, on_secret=on_secret)
    kb = KnowledgeBase(
        yandex.openai,
        redis,
        keys=RedisKeys(settings.redis_prefix),
        configured_store_id=settings.yandex_vector_store_id,
        diagnosis=yandex.diagnosis,
    )
    try:
        try:
            await yandex.start()
        except CredentialError as error:
            print(f"error: no Yandex credential ({yandex.credentials.describe()}): {error}", file=sys.stderr)
            return EXIT_FAILED
        if plan is not None:
            return await _add(kb, plan, jobs=args.jobs, indexing_timeout=args.timeout)
        if args.action == "list":
            return await _list(kb)
        if args.action == "remove":
            return await _remove(kb, args.name_or_id)
        return await _search(kb, " ".join(args.query), args.max_results)
    except KnowledgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await yandex.aclose()
        await redis.aclose()


# --------------------------------------------------------------------- kb add


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """The files named, and the files under the folders named (hidden ones left out), in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                child
                for child in sorted(path.rglob("*"))
                if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts)
            )
        else:
            found.append(path)
    return found


@dataclass(frozen=True)
class UploadPlan:
    """What `kb add` was given: paths that do not exist, files to upload, files of unsupported types."""

    missing: list[Path]
    wanted: list[Path]
    skipped: list[Path]


def plan_upload(paths: Sequence[Path]) -> UploadPlan:
    missing = [path for path in paths if not path.exists()]
    files = collect_files([path for path in paths if path.exists()])
    wanted = [path for path in files if is_supported(path.name)]
    skipped = [path for path in files if not is_supported(path.name)]
    return UploadPlan(missing, wanted, skipped)


async def _add(kb: KnowledgeBase, plan: UploadPlan, *, jobs: int, indexing_timeout: float) -> int:
    for path in plan.skipped:
        print(f"skipped {path}: this file type cannot be indexed", file=sys.stderr)
    semaphore = asyncio.Semaphore(jobs)
    in_place = jobs == 1 and sys.stderr.isatty()
    total = len(plan.wanted)

    async def upload(index: int, path: Path) -> bool:
        async with semaphore:
            line = _ProgressLine(f"[{index}/{total}] {path}", sys.stderr, in_place=in_place)
            return await _upload_one(kb, path, line, indexing_timeout=indexing_timeout)

    results = await asyncio.gather(*(upload(i, path) for i, path in enumerate(plan.wanted, start=1)))
    failed = results.count(False)
    print(f"{total - failed} added, {failed} failed, {len(plan.skipped)} skipped")
    return EXIT_FAILED if failed else EXIT_OK


def _read(path: Path) -> bytes:
    # Size first: a file over the limit is refused without being read into memory.
    check_document(path.name, path.stat().st_size)
    return path.read_bytes()


async def _upload_one(kb: KnowledgeBase, path: Path, line: _ProgressLine, *, indexing_timeout: float) -> bool:
    try:
        content = await asyncio.to_thread(_read, path)
        await kb.add_document(path.name, content, progress=line.stage, timeout=indexing_timeout)
    except (KnowledgeError, OSError) as error:
        line.finish("failed", _reason(error, path.name))
        return False
    return True


def _reason(error: Exception, name: str) -> str:
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    # The line already names the file; the knowledge base's messages start with it too.
    return str(error).removeprefix(f"{name}: ")


@dataclass
class _ProgressLine:
    """One file's progress on stderr: a line per stage, or one line rewritten in place on a terminal."""

    label: str
    stream: TextIO
    in_place: bool = False
    started: float = field(default_factory=time.monotonic, init=False)

    async def stage(self, stage: DocumentStage) -> None:
        if stage is DocumentStage.READY:
            self.finish("ready")
        elif stage is not DocumentStage.FAILED:  # the failure is printed with its reason
            self._write(f"{stage.value}…", final=False)

    def finish(self, text: str, detail: str = "") -> None:
        self._write(text, final=True, detail=detail)

    def _write(self, text: str, *, final: bool, detail: str = "") -> None:
        message = f"{self.label}: {text} ({time.monotonic() - self.started:.1f}s)"
        if detail:
            message = f"{message}: {detail}"
        if self.in_place:
            self.stream.write(f"\r\x1b[K{message}" + ("\n" if final else ""))
        else:
            self.stream.write(message + "\n")
        self.stream.flush()


# --------------------------------------------------------------------- kb list / remove / search


async def _list(kb: KnowledgeBase) -> int:
    documents = await kb.list_documents()
    if not documents:
        print("The knowledge base is empty.")
        return EXIT_OK
    rows = [("NAME", "SIZE", "STATUS", "ADDED", "ID"), *(_row(document) for document in documents)]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4])
    return EXIT_OK


def _row(document: Document) -> tuple[str, str, str, str, str]:
    status = _STATUS_WORDS.get(document.status, document.status)
    added = document.added_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return (document.name, _size(document.size), status, added, document.file_id)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024**2:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024**2:.1f} MB"


async def _remove(kb: KnowledgeBase, name_or_id: str) -> int:
    try:
        document = await kb.remove_document(name_or_id)
    except DocumentNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"removed {document.name} ({document.file_id})")
    return EXIT_OK


async def _search(kb: KnowledgeBase, query: str, max_results: int) -> int:
    passages = await kb.search(query, max_results=max_results)
    if not passages:
        print("Nothing found.")
    for passage in passages:
        print(f"{passage.score:.2f}  {passage.filename}")
        print(textwrap.indent(textwrap.shorten(passage.text, width=400, placeholder=" …"), "    "))
    return EXIT_OK
