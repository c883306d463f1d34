"""The scripted model answer of the streaming benchmark and how displayed text is matched against it."""

from __future__ import annotations

import re

# About 1,500 characters of ordinary assistant prose with a little Markdown (bold, a list), so the bot's
# renderer does realistic work. Every frame the bot sends is compared with it via `normalise`.
ANSWER = (
    "Sure! Here is a short overview of how **HTTP caching** works and what you can tune. "
    "When a browser requests a resource, the server can attach headers that say how long the copy stays "
    "fresh. While it is fresh, the browser serves it from its own cache without asking the server again. "
    "Once it becomes stale, the browser revalidates it with a conditional request.\n\n"
    "The most important headers are:\n\n"
    "- **Cache-Control** sets the rules, for example max-age for the lifetime in seconds.\n"
    "- **ETag** is a fingerprint of the content that the client sends back in If-None-Match.\n"
    "- **Last-Modified** is a date the client sends back in If-Modified-Since.\n"
    "- **Vary** lists the request headers that change the response.\n\n"
    "If the content did not change, the server answers with status 304 and an empty body, which saves "
    "bandwidth but still costs one round trip. Shared caches such as a CDN follow the same rules, but "
    "they also look at s-maxage and at the private and public directives. "
    "For static files with a hash in their name you can use a very long max-age together with immutable, "
    "because a new version always gets a new name. For HTML pages a short max-age or no-cache is safer, "
    "so users see changes quickly. "
    "Be careful with cookies and authorisation: responses that depend on the user should be marked "
    "private, otherwise a shared cache could show one user's page to another. "
    "Finally, measure before you tune: the network panel of the developer tools shows for every request "
    "whether it came from the memory cache, the disk cache or the network. I hope this helps!"
)

QUESTION_PREFIX = "bench question from chat "
_CHAT_RE = re.compile(r"bench question from chat (-?\d+)")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")


def question(chat_id: int) -> str:
    return f"{QUESTION_PREFIX}{chat_id}: how does HTTP caching work?"


def chat_of_request(body: dict) -> int | None:
    """The chat a Responses API request is answering (its latest user message names it)."""
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in reversed(items or []):
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        match = _CHAT_RE.search(str(content or ""))
        if match:
            return int(match.group(1))
    return None


def normalise(text: str) -> str:
    """Only ASCII letters and digits: Markdown markers, bullets, whitespace and entities do not matter."""
    return _NOT_ALNUM.sub("", text)


def covered(frame_text: str, answer_norm: str) -> int:
    """How many normalised characters of the answer a displayed frame shows (its common prefix)."""
    shown = normalise(frame_text)
    limit = min(len(shown), len(answer_norm))
    if shown[:limit] == answer_norm[:limit]:
        return limit
    n = 0
    while n < limit and shown[n] == answer_norm[n]:
        n += 1
    return n
