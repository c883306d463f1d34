"""Helpers shared by the tests: a fake clock, sample Markdown, seeded threads, group mentions."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import aiohttp
from hypothesis import strategies as st
from telegramify_markdown import utf16_len

from bot.runners import BotService
from bot.threads.models import ThreadMessage
from bot.threads.store import ThreadStore
from tests.fakes.telegram import FakeTelegram, SentMessage

START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: the time of seeded messages


class FakeClock:
    """Time moves only when someone sleeps."""

    def __init__(self) -> None:
        self.time = 100.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += max(0.0, seconds)
        await asyncio.sleep(0)


class RecordingBot:
    """Stands in for aiogram's Bot in pure-logic tests of the streamer: records what each message shows."""

    def __init__(self) -> None:
        self.messages: dict[int, tuple[str, list[Any]]] = {}
        self.frames: list[tuple[str, list[Any]]] = []

    def _record(self, text: str, entities: list[Any] | None) -> None:
        length = utf16_len(text)
        assert length <= 4096
        for entity in entities or []:
            assert entity.offset >= 0 and entity.length > 0 and entity.offset + entity.length <= length
        self.frames.append((text, entities or []))

    async def send_message(self, *, text: str, entities: list[Any] | None = None, **_: Any) -> Any:
        self._record(text, entities)
        message_id = len(self.messages) + 1
        self.messages[message_id] = (text, entities or [])
        return SimpleNamespace(message_id=message_id)

    async def edit_message_text(self, *, message_id: int, text: str, entities: Any = None, **_: Any) -> None:
        self._record(text, entities)
        self.messages[message_id] = (text, entities or [])

    async def send_message_draft(self, *, text: str, entities: Any = None, **_: Any) -> bool:
        self._record(text, entities)
        return True

    async def send_chat_action(self, *_: Any, **__: Any) -> bool:
        return True

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        del self.messages[message_id]
        return True


# Pieces of the Markdown models write, with the tricky cases: code, tables, raw `<`, emoji, links.
MARKDOWN_PIECES = st.sampled_from(
    [
        "word ",
        "**bold** ",
        "*it* ",
        "`code` ",
        "```python\nprint(1)\n```\n",
        "\n\n",
        "\n",
        "- item\n",
        "# Head\n",
        "List<String> ",
        "a < b ",
        "<div>x</div>",
        "[link](https://example.com) ",
        "😀 ",
        "Sentence ends. ",
        "| a | b |\n|---|---|\n| 1 | 2 |\n",
        "> quote\n",
        "~~gone~~ ",
        "__u__ ",
    ]
)
MARKDOWN = st.lists(MARKDOWN_PIECES, max_size=60).map("".join)


def entry_text(index: int) -> str:
    return f"Message {index:02d}: " + "words about the topic " * 20


def seeded_messages(count: int) -> list[ThreadMessage]:
    """`count` alternating user/assistant messages a minute apart, each marked `Message NN:`."""
    return [
        ThreadMessage(
            role="user" if index % 2 == 0 else "assistant",
            text=entry_text(index),
            time=START + 60 * index,
        )
        for index in range(count)
    ]


async def seed(store: ThreadStore, chat_key: str, messages: list[ThreadMessage]) -> str:
    """Write `messages` into the chat's current thread; its id."""
    thread_id = await store.current_thread(chat_key)
    for message in messages:
        assert await store.append(chat_key, thread_id, message)
    return thread_id


async def thread_of(store: ThreadStore, chat_key: str) -> list[ThreadMessage]:
    """The chat's current thread, oldest first (empty when there is none)."""
    thread_id = await store.thread_id(chat_key)
    return [] if thread_id is None else await store.messages(thread_id)


async def saved_thread(store: ThreadStore, chat_key: str, length: int) -> list[ThreadMessage]:
    """The chat's thread once it holds `length` messages (waiting up to 10 s): an answer is saved just
    after its final frame shows, so a test that saw the frame waits here for the save."""
    for _ in range(1000):
        if len(messages := await thread_of(store, chat_key)) >= length:
            return messages
        await asyncio.sleep(0.01)
    raise AssertionError(f"the thread of chat {chat_key} did not reach {length} messages: {messages}")


def buttons(message: SentMessage) -> list[dict[str, Any]]:
    """The inline buttons under one of the bot's messages, row after row."""
    markup = message.reply_markup or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def callback_data(message: SentMessage) -> list[str]:
    return [str(button.get("callback_data")) for button in buttons(message)]


def mention(text: str, username: str = "test_assistant_bot") -> tuple[str, list[dict[str, object]]]:
    """A group message that mentions the bot, and its entities."""
    full = f"@{username} {text}"
    return full, [{"type": "mention", "offset": 0, "length": len(username) + 1}]


# ---------------------------------------------------------------------------------------- webhook mode

WEBHOOK_SECRET = "webhook_Secret-123"
WEBHOOK_URL = "https://bot.example.com/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_address(service: BotService) -> str:
    assert service.web_port is not None
    return f"http://127.0.0.1:{service.web_port}{service.app.settings.webhook_path}"


def health_address(service: BotService) -> str:
    assert service.web_port is not None
    return f"http://127.0.0.1:{service.web_port}/healthz"


async def deliver(
    http: aiohttp.ClientSession,
    service: BotService,
    update: dict[str, Any],
    secret: str | None = WEBHOOK_SECRET,
) -> int:
    """POST an update as Telegram does; returns the HTTP status."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    async with http.post(webhook_address(service), data=json.dumps(update), headers=headers) as response:
        await response.read()
        return response.status


def question(telegram: FakeTelegram, chat_id: int, text: str) -> dict[str, Any]:
    """A user's message as the fake Telegram knows it (replies to it validate), and its Update."""
    message = telegram.user_message(chat_id, text)
    update = telegram.pending_updates()[-1]
    assert update["message"] is message
    return update


async def health(http: aiohttp.ClientSession, service: BotService) -> tuple[int, dict[str, Any]]:
    async with http.get(health_address(service)) as response:
        return response.status, await response.json()
