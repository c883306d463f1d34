"""Model Markdown → Telegram text + entities, split into messages that each render on their own.

Model output is data: it is never sent as HTML or MarkdownV2 markup, only as plain text with entities,
so nothing the model writes can break or inject formatting.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

import pyromark
from aiogram.types import MessageEntity as TelegramEntity
from telegramify_markdown import MessageEntity, convert, utf16_len
from telegramify_markdown.converter import STANDARD_OPTIONS

TELEGRAM_TEXT_LIMIT = 4096
# Telegram honours about 100 entities per message and silently ignores the rest: a message needing more
# would lose its later links and code spans, so messages are split by entity count too.
TELEGRAM_ENTITY_LIMIT = 100
_MAX_HTML_PASSES = 64


@dataclass(frozen=True, slots=True)
class Rendered:
    """Plain text with entities whose offsets and lengths are in UTF-16 code units, as Telegram counts."""

    text: str
    entities: tuple[MessageEntity, ...] = field(default_factory=tuple)

    @property
    def length(self) -> int:
        return utf16_len(self.text)

    def plain(self) -> Rendered:
        return Rendered(self.text)

    def telegram_entities(self) -> list[TelegramEntity] | None:
        """The entities as aiogram objects for sending (None when there are none)."""
        return [TelegramEntity(**entity.to_dict()) for entity in self.entities] or None

    def __add__(self, other: Rendered) -> Rendered:
        shift = self.length
        moved = tuple(entity.copy_with(offset=entity.offset + shift) for entity in other.entities)
        return Rendered(self.text + other.text, self.entities + moved)


def render_markdown(markdown: str) -> Rendered:
    """Render Markdown for Telegram; any prefix of a streaming answer renders to valid entities."""
    text, entities = convert(_escape_raw_html(markdown))
    return Rendered(text, tuple(entities))


def styled(text: str, *styles: str) -> Rendered:
    """Our own text (labels, notices) with one entity per style over all of it."""
    length = utf16_len(text)
    if not length:
        return Rendered(text)
    return Rendered(text, tuple(MessageEntity(type=style, offset=0, length=length) for style in styles))


def _escape_raw_html(markdown: str) -> str:
    """Backslash-escape every `<` that would start raw HTML, so `List<String>` stays visible.

    The converter drops raw HTML, which in model output is almost always literal text (generics, tags
    being explained). Escaping only the `<` that the parser reads as HTML leaves code spans and blocks
    untouched, where a backslash would show.
    """
    if "<" not in markdown:
        return markdown
    for _ in range(_MAX_HTML_PASSES):
        starts = _html_starts(markdown)
        if not starts:
            return markdown
        data = markdown.encode()
        for start in reversed(starts):
            data = data[:start] + b"\\" + data[start:]
        markdown = data.decode()
    return markdown


def _html_starts(markdown: str) -> list[int]:
    """UTF-8 byte offsets of the first `<` of every raw HTML event."""
    data = markdown.encode()
    starts: list[int] = []
    for payload, source in pyromark.events_with_range(markdown, options=STANDARD_OPTIONS):
        if isinstance(payload, dict) and ("InlineHtml" in payload or "Html" in payload):
            begin, end = source["start"], source["end"]
            position = data.find(b"<", begin, end)
            if position >= 0 and (not starts or starts[-1] != position):
                starts.append(position)
    return starts


# Boundaries to split a long message at, best first: a paragraph, a line, a sentence, a word.
_BOUNDARIES = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?…])\s+"),
    re.compile(r"\s+"),
)


def split_rendered(
    rendered: Rendered, limit: int = TELEGRAM_TEXT_LIMIT, max_entities: int = TELEGRAM_ENTITY_LIMIT
) -> list[Rendered]:
    """Split into messages of at most `limit` UTF-16 units and `max_entities` entities, at the cleanest
    boundary that fits.

    The parts concatenate to exactly the original text; entities that cross a split (a code block, a bold
    run) are clipped into both parts, so each message renders on its own.
    """
    if rendered.length <= limit and len(rendered.entities) <= max_entities:
        return [rendered] if rendered.text else []
    text = rendered.text
    units = _utf16_prefix(text)
    starts = sorted(entity.offset for entity in rendered.entities)
    parts: list[Rendered] = []
    start = 0
    while start < len(text):
        hard = _hard_end(units, start, limit)
        hard = min(hard, _entity_end(rendered, units, starts, start, hard, max_entities))
        cut = len(text) if hard == len(text) else _best_cut(text, start, hard)
        parts.append(_slice(rendered, units, start, cut))
        start = cut
    return parts


def _entity_end(
    rendered: Rendered, units: list[int], starts: list[int], start: int, hard: int, max_entities: int
) -> int:
    """The furthest end (a character index <= hard) of a part from `start` with at most `max_entities`."""
    low = units[start]
    # Entities carried over from before `start` (clipped into this part) count as well.
    carried = sum(1 for e in rendered.entities if e.offset < low < e.offset + e.length)
    later = [offset for offset in starts if offset >= low and offset < units[hard]]
    room = max(max_entities - carried, 0)
    if len(later) <= room:
        return hard
    # The part must end before the first entity it has no room for.
    stop_unit = later[room]
    end = bisect.bisect_right(units, stop_unit) - 1  # the character where that entity begins
    return max(end, start + 1)


def _utf16_prefix(text: str) -> list[int]:
    """units[i] = UTF-16 length of text[:i]."""
    units = [0] * (len(text) + 1)
    total = 0
    for index, char in enumerate(text):
        total += 2 if ord(char) > 0xFFFF else 1
        units[index + 1] = total
    return units


def _hard_end(units: list[int], start: int, limit: int) -> int:
    """The furthest character index whose UTF-16 end still fits `limit` units from `start`."""
    budget = units[start] + limit
    low, high = start, len(units) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if units[middle] <= budget:
            low = middle
        else:
            high = middle - 1
    return max(low, start + 1)


def _best_cut(text: str, start: int, hard: int) -> int:
    window = text[start:hard]
    # A boundary in the first quarter would leave a stub message; prefer a lesser boundary further on.
    floor = len(window) // 4
    for pattern in _BOUNDARIES:
        ends = [match.end() for match in pattern.finditer(window) if match.end() > floor]
        if ends:
            return start + ends[-1]
    return hard


def _slice(rendered: Rendered, units: list[int], start: int, end: int) -> Rendered:
    low, high = units[start], units[end]
    clipped: list[MessageEntity] = []
    for entity in rendered.entities:
        begin = max(entity.offset, low)
        finish = min(entity.offset + entity.length, high)
        if finish > begin:
            clipped.append(entity.copy_with(offset=begin - low, length=finish - begin))
    return Rendered(rendered.text[start:end], tuple(clipped))
