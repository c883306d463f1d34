"""HTTP-level fake of the Telegram Bot API server for tests.

The real, unmodified aiogram ``Bot`` talks to it over HTTP::

    fake = FakeTelegram()
    base_url = await fake.start()
    bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))

Answers mimic the real server: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "..."}`` with HTTP status N, so aiogram raises the same
exception classes (TelegramBadRequest, TelegramRetryAfter, TelegramForbiddenError, ...) as in production.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import mimetypes
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
PRIVATE_BURST = 3  # token-bucket size for the private-chat flood rule
DEFAULT_GROUP_USER_ID = 111111

# fmt: off
KNOWN_ENTITY_TYPES = frozenset({
    "bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre", "text_link", "text_mention",
    "blockquote", "expandable_blockquote", "custom_emoji", "mention", "hashtag", "cashtag", "bot_command",
    "url", "email", "phone_number", "date_time",
})
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document",
    "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
JSON_FIELDS = frozenset({
    "entities", "caption_entities", "reply_markup", "reply_parameters", "link_preview_options", "commands",
    "scope", "allowed_updates", "media",
})
INT_FIELDS = frozenset({
    "chat_id", "message_id", "draft_id", "message_thread_id", "reply_to_message_id", "offset", "limit",
    "timeout", "user_id", "from_chat_id", "cache_time", "max_connections",
})
BOOL_FIELDS = frozenset({
    "disable_notification", "protect_content", "allow_sending_without_reply", "can_stop", "keep_on_stop",
    "show_alert", "drop_pending_updates", "disable_content_type_detection", "disable_web_page_preview",
    "allow_paid_broadcast",
})
# fmt: on
# Methods that deliver something to a chat: they get 403 for blocked chats and count towards flood control.
SENDING_METHODS = frozenset(
    {"sendmessage", "editmessagetext", "editmessagereplymarkup", "sendmessagedraft", "senddocument"}
)
BLOCKABLE_METHODS = SENDING_METHODS | {"sendchataction"}


class ApiError(Exception):
    """An error answer of the API; raised inside handlers and turned into the JSON error body."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


@dataclass
class Call:
    """One API request as the fake saw it: params are decoded (ints, bools and JSON fields parsed).

    Uploaded files appear in params as ``{"file_name", "mime_type", "content"}``. ``status`` is 0 while the
    request is still being answered (a waiting long poll).
    """

    method: str
    params: dict[str, Any]
    at: float
    status: int = 0


@dataclass
class SentMessage:
    """A message the bot sent, in its current state; ``history`` holds every (text, entities) version.

    For documents ``text`` is None, ``caption``/``document`` are set and ``entities`` are caption entities.
    """

    message_id: int
    chat_id: int
    text: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    reply_to_message_id: int | None
    message_thread_id: int | None
    history: list[tuple[str | None, list[dict[str, Any]]]]
    deleted: bool = False
    date: int = 0
    caption: str | None = None
    document: dict[str, Any] | None = None


@dataclass
class _Failure:
    method: str
    error: ApiError
    times: int
    chat_id: int | None


@dataclass
class _StoredFile:
    content: bytes
    file_path: str
    document: dict[str, Any]
    size: int


# --------------------------------------------------------------------------------------------- text


