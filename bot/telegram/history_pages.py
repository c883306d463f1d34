"""A thread laid out for reading in Telegram: pages of labelled entries, and a Markdown export (pure).

Pages are packed from the oldest entry forward, so a page's contents depend only on the messages before
its end: a thread that grows leaves earlier pages (and the buttons pointing at them) unchanged.
Stored text is always shown as data: plain text plus our own bold/italic entities, never parsed markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.telegram.render import TELEGRAM_TEXT_LIMIT, Rendered, split_rendered, styled
from bot.texts import Texts
from bot.threads.labels import entry_label, utc_minute
from bot.threads.models import ThreadMessage

PREVIEW_CHARS = 600  # a long message is cut to this in the listing, so a page holds several entries
SOURCES_CHARS = 300
ENTRY_SEPARATOR = "\n\n"
THREAD_TOKEN_CHARS = 12  # enough of a random 32-hex thread id to tell threads apart, short for callback data
EXPORT_ARGS = frozenset({"file", "md", "export", "файл"})


class HistoryPage(CallbackData, prefix="h"):
    """A page button: which thread it was made for, and which page (0 = oldest) it shows."""

    thread: str
    page: int


class HistoryExport(CallbackData, prefix="hx"):
    """The "Export .md" button of a thread's listing."""

    thread: str


def thread_token(thread_id: str) -> str:
    return thread_id[:THREAD_TOKEN_CHARS]


# ---------------------------------------------------------------------------------------- formatting


def shorten(text: str, limit: int) -> str:
    """The text, or its first `limit` characters ending in "…", cut at a word when one is near."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    word_end = max(cut.rfind(" "), cut.rfind("\n"))
    if word_end >= limit * 4 // 5:
        cut = cut[:word_end]
    return cut.rstrip() + "…"


def render_entry(message: ThreadMessage, texts: Texts, *, preview_chars: int = PREVIEW_CHARS) -> Rendered:
    """One listing entry: a bold label, the (shortened) text, and the sources in italics."""
    entry = styled(entry_label(message, texts), "bold")
    text = shorten(message.text, preview_chars)
    if text:
        entry += Rendered("\n" + text)
    if message.citations:
        sources = shorten(f"{texts.sources}: {', '.join(message.citations)}", SOURCES_CHARS)
        entry += Rendered("\n") + styled(sources, "italic")
    return entry


def pack_pages(sizes: Sequence[int], budget: int, *, separator: int = len(ENTRY_SEPARATOR)) -> list[range]:
    """Consecutive entries per page, oldest first: each page takes entries while they fit in `budget`.

    `sizes` are entry lengths, `separator` the cost between two entries of a page. An entry larger than
    the budget gets a page of its own (the caller clips it).
    """
    pages: list[range] = []
    start, used = 0, 0
    for index, size in enumerate(sizes):
        if index == start:
            used = size
        elif used + separator + size <= budget:
            used += separator + size
        else:
            pages.append(range(start, index))
            start, used = index, size
    if sizes:
        pages.append(range(start, len(sizes)))
    return pages


def _clip(entry: Rendered, budget: int) -> Rendered:
    if entry.length <= budget:
        return entry
    return split_rendered(entry, budget - 1)[0] + Rendered("…")


def _header(texts: Texts, page: int, pages: int) -> Rendered:
    if pages == 1:
        return styled(texts.history_title, "bold")
    position = texts.history_page.format(page=page + 1, pages=pages)
    return styled(f"{texts.history_title} · {position}", "bold")


@dataclass(frozen=True, slots=True)
class HistoryBook:
    """A thread laid out as pages that each fit one Telegram message; page 0 is the oldest."""

    thread_id: str
    pages: tuple[Rendered, ...]
    texts: Texts

    @property
    def last(self) -> int:
        return len(self.pages) - 1

    def clamp(self, page: int) -> int:
        return min(max(page, 0), self.last)

    def keyboard(self, page: int) -> InlineKeyboardMarkup:
        """◀ older · page x of y · newer ▶ (only the moves that exist), then the export button."""
        texts, token = self.texts, thread_token(self.thread_id)
        keyboard = InlineKeyboardBuilder()
        moves = 0
        if len(self.pages) > 1:
            # The middle button re-opens its own page: it refreshes a page that grew since it was shown.
            for target, label in (
                (page - 1, texts.history_older),
                (page, None),
                (page + 1, texts.history_newer),
            ):
                if 0 <= target <= self.last:
                    text = label or texts.history_page.format(page=page + 1, pages=len(self.pages))
                    keyboard.button(text=text, callback_data=HistoryPage(thread=token, page=target))
                    moves += 1
        keyboard.button(text=texts.history_export, callback_data=HistoryExport(thread=token))
        keyboard.adjust(*([moves] if moves else []), 1)
        return keyboard.as_markup()


def build_book(
    thread_id: str,
    messages: Sequence[ThreadMessage],
    texts: Texts,
    *,
    limit: int = TELEGRAM_TEXT_LIMIT,
    preview_chars: int = PREVIEW_CHARS,
) -> HistoryBook | None:
    """The thread's pages, or None for an empty thread. Deterministic: same messages, same pages."""
    if not messages:
        return None
    # There are never more pages than entries, so this header is the longest any page can get.
    longest_header = _header(texts, len(messages) - 1, len(messages)).length
    budget = limit - longest_header - len(ENTRY_SEPARATOR)
    entries = [
        _clip(render_entry(message, texts, preview_chars=preview_chars), budget) for message in messages
    ]
    ranges = pack_pages([entry.length for entry in entries], budget)
    pages: list[Rendered] = []
    for number, indexes in enumerate(ranges):
        page = _header(texts, number, len(ranges))
        for index in indexes:
            page += Rendered(ENTRY_SEPARATOR) + entries[index]
        pages.append(page)
    return HistoryBook(thread_id, tuple(pages), texts)


def export_markdown(messages: Sequence[ThreadMessage], texts: Texts, *, exported_at: float) -> str:
    """The whole thread as a Markdown document: every message in full under a heading of its own."""
    blocks = [f"# {texts.history_title}", f"_{texts.history_exported}: {utc_minute(exported_at)}_"]
    for message in messages:
        blocks.append(f"## {entry_label(message, texts)}")
        if text := message.text.strip():
            blocks.append(text)
        if message.citations:
            listed = "\n".join(f"- {citation}" for citation in message.citations)
            blocks.append(f"**{texts.sources}:**\n{listed}")
    return "\n\n".join(blocks) + "\n"


def export_file_name(exported_at: float) -> str:
    return datetime.fromtimestamp(exported_at, UTC).strftime("conversation-%Y%m%d-%H%M.md")


def wants_export(args: str | None) -> bool:
    """`/history file` (or md, export, файл) asks for the Markdown file instead of the listing."""
    return args is not None and args.strip().lower() in EXPORT_ARGS


@dataclass(frozen=True, slots=True)
class ThreadSnapshot:
    """A chat's current thread as read from the store (no thread id: the chat has none)."""

    thread_id: str | None
    messages: list[ThreadMessage]

    def is_current(self, token: str) -> bool:
        """Whether a button made for thread `token` still belongs to this chat's thread."""
        return self.thread_id is not None and thread_token(self.thread_id) == token
