"""What the console chat shows: a terminal rendered with `rich`, or plain text for pipes and scripts.

On a terminal an answer is rendered as Markdown while it streams (a live region at the bottom; lines
that scrolled out of its reach are printed for good, so a long answer never smears the screen). When
stdout is not a terminal the model's text is written as it arrives, untouched, and the notices go to
stderr, so `python -m bot chat --once "…" > answer.md` gets exactly the answer and its sources.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Protocol, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment
from rich.spinner import Spinner
from rich.text import Text

from bot.assistant.events import Citation
from bot.texts import Texts
from bot.threads.labels import entry_label
from bot.threads.models import ThreadMessage

REFRESH_SECONDS = 0.1  # re-render the streaming Markdown at most this often
SPARE_LINES = 4  # the live region leaves this much of the terminal to what is above it


class Screen(Protocol):
    """The console chat's output; one answer streams at a time (the turn runner sees to that)."""

    def say(self, text: str) -> None:
        """A line outside of any answer (command replies, notices)."""

    def prompt(self) -> None:
        """Show that a question may be typed."""

    def answer_started(self, thinking: str) -> None: ...

    def answer_status(self, label: str) -> None:
        """The model is using a tool (searching the documents) before it writes."""

    def answer_text(self, text: str) -> None:
        """The answer so far (the whole text, not the new part)."""

    def answer_finished(
        self, text: str, notes: Sequence[str], sources: Sequence[Citation], texts: Texts
    ) -> None:
        """The answer in full, the lines to show under it (how it ended), and its sources."""

    def thread(self, title: str, messages: Sequence[ThreadMessage], texts: Texts) -> None:
        """The whole thread, oldest first."""


def source_lines(sources: Sequence[Citation]) -> list[str]:
    return [
        f"{number}. {source.title}"
        + (f" — {source.url}" if source.url and source.url != source.title else "")
        for number, source in enumerate(sources, start=1)
    ]


class _Lines:
    """Already rendered lines, as a renderable (the part of an answer still on the live region)."""

    def __init__(self, lines: Iterable[list[Segment]]) -> None:
        self._lines = list(lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self._lines:
            yield from line
            yield Segment.line()


class RichScreen:
    """A terminal: Markdown, colours, a spinner while the model thinks."""

    def __init__(self, console: Console, prompt: str = "› ") -> None:
        self._console = console
        self._prompt = prompt
        self._live: Live | None = None
        self._committed = 0  # lines of the current answer printed above the live region for good
        self._rendered_at = 0.0
        self._pending: str | None = None  # newer text than shown, waiting for the next render
        self._timer: asyncio.TimerHandle | None = None
        self._spinning: asyncio.Task[None] | None = None

    def say(self, text: str) -> None:
        self._console.print(Text(text, style="dim" if self._live is None else "italic dim"))

    def prompt(self) -> None:
        self._console.print(Text(self._prompt, style="bold"), end="")

    def answer_started(self, thinking: str) -> None:
        self._committed, self._rendered_at = 0, 0.0
        self._live = Live(
            Spinner("dots", Text(thinking, style="dim")),
            console=self._console,
            # Refreshed from the event loop, never from rich's own thread: its writes could interleave
            # with the lines printed above the live region and leave the cursor in the wrong place.
            auto_refresh=False,
            transient=True,  # the finished answer is printed for good, uncropped, in its place
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start(refresh=True)
        self._spinning = asyncio.get_running_loop().create_task(self._spin(self._live))

    async def _spin(self, live: Live) -> None:
        while self._live is live:
            await asyncio.sleep(REFRESH_SECONDS)
            if self._live is live:
                live.refresh()

    def answer_status(self, label: str) -> None:
        if self._live is not None:
            self._live.update(Spinner("dots", Text(label, style="dim")), refresh=True)

    def answer_text(self, text: str) -> None:
        self._pending = text
        wait = self._rendered_at + REFRESH_SECONDS - time.monotonic()
        if wait <= 0:
            self._render_pending()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self._render_pending)

    def _render_pending(self) -> None:
        self._timer = None
        if self._live is None or self._pending is None:
            return
        self._rendered_at = time.monotonic()
        self._live.update(self._streaming(self._pending), refresh=True)
        self._pending = None

    def answer_finished(
        self, text: str, notes: Sequence[str], sources: Sequence[Citation], texts: Texts
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = None
        parts: list[RenderableType] = []
        if text.strip():
            lines = self._console.render_lines(Markdown(text), self._console.options, pad=False)
            parts.append(_Lines(lines[self._committed :]))
        parts.extend(Text(note, style="italic yellow") for note in notes if note)
        if sources:
            parts.append(Text(f"{texts.sources}:", style="bold"))
            parts.extend(Text(line, style="cyan") for line in source_lines(sources))
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._spinning is not None:
            self._spinning.cancel()
            self._spinning = None
        self._console.print(Group(*parts))

    def _streaming(self, text: str) -> RenderableType:
        """The part of the answer the live region shows; lines above its reach are printed for good."""
        assert self._live is not None
        lines = self._console.render_lines(Markdown(text), self._console.options, pad=False)
        settled = len(lines) - max(3, self._console.height - SPARE_LINES)
        if settled > self._committed:
            self._live.console.print(_Lines(lines[self._committed : settled]))
            self._committed = settled
        return _Lines(lines[self._committed :])

    def thread(self, title: str, messages: Sequence[ThreadMessage], texts: Texts) -> None:
        console = self._console
        console.rule(Text(title, style="bold"))
        for message in messages:
            style = "bold cyan" if message.role == "user" else "bold green"
            console.print(Text(entry_label(message, texts), style=style))
            if message.role == "assistant":
                console.print(Markdown(message.text))
            else:
                console.print(Text(message.text))
            if message.citations:
                console.print(Text(f"{texts.sources}: {', '.join(message.citations)}", style="dim"))
            console.print()
        console.rule()


class PlainScreen:
    """A pipe or a file: the model's own text as it comes, notices on stderr, no prompt."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._written = 0

    def say(self, text: str) -> None:
        self._write(self._out, text + "\n")

    def prompt(self) -> None:
        """Scripts need no prompt."""

    def answer_started(self, thinking: str) -> None:
        self._written = 0

    def answer_status(self, label: str) -> None:
        """Nothing: the output is only the answer."""

    def answer_text(self, text: str) -> None:
        self._write(self._out, text[self._written :])
        self._written = len(text)

    def answer_finished(
        self, text: str, notes: Sequence[str], sources: Sequence[Citation], texts: Texts
    ) -> None:
        rest = text[self._written :]
        if text and not text.endswith("\n"):
            rest += "\n"
        if sources:
            rest += f"\n{texts.sources}:\n" + "\n".join(source_lines(sources)) + "\n"
        self._write(self._out, rest)
        self._written = 0
        for note in notes:
            if note:
                self._write(self._err, note + "\n")

    def thread(self, title: str, messages: Sequence[ThreadMessage], texts: Texts) -> None:
        blocks = [f"# {title}"]
        for message in messages:
            block = f"## {entry_label(message, texts)}\n\n{message.text.strip()}"
            if message.citations:
                block += f"\n\n{texts.sources}: {', '.join(message.citations)}"
            blocks.append(block)
        self._write(self._out, "\n\n".join(blocks) + "\n")

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        if text:
            stream.write(text)
            stream.flush()