def utf16_len(text: str) -> int:
    """Telegram measures text and entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _u16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _entity_error(message: str) -> ApiError:
    return bad_request(f"can't parse entities: {message}")


_HTML_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "tg-spoiler", "span"}
    | {"tg-emoji", "blockquote"}
)
_HTML_SIMPLE = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler",
}  # fmt: skip
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE = re.compile(r"&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]+);")


def _decode_html_entity(text: str, i: int) -> tuple[str, int] | None:
    m = _HTML_ENTITY_RE.match(text, i)
    if m is None:
        return None
    name = m.group(1)
    if name.startswith("#"):
        cp = int(name[2:], 16) if name[1] == "x" else int(name[1:])
        if cp == 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            return None
        return chr(cp), m.end()
    # Like tdlib: an unknown named entity is not an error, the '&' just stays literal.
    ch = _HTML_NAMED.get(name)
    return (ch, m.end()) if ch is not None else None


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode (modelled on tdlib's parser, including its error messages)."""
    out: list[str] = []
    u16 = 0
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf16 offset, index in out
    entities: list[dict[str, Any]] = []
    code_lang: dict[int, str] = {}  # id(entity) -> language, so an enclosing <pre> can adopt it
    n = len(text)

    def at(pos: int) -> int:
        return len(text[:pos].encode())

    i = 0
    while i < n:
        c = text[i]
        if c == "&" and (decoded := _decode_html_entity(text, i)) is not None:
            out.append(decoded[0])
            u16 += _u16(decoded[0])
            i = decoded[1]
            continue
        if c != "<":
            out.append(c)
            u16 += _u16(c)
            i += 1
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            if not stack:
                raise _entity_error(f"Unexpected end tag at byte offset {at(begin)}")
            j = i + 1
            while j < n and not text[j].isspace() and text[j] != ">":
                j += 1
            end_name = text[i + 1 : j].lower()
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != ">":
                raise _entity_error(f"Unclosed end tag at byte offset {at(begin)}")
            tag, arg, offset, pos = stack.pop()
            if end_name and end_name != tag:
                raise _entity_error(
                    f"Unmatched end tag at byte offset {at(begin)}, "
                    f'expected "</{tag}>", found "</{end_name}>"'
                )
            i = j + 1
            length = u16 - offset
            if length <= 0:
                continue
            entity: dict[str, Any] = {"offset": offset, "length": length}
            if tag in _HTML_SIMPLE:
                entity["type"] = _HTML_SIMPLE[tag]
            elif tag == "a":
                url = arg or "".join(out[pos:])
                if not url:
                    continue
                entity.update(type="text_link", url=url)
            elif tag == "code":
                entity["type"] = "code"
                if arg:
                    code_lang[id(entity)] = arg
            elif tag == "pre":
                entity["type"] = "pre"
                last = entities[-1] if entities else None
                if last and last["type"] == "code" and last["offset"] == offset and last["length"] == length:
                    entities.pop()
                    if lang := code_lang.get(id(last)):
                        entity["language"] = lang
            elif tag == "blockquote":
                entity["type"] = "expandable_blockquote" if arg else "blockquote"
            elif tag == "tg-emoji":
                if not arg:
                    continue
                entity.update(type="custom_emoji", custom_emoji_id=arg)
            entities.append(entity)
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] != ">":
            j += 1
        if j >= n:
            raise _entity_error(f"Unclosed start tag at byte offset {at(begin)}")
        tag = text[i:j].lower()
        if tag not in _HTML_TAGS:
            raise _entity_error(f'Unsupported start tag "{tag}" at byte offset {at(begin)}')
        arg = ""
        while True:
            while j < n and text[j].isspace():
                j += 1
            if j >= n:
                raise _entity_error(f'Unclosed start tag "{tag}" at byte offset {at(begin)}')
            if text[j] == ">":
                break
            a0 = j
            while j < n and not text[j].isspace() and text[j] not in "=>":
                j += 1
            attr = text[a0:j].lower()
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != "=":
                if tag == "blockquote" and attr == "expandable":
                    arg = "1"
                    continue
                raise _entity_error(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {at(begin)}"
                )
            j += 1
            while j < n and text[j].isspace():
                j += 1
            value: list[str] = []
            if j < n and text[j] in "'\"":
                quote = text[j]
                j += 1
                while j < n and text[j] != quote:
                    if text[j] == "&" and (decoded := _decode_html_entity(text, j)) is not None:
                        value.append(decoded[0])
                        j = decoded[1]
                    else:
                        value.append(text[j])
                        j += 1
                j += 1
            else:
                while j < n and (text[j].isalnum() or text[j] in ".-"):
                    value.append(text[j])
                    j += 1
            if j >= n:
                raise _entity_error(f"Unclosed start tag at byte offset {at(begin)}")
            val = "".join(value)
            if tag == "a" and attr == "href":
                arg = val
            elif tag == "code" and attr == "class" and val.startswith("language-"):
                arg = val[len("language-") :]
            elif tag == "span" and attr == "class" and val.startswith("tg-"):
                arg = val[3:]
            elif tag == "tg-emoji" and attr == "emoji-id":
                arg = val
        if tag == "span" and arg != "spoiler":
            raise _entity_error(f'Tag "span" must have class "tg-spoiler" at byte offset {at(begin)}')
        stack.append((tag, arg, u16, len(out)))
        i = j + 1
    if stack:
        raise _entity_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


_MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "text_link": "TextUrl", "custom_emoji": "CustomEmoji",
}  # fmt: skip


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """MarkdownV2 (tdlib's algorithm, simplified): reserved characters outside entities must be escaped."""
    out: list[str] = []
    u16 = 0
    stack: list[tuple[str, str, int, int, int]] = []  # type, argument, utf16 offset, byte offset, out index
    entities: list[dict[str, Any]] = []
    quote_start: int | None = None
    n = len(text)

    def at(pos: int) -> int:
        return len(text[:pos].encode())

    i = 0
    while i < n:
        c = text[i]
        in_code = bool(stack) and stack[-1][0] in ("code", "pre")
        if (i == 0 or text[i - 1] == "\n") and not in_code:
            if c == ">":  # consecutive "> " lines form one blockquote
                if quote_start is None:
                    quote_start = u16
                i += 1
                continue
            if quote_start is not None:
                if u16 - 1 > quote_start:
                    entities.append(
                        {"type": "blockquote", "offset": quote_start, "length": u16 - 1 - quote_start}
                    )
                quote_start = None
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if (in_code and c != "`") or (not in_code and c not in _MD_RESERVED):
            out.append(c)
            u16 += _u16(c)
            i += 1
            continue
        top = stack[-1][0] if stack else None
        nxt = text[i + 1] if i + 1 < n else ""
        is_end = (
            (top == "bold" and c == "*")
            or (top == "italic" and c == "_" and nxt != "_")
            or (top == "underline" and c == "_" and nxt == "_")
            or (top == "code" and c == "`")
            or (top == "pre" and text.startswith("```", i))
            or (top in ("text_link", "custom_emoji") and c == "]")
            or (top == "strikethrough" and c == "~")
            or (top == "spoiler" and c == "|" and nxt == "|")
        )
        if in_code and not is_end:  # a lone backtick inside ```pre``` is just text
            out.append(c)
            u16 += 1
            i += 1
            continue
        if not is_end:
            begin, arg = i, ""
            if c == "_" and nxt == "_":
                kind, i = "underline", i + 2
            elif c in "_*~[":
                kind, i = {"_": "italic", "*": "bold", "~": "strikethrough", "[": "text_link"}[c], i + 1
            elif c == "|" and nxt == "|":
                kind, i = "spoiler", i + 2
            elif c == "!" and nxt == "[":
                kind, i = "custom_emoji", i + 2
            elif c == "`" and text.startswith("```", i):
                kind, i = "pre", i + 3
                j = i
                while j < n and not text[j].isspace() and text[j] != "`":
                    j += 1
                if j != i and j < n and text[j] != "`":
                    arg, i = text[i:j], j
                if i < n and text[i] in "\r\n":  # one newline after the language is not part of the code
                    i += 2 if i + 1 < n and text[i + 1] in "\r\n" and text[i] != text[i + 1] else 1
            elif c == "`":
                kind, i = "code", i + 1
            else:
                raise _entity_error(
                    f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
                )
            stack.append((kind, arg, u16, at(begin), len(out)))
            continue
        kind, arg, offset, _, pos = stack.pop()
        i += {"underline": 2, "spoiler": 2, "pre": 3}.get(kind, 1)
        if kind in ("text_link", "custom_emoji"):
            if i < n and text[i] == "(":
                i += 1
                url_begin, url = i, []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                        url.append(text[i + 1])
                        i += 2
                    else:
                        url.append(text[i])
                        i += 1
                if i >= n:
                    raise _entity_error(f"Can't find end of a URL at byte offset {at(url_begin)}")
                i += 1
                arg = "".join(url)
            else:
                arg = "".join(out[pos:])
        if u16 <= offset:
            continue
        entity: dict[str, Any] = {"type": kind, "offset": offset, "length": u16 - offset}
        if kind == "text_link":
            entity["url"] = arg
        elif kind == "custom_emoji":
            if not arg.startswith("tg://emoji?id="):
                raise _entity_error("Custom emoji entity must contain a tg://emoji URL")
            entity["custom_emoji_id"] = arg[len("tg://emoji?id=") :]
        elif kind == "pre" and arg:
            entity["language"] = arg
        entities.append(entity)
    if stack:
        kind, _, _, byte_offset, _ = stack[-1]
        raise _entity_error(f"Can't find end of {_MD_NAMES[kind]} entity at byte offset {byte_offset}")
    if quote_start is not None and u16 > quote_start:
        entities.append({"type": "blockquote", "offset": quote_start, "length": u16 - quote_start})
    return "".join(out), entities


