"""Text as the Bot API measures and checks it: UTF-16 lengths, explicit entities, whitespace trimming.

The bot sends model output as plain text plus entities only, never as markup: a `parse_mode` from the bot
is refused here (a guard of the tests, stricter than Telegram), so a green e2e run proves it.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.telegram.errors import ApiError, bad_request

# fmt: off
KNOWN_ENTITY_TYPES = frozenset({
    "bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre", "text_link", "text_mention",
    "blockquote", "expandable_blockquote", "custom_emoji", "mention", "hashtag", "cashtag", "bot_command",
    "url", "email", "phone_number", "date_time",
})
# fmt: on
# Telegram honours this many entities of a message and silently ignores the rest (no error).
MAX_ENTITIES = 100


def utf16_len(text: str) -> int:
    """Telegram measures text and entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _entity_error(message: str) -> ApiError:
    return bad_request(f"can't parse entities: {message}")


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
    """The text and its entities as the server keeps them; a `parse_mode` is refused (see above).

    Entities beyond `MAX_ENTITIES` are dropped without an error, as Telegram does: `ignored_entities`
    tells how many a call lost (tests read it through `FakeTelegram.ignored_entities`)."""
    if parse_mode:
        raise bad_request(f"parse_mode {parse_mode!r} is not accepted from this bot (model output is data)")
    parsed = validate_entities(text, entities) if entities is not None else []
    text, kept = _trim(text, parsed)
    return text, kept


def ignored_entities(entities: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The entities Telegram honours, and how many it silently ignores."""
    return entities[:MAX_ENTITIES], max(0, len(entities) - MAX_ENTITIES)