def parse_markdown_legacy(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: *bold* _italic_ `code` ```pre``` [text](url), no nesting."""
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)
    kinds = {"*": "bold", "_": "italic", "`": "code"}
    while i < n:
        c = text[i]
        if c not in "*_`[":
            out.append(c)
            u16 += _u16(c)
            i += 1
            continue
        begin = len(text[:i].encode())
        marker = "```" if text.startswith("```", i) else ("]" if c == "[" else c)
        end = text.find(marker, i + len(marker) if marker == "```" else i + 1)
        if end < 0:
            raise _entity_error(f"Can't find end of the entity starting at byte offset {begin}")
        inner = text[i + (3 if marker == "```" else 1) : end]
        entity: dict[str, Any] = {"offset": u16, "length": utf16_len(inner)}
        i = end + len(marker)
        if marker == "```":
            entity["type"] = "pre"
        elif c == "[":
            close = text.find(")", i)
            if not text.startswith("(", i) or close < 0:
                raise _entity_error(f"Can't find end of the entity starting at byte offset {begin}")
            entity.update(type="text_link", url=text[i + 1 : close])
            i = close + 1
        else:
            entity["type"] = kinds[c]
        out.append(inner)
        u16 += entity["length"]
        if entity["length"]:
            entities.append(entity)
    return "".join(out), entities


def validate_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """Checks explicit entities the way the server does and returns them sorted like Telegram."""
    if not isinstance(entities, list):
        raise bad_request("can't parse entities JSON object")
    total = utf16_len(text)
    result = []
    for e in entities:
        if not isinstance(e, dict):
            raise _entity_error("entity must be an Object")
        kind, offset, length = e.get("type"), e.get("offset"), e.get("length")
        if kind not in KNOWN_ENTITY_TYPES:
            raise _entity_error(f'Unsupported entity type "{kind}"')
        if not isinstance(offset, int) or not isinstance(length, int):
            raise _entity_error("entity offset and length must be integers")
        if offset < 0 or length <= 0 or offset + length > total:
            raise _entity_error(
                f"entity {kind} at offset {offset} with length {length} is out of text bounds"
            )
        if kind == "text_link" and not e.get("url"):
            raise _entity_error("text_link entity must have url")
        if kind == "text_mention" and not isinstance(e.get("user"), dict):
            raise _entity_error("text_mention entity must have user")
        if kind == "custom_emoji" and not e.get("custom_emoji_id"):
            raise _entity_error("custom_emoji entity must have custom_emoji_id")
        result.append(dict(e))
    return result


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The server strips leading/trailing whitespace and clips entities to what remains."""
    stripped = text.strip()
    if not stripped:
        return "", []
    left = len(text) - len(text.lstrip())  # whitespace is BMP, so chars == UTF-16 units here
    end = left + utf16_len(stripped)
    result = []
    for e in entities:
        start, stop = max(e["offset"], left), min(e["offset"] + e["length"], end)
        if stop > start:
            result.append({**e, "offset": start - left, "length": stop - start})
    return stripped, sorted(result, key=lambda e: (e["offset"], -e["length"]))


def parse_formatted(text: str, entities: Any, parse_mode: Any) -> tuple[str, list[dict[str, Any]]]:
    """Explicit entities win over parse_mode, as on the real server."""
    if entities is not None:
        parsed = validate_entities(text, entities)
    elif not parse_mode:
        parsed = []
    else:
        mode = str(parse_mode).lower()
        parsers = {"html": parse_html, "markdownv2": parse_markdown_v2, "markdown": parse_markdown_legacy}
        if mode not in parsers:
            raise bad_request("unsupported parse_mode")
        text, parsed = parsers[mode](text)
    return _trim(text, parsed)


# --------------------------------------------------------------------------------------------- server


class FakeTelegram:
    """A fake Telegram Bot API server on aiohttp.web with real validation, error texts and flood control.

    Flood control (each rule is off when its argument is None); calls counted: sendMessage, editMessageText,
    editMessageReplyMarkup, sendMessageDraft, sendDocument. Only successful calls consume quota:

    * ``private_interval`` (chats with id > 0): token bucket of ``PRIVATE_BURST`` (3) calls refilled at one
      call per ``private_interval`` seconds, i.e. short bursts pass, sustained rate is 1/interval.
    * ``group_per_minute`` (chats with id < 0): at most N calls in any rolling 60 s window.
    * ``global_per_second``: at most N calls across all chats in any rolling 1 s window.

    A refused call gets 429 with ``retry_after = ceil(seconds until allowed)`` (>= 1). Scripted failures
    from ``fail_next`` take precedence over everything else.

    Like the server, message text is stripped of leading/trailing whitespace (entities are shifted).
    Unlike it, chats are created on first use (no "chat not found"), and url/mention/... entities are not
    auto-detected in plain text.
    """

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        bot_id: int = 123456,
        bot_username: str = "test_assistant_bot",
        private_interval: float | None = None,
        group_per_minute: int | None = None,
        global_per_second: int | None = None,
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.private_interval = private_interval
        self.group_per_minute = group_per_minute
        self.global_per_second = global_per_second
        self.base_url = ""
        self.calls: list[Call] = []
        # (json.dumps(scope, sort_keys=True), language_code or "") -> list of {command, description}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.webhook_url = ""
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._update_event = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._chats: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, dict[int, dict[str, Any]]] = {}  # chat -> message_id -> API Message
        self._last_message_id: dict[int, int] = {}
        self._sent: dict[tuple[int, int], SentMessage] = {}
        self._actions: dict[int, list[str]] = {}
        self._drafts: dict[int, list[dict[str, Any]]] = {}
        self._blocked: set[int] = set()
        self._failures: list[_Failure] = []
        self._flood_count = 0
        self._private_buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
        self._group_windows: dict[int, deque[float]] = {}
        self._global_window: deque[float] = deque()
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._pending_callbacks: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "sendchataction": self._send_chat_action,
            "answercallbackquery": self._answer_callback_query,
            "sendmessagedraft": self._send_message_draft,
            "getchat": self._get_chat,
            "senddocument": self._send_document,
            "getfile": self._get_file,
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._closing = False
        app = web.Application(client_max_size=64 * 1024 * 1024)  # default 1 MB would reject uploads
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # Pending long polls are woken in stop(); a short shutdown timeout keeps teardown fast regardless.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        self._wake_pollers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- feeding updates

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Test Assistant",
            "username": self.bot_username,
        }

    def add_update(self, update: dict[str, Any]) -> int:
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        if "callback_query" in update:
            self._pending_callbacks.add(str(update["callback_query"].get("id")))
        self._updates.append(update)
        self._wake_pollers()
        return update["update_id"]

    def user_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
        language_code: str | None = "en",
        chat_type: str = "private",
        message_thread_id: int | None = None,
        is_topic_message: bool | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to_message_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if is_topic_message is None and message_thread_id is not None and chat_type == "supergroup":
            is_topic_message = True
        chat = self._chat(
            chat_id, chat_type=chat_type, first_name=first_name, is_forum=bool(is_topic_message)
        )
        if user_id is None:
            user_id = chat_id if chat_type == "private" else DEFAULT_GROUP_USER_ID
        sender: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code is not None:
            sender["language_code"] = language_code
        msg: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "from": sender,
            "chat": dict(chat),
            "date": int(time.time()),
        }
        if text is not None:
            msg["text"] = text
        if entities:
            msg["entities"] = entities
        if message_thread_id is not None:
            msg["message_thread_id"] = message_thread_id
        if is_topic_message:
            msg["is_topic_message"] = True
        if reply_to_message_id is not None and (replied := self._find_message(chat_id, reply_to_message_id)):
            msg["reply_to_message"] = replied
        msg.update(extra or {})
        self._messages.setdefault(chat_id, {})[msg["message_id"]] = msg
        self.add_update({"message": msg})
        return msg

    def command(self, chat_id: int, command: str, args: str = "", **kw: Any) -> dict[str, Any]:
        head = "/" + command.lstrip("/")
        entity = {"type": "bot_command", "offset": 0, "length": utf16_len(head)}
        return self.user_message(chat_id, f"{head} {args}" if args else head, entities=[entity], **kw)

    def callback_query(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
    ) -> dict[str, Any]:
        """Enqueues a press of an inline button under a message of the chat; returns the CallbackQuery."""
        query: dict[str, Any] = {
            "id": f"cbq-{self._next_update_id}",
            "from": {"id": user_id or chat_id, "is_bot": False, "first_name": first_name},
            "chat_instance": str(chat_id),
            "data": data,
        }
        if (msg := self._find_message(chat_id, message_id)) is not None:
            query["message"] = msg
        self.add_update({"callback_query": query})
        return query

    def block_chat(self, chat_id: int) -> None:
        self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def add_file(
        self, content: bytes, file_name: str, mime_type: str, *, declared_size: int | None = None
    ) -> dict[str, Any]:
        """Registers a downloadable file; returns a Document object to put into a user message."""
        n = len(self._files) + 1
        document = {
            "file_id": f"FILE{n:06d}",
            "file_unique_id": f"U{n:06d}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": declared_size if declared_size is not None else len(content),
        }
        suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = _StoredFile(content, f"documents/file_{n}.{suffix}", document, document["file_size"])
        self._files[document["file_id"]] = stored
        self._files_by_path[stored.file_path] = stored
        return dict(document)

    # ---------------------------------------------------------------- inspection

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method.lower() == method.lower() and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def bot_messages(self, chat_id: int, message_thread_id: int | None = None) -> list[SentMessage]:
        return [
            m
            for (cid, _), m in sorted(self._sent.items())
            if cid == chat_id
            and not m.deleted
            and (message_thread_id is None or m.message_thread_id == message_thread_id)
        ]

    def bot_texts(self, chat_id: int, message_thread_id: int | None = None) -> list[str]:
        """The texts of the bot's messages in the chat (or topic) as they show now, oldest first."""
        return [m.text or "" for m in self.bot_messages(chat_id, message_thread_id)]

    async def wait_for_text(self, expected: str, chat_id: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until one of the bot's messages in the chat shows exactly `expected`."""
        await self.wait_until(lambda: expected in self.bot_texts(chat_id), timeout=timeout)

    def chat_actions(self, chat_id: int) -> list[str]:
        return list(self._actions.get(chat_id, []))

    def drafts(self, chat_id: int) -> list[dict[str, Any]]:
        return list(self._drafts.get(chat_id, []))

    def commands_for(
        self, language_code: str | None = None, scope: dict[str, Any] | None = None
    ) -> list[dict]:
        return self.commands.get(self._commands_key(scope, language_code), [])

    def flood_count(self) -> int:
        return self._flood_count

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Polls ``predicate`` every 10 ms; the explicit timeout gives a diagnostic instead of a bare hang."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                recent = ", ".join(f"{c.method}->{c.status}" for c in self.calls[-15:]) or "none"
                name = getattr(predicate, "__name__", repr(predicate))
                raise AssertionError(
                    f"condition {name} not met within {timeout}s; last API calls: {recent}; "
                    f"unconfirmed updates: {len(self._updates)}"
                )
            await asyncio.sleep(0.01)

    # ---------------------------------------------------------------- scripted failures

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        error = ApiError(error_code, description, retry_after)
        self._failures.append(_Failure(method.lower(), error, times, chat_id))

    def _take_failure(self, method: str, params: dict[str, Any]) -> ApiError | None:
        for failure in self._failures:
            if failure.method == method and failure.chat_id in (None, params.get("chat_id")):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure.error
        return None

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._read_params(request)
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        try:
            result = await self._dispatch(request.match_info["token"], method.lower(), params)
            call.status = 200
            return web.json_response({"ok": True, "result": result})
        except ApiError as e:
            call.status = e.error_code
            if e.error_code == 429:
                self._flood_count += 1
            return web.json_response(e.payload(), status=e.error_code)

    async def _dispatch(self, token: str, method: str, params: dict[str, Any]) -> Any:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        # Scripted failures come first so that tests can also script methods the fake does not implement.
        if (failure := self._take_failure(method, params)) is not None:
            raise failure
        handler = self._handlers.get(method)
        if handler is None:
            raise ApiError(404, "Not Found")
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                raise bad_request(f"can't parse {key} JSON object")
        chat_id = params.get("chat_id")
        if method in BLOCKABLE_METHODS and chat_id in self._blocked:
            if isinstance(chat_id, int) and chat_id < 0:
                raise ApiError(403, "Forbidden: bot was kicked from the group chat")
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        counted = method in SENDING_METHODS and isinstance(chat_id, int)
        if counted:
            self._check_flood(chat_id)
        result = handler(params)
        if inspect.isawaitable(result):
            result = await result
        if counted:
            self._consume_flood(chat_id)
        return result

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json" and request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                raw.update(body)
        elif request.method == "POST":
            raw.update(await request.post())
        files = {k: self._file_field(v) for k, v in raw.items() if isinstance(v, web.FileField)}
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key in files:
                continue
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = files.pop(value[len("attach://") :], value)
            else:
                params[key] = self._decode_value(key, value)
        params.update(files)  # parts uploaded directly under the parameter name
        return params

    @staticmethod
    def _file_field(value: web.FileField) -> dict[str, Any]:
        content = value.file.read()
        mime = mimetypes.guess_type(value.filename or "")[0] or "application/octet-stream"
        return {"file_name": value.filename, "mime_type": mime, "content": content}

    @staticmethod
    def _decode_value(key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if key in JSON_FIELDS:
            try:
                return json.loads(value)
            except ValueError:
                return value  # reported as a 400 by _dispatch
        if key in INT_FIELDS:
            try:
                return int(value)
            except ValueError:
                return value
        if key in BOOL_FIELDS:
            return value.lower() in ("true", "1")
        return value

    async def _handle_file(self, request: web.Request) -> web.Response:
        stored = self._files_by_path.get(request.match_info["path"])
        if request.match_info["token"] != self.token or stored is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=stored.content, content_type=stored.document.get("mime_type"))

    def _wake_pollers(self) -> None:
        # Replacing the event wakes every waiter exactly once without a clear() race.
        event, self._update_event = self._update_event, asyncio.Event()
        event.set()

    # ---------------------------------------------------------------- flood control

    def _check_flood(self, chat_id: int) -> None:
        now = time.monotonic()
        waits: list[float] = []
        if chat_id > 0 and self.private_interval:
            tokens = self._private_tokens(chat_id, now)
            if tokens < 1:
                waits.append((1 - tokens) * self.private_interval)
        if chat_id < 0 and self.group_per_minute:
            window = self._window(self._group_windows.setdefault(chat_id, deque()), now, 60.0)
            if len(window) >= self.group_per_minute:
                waits.append(window[0] + 60.0 - now)
        if self.global_per_second:
            window = self._window(self._global_window, now, 1.0)
            if len(window) >= self.global_per_second:
                waits.append(window[0] + 1.0 - now)
        if waits:
            raise too_many_requests(max(1, math.ceil(max(waits))))

    def _consume_flood(self, chat_id: int) -> None:
        now = time.monotonic()
        if chat_id > 0 and self.private_interval:
            self._private_buckets[chat_id] = (self._private_tokens(chat_id, now) - 1, now)
        if chat_id < 0 and self.group_per_minute:
            self._group_windows.setdefault(chat_id, deque()).append(now)
        if self.global_per_second:
            self._global_window.append(now)

    def _private_tokens(self, chat_id: int, now: float) -> float:
        assert self.private_interval
        tokens, at = self._private_buckets.get(chat_id, (float(PRIVATE_BURST), now))
        return min(float(PRIVATE_BURST), tokens + (now - at) / self.private_interval)

    @staticmethod
    def _window(window: deque[float], now: float, span: float) -> deque[float]:
        while window and window[0] <= now - span:
            window.popleft()
        return window

    # ---------------------------------------------------------------- chats and messages

    def _chat(
        self, chat_id: int, *, chat_type: str | None = None, first_name: str = "User", is_forum: bool = False
    ) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is None or (chat_type is not None and chat["type"] != chat_type):
            chat_type = chat_type or ("private" if chat_id > 0 else "supergroup")
            chat = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = first_name
            else:
                chat["title"] = f"Group {chat_id}"
            self._chats[chat_id] = chat
        if is_forum and chat["type"] == "supergroup":
            chat["is_forum"] = True
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def _find_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        msg = self._messages.get(chat_id, {}).get(message_id)
        return {k: v for k, v in msg.items() if k != "reply_to_message"} if msg else None

    @staticmethod
    def _chat_id(params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise bad_request("chat not found" if chat_id else "chat_id is empty")
        return chat_id

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters") or {}
        if not isinstance(reply, dict):
            raise bad_request("can't parse reply parameters JSON object")
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        target = self._find_message(int(reply.get("chat_id", chat_id)), int(message_id))
        allow = reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply"))
        if target is None and not allow:
            raise bad_request("message to be replied not found")
        return target

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise bad_request("BUTTON_TEXT_INVALID")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
                if len(button) < 2:
                    raise bad_request("text buttons are unallowed in the inline keyboard")
        return markup

    def _store_bot_message(
        self, chat_id: int, params: dict[str, Any], content: dict[str, Any], sent: SentMessage
    ) -> dict[str, Any]:
        reply_to = self._reply_target(chat_id, params)
        sent.reply_to_message_id = reply_to["message_id"] if reply_to else None
        msg: dict[str, Any] = {
            "message_id": sent.message_id,
            "from": self.bot_user,
            "chat": dict(self._chat(chat_id)),
            "date": sent.date,
            **content,
        }
        if (thread := params.get("message_thread_id")) is not None:
            msg.update(message_thread_id=thread, is_topic_message=True)
        if reply_to:
            msg["reply_to_message"] = reply_to
        # Only inline keyboards are echoed in Message.reply_markup; reply keyboards are not.
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:
            msg["reply_markup"] = sent.reply_markup
        if params.get("link_preview_options"):
            msg["link_preview_options"] = params["link_preview_options"]
        self._messages.setdefault(chat_id, {})[sent.message_id] = msg
        self._sent[(chat_id, sent.message_id)] = sent
        return msg

    def _editable(self, params: dict[str, Any]) -> tuple[SentMessage, dict[str, Any]]:
        if "inline_message_id" in params:
            raise bad_request("MESSAGE_ID_INVALID")
        chat_id = self._chat_id(params)
        message_id = params.get("message_id")
        sent = self._sent.get((chat_id, message_id)) if isinstance(message_id, int) else None
        if sent is None or sent.deleted:
            if isinstance(message_id, int) and message_id in self._messages.get(chat_id, {}):
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return sent, self._messages[chat_id][sent.message_id]

    # ---------------------------------------------------------------- method handlers

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        # A newer getUpdates terminates an older waiting one with 409, like the real server.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        deadline = time.monotonic() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._updates or self._closing:
                return self._updates[:limit]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            event = self._update_event
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url") or ""
        if url and not url.startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = url
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), str(language_code or "")

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for cmd in commands:
            name, description = str(cmd.get("command", "")), str(cmd.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not description.strip():
                raise bad_request("command description is empty")
            if len(description) > 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self.commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return self.commands.get(self._commands_key(params.get("scope"), params.get("language_code")), [])

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(params.get("scope"), params.get("language_code")), None)
        return True

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        text, entities = parse_formatted(
            str(params.get("text") or ""), params.get("entities"), params.get("parse_mode")
        )
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        markup = self._check_markup(params.get("reply_markup"))
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        sent = SentMessage(
            message_id=0,
            chat_id=chat_id,
            text=text,
            entities=entities,
            reply_markup=markup,
            reply_to_message_id=None,
            message_thread_id=params.get("message_thread_id"),
            history=[(text, entities)],
            date=int(time.time()),
        )
        self._reply_target(chat_id, params)  # validate before a message id is consumed
        sent.message_id = self._new_message_id(chat_id)
        return self._store_bot_message(chat_id, params, content, sent)

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        sent, msg = self._editable(params)
        if sent.text is None:
            raise bad_request("there is no text in the message to edit")
        text, entities = parse_formatted(
            str(params.get("text") or ""), params.get("entities"), params.get("parse_mode")
        )
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise bad_request("MESSAGE_TOO_LONG")
        markup = self._check_markup(params.get("reply_markup"))
        if (text, entities, markup) == (sent.text, sent.entities, sent.reply_markup):
            raise bad_request(
                "message is not modified: specified new message content and reply markup "
                "of the existing message are exactly the same"
            )
        sent.text, sent.entities, sent.reply_markup = text, entities, markup
        sent.history.append((text, entities))
        msg["text"] = text
        msg.pop("entities", None)
        if entities:
            msg["entities"] = entities
        return self._apply_markup(msg, markup)

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        sent, msg = self._editable(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == sent.reply_markup or (not markup and not sent.reply_markup):
            raise bad_request(
                "message is not modified: specified new message content and reply markup "
                "of the existing message are exactly the same"
            )
        sent.reply_markup = markup
        return self._apply_markup(msg, markup)

    @staticmethod
    def _apply_markup(msg: dict[str, Any], markup: dict[str, Any] | None) -> dict[str, Any]:
        msg.pop("reply_markup", None)
        if markup and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        msg["edit_date"] = int(time.time())
        return msg

    def _delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or self._messages.get(chat_id, {}).pop(message_id, None) is None:
            raise bad_request("message to delete not found")
        if (sent := self._sent.get((chat_id, message_id))) is not None:
            sent.deleted = True
        return True

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._actions.setdefault(chat_id, []).append(str(action))
        return True

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._pending_callbacks:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text") or "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._pending_callbacks.discard(query_id)
        self.callback_answers.append(dict(params))
        return True

    def _send_message_draft(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        if chat_id <= 0:
            raise bad_request("can't send drafts to this chat")
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise bad_request("DRAFT_ID_INVALID")
        text, entities = parse_formatted(
            str(params.get("text") or ""), params.get("entities"), params.get("parse_mode")
        )
        if utf16_len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        self._drafts.setdefault(chat_id, []).append(
            {
                "draft_id": draft_id,
                "text": text,
                "entities": entities,
                "message_thread_id": params.get("message_thread_id"),
                "can_stop": bool(params.get("can_stop")),
                "keep_on_stop": bool(params.get("keep_on_stop")),
                "at": time.monotonic(),
            }
        )
        return True

    def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(self._chat_id(params))
        gifts = dict.fromkeys(
            (
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ),
            False,
        )
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        doc = params.get("document")
        if isinstance(doc, dict) and "content" in doc:
            if not doc["content"]:
                raise bad_request("file must be non-empty")
            document = self.add_file(doc["content"], doc["file_name"] or "document", doc["mime_type"])
        elif isinstance(doc, str) and doc in self._files:
            document = dict(self._files[doc].document)
        elif doc:
            raise bad_request("wrong file identifier/HTTP URL specified")
        else:
            raise bad_request("there is no document in the request")
        caption, entities = parse_formatted(
            str(params.get("caption") or ""), params.get("caption_entities"), params.get("parse_mode")
        )
        if utf16_len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        markup = self._check_markup(params.get("reply_markup"))
        self._reply_target(chat_id, params)  # validate before a message id is consumed
        content: dict[str, Any] = {"document": document}
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        sent = SentMessage(
            message_id=self._new_message_id(chat_id),
            chat_id=chat_id,
            text=None,
            entities=entities,
            reply_markup=markup,
            reply_to_message_id=None,
            message_thread_id=params.get("message_thread_id"),
            history=[(None, entities)],
            date=int(time.time()),
            caption=caption or None,
            document=document,
        )
        return self._store_bot_message(chat_id, params, content, sent)

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD:
            raise bad_request("file is too big")
        doc = stored.document
        return {
            "file_id": doc["file_id"],
            "file_unique_id": doc["file_unique_id"],
            "file_size": stored.size,
            "file_path": stored.file_path,
        }
