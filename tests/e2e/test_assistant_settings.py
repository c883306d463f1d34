"""End to end: each chat's own assistant — /mode, /instructions, /model, /settings — in private chats,
groups (admins only) and forum topics, with Telegram's flood limits on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.assistant.modes import builtin_modes
from bot.config import DEFAULT_INSTRUCTIONS
from bot.turns.profiles import OWN_INSTRUCTIONS_HEADER
from tests.conftest import BotRunner, Services, SettingsFactory
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.fakes.yandex import FakeYandex
from tests.helpers import buttons, mention, saved_thread, thread_of

CHAT = 5005
GROUP = -1005005
FORUM = -1005006
MEMBER, ADMIN, OWNER = 7, 8, 9
ANONYMOUS_ADMIN_BOT = 1087968824  # the user Telegram shows for a group admin writing anonymously
BUILT_IN = builtin_modes(DEFAULT_INSTRUCTIONS)
TRANSLATOR = BUILT_IN.get("translator")
assert TRANSLATOR is not None


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """Flood control as Telegram has it: every test here must also pass under its limits."""
    fake = FakeTelegram(private_interval=1.0, group_per_minute=20, global_per_second=30)
    await fake.start()
    yield fake
    await fake.stop()


def request(yandex: FakeYandex, index: int = -1) -> dict[str, Any]:
    return yandex.requests[index].body


async def bot_message(
    telegram: FakeTelegram, chat: int, starts: str, topic: int | None = None, within: float = 15
) -> SentMessage:
    """The newest of the bot's messages in the chat whose text starts with `starts` (waiting for it)."""

    def found() -> SentMessage | None:
        matching = [m for m in telegram.bot_messages(chat, topic) if (m.text or "").startswith(starts)]
        return matching[-1] if matching else None

    await telegram.wait_until(lambda: found() is not None, timeout=within)
    message = found()
    assert message is not None
    return message


async def press(
    telegram: FakeTelegram, chat: int, message: SentMessage, label: str, user_id: int | None = None
) -> dict[str, Any]:
    """Press the button whose text contains `label`; the answer Telegram got for the press."""
    button = next(item for item in buttons(message) if label in item["text"])
    query = telegram.callback_query(chat, message.message_id, button["callback_data"], user_id=user_id)
    await telegram.wait_until(
        lambda: any(answer["callback_query_id"] == query["id"] for answer in telegram.callback_answers),
        timeout=15,
    )
    return next(answer for answer in telegram.callback_answers if answer["callback_query_id"] == query["id"])


async def ask(telegram: FakeTelegram, yandex: FakeYandex, chat: int, text: str, **kw: Any) -> dict[str, Any]:
    """Ask a question and wait for the model to be asked: its request body."""
    before = len(yandex.requests)
    telegram.user_message(chat, text, **kw)
    await yandex.wait_until(lambda: len(yandex.requests) > before, timeout=15)
    return request(yandex)


# ---------------------------------------------------------------------------------------- private chats


async def test_mode_buttons_switch_the_chat_from_the_next_question(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: "Done."
    app = await run_bot()
    assert request_instructions_default(await ask(telegram, yandex, CHAT, "hello"))

    telegram.command(CHAT, "/mode")
    listing = await bot_message(telegram, CHAT, "Mode of this chat: assistant")
    labels = [button["text"] for button in buttons(listing)]
    assert labels == ["✓ assistant", "translator", "editor", "code", "kb"]
    assert "• translator — Translates your messages" in (listing.text or "")

    answered = await press(telegram, CHAT, listing, "translator")
    assert answered["text"] == "Mode: translator. It applies from the next question."
    await telegram.wait_until(lambda: (listing.text or "").startswith("Mode of this chat: translator"))
    assert [button["text"] for button in buttons(listing)][:2] == ["assistant", "✓ translator"]

    await saved_thread(app.store, str(CHAT), 2)
    body = await ask(telegram, yandex, CHAT, "Добрый день")
    assert body["instructions"] == TRANSLATOR.instructions
    assert body["temperature"] == 0.2
    assert body["model"] == f"gpt://{yandex.folder_id}/yandexgpt-5.1"
    assert [item["content"] for item in yandex.last_input()] == ["hello", "Done.", "Добрый день"]


def request_instructions_default(body: dict[str, Any]) -> bool:
    return body["instructions"] == DEFAULT_INSTRUCTIONS and body["temperature"] == 0.3


async def test_mode_by_name_or_russian_title_and_unknown_names(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    await run_bot()
    telegram.command(CHAT, "/mode", "Editor")
    await telegram.wait_for_text("Mode: editor. It applies from the next question.", CHAT, timeout=15)
    telegram.command(CHAT, "/mode", "переводчик", language_code="ru")
    await telegram.wait_for_text("Режим: переводчик. Действует со следующего вопроса.", CHAT, timeout=15)
    telegram.command(CHAT, "/mode", "poet")
    await telegram.wait_for_text("There is no mode “poet”. Send /mode to choose one.", CHAT, timeout=15)
    telegram.command(CHAT, "/settings")
    overview = await bot_message(telegram, CHAT, "Settings of this chat")
    assert "Mode: translator — Translates your messages" in (overview.text or "")


async def test_own_instructions_go_on_top_of_the_mode(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: "Aye."
    app = await run_bot()
    telegram.command(CHAT, "/instructions")
    await bot_message(telegram, CHAT, "This chat has no instructions of its own.")
    telegram.command(CHAT, "/instructions", "Call the user Captain.\nKeep it short.")
    await telegram.wait_for_text(
        "Saved: they apply from the next question, on top of the mode “assistant”.", CHAT, timeout=15
    )
    body = await ask(telegram, yandex, CHAT, "status?")
    assert body["instructions"] == (
        f"{DEFAULT_INSTRUCTIONS}\n\n{OWN_INSTRUCTIONS_HEADER}\nCall the user Captain.\nKeep it short."
    )
    await saved_thread(app.store, str(CHAT), 2)
    telegram.command(CHAT, "/instructions")
    shown = await bot_message(telegram, CHAT, "Instructions of this chat")
    assert "Call the user Captain.\nKeep it short." in (shown.text or "")
    telegram.command(CHAT, "/instructions", "reset")
    await telegram.wait_for_text("Removed this chat's own instructions.", CHAT, timeout=15)
    assert (await ask(telegram, yandex, CHAT, "again?"))["instructions"] == DEFAULT_INSTRUCTIONS
    telegram.command(CHAT, "/instructions", "x" * 3001)
    await telegram.wait_for_text("Instructions can be at most 3000 characters long.", CHAT, timeout=15)


async def test_the_model_is_picked_among_the_allowed_ones(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: "Ok."
    qwen = f"gpt://{yandex.folder_id}/qwen3-235b-a22b-fp8"
    app = await run_bot(allowed_models=f"yandexgpt-5-lite,{qwen}")
    telegram.command(CHAT, "/model")
    listing = await bot_message(telegram, CHAT, "Model of this chat: yandexgpt-5.1")
    assert [button["text"] for button in buttons(listing)] == [
        "✓ Default: yandexgpt-5.1",
        "yandexgpt-5-lite",
        qwen,
    ]
    answered = await press(telegram, CHAT, listing, "yandexgpt-5-lite")
    assert answered["text"] == "Model: yandexgpt-5-lite. It applies from the next question."
    await telegram.wait_until(lambda: (listing.text or "") == "Model of this chat: yandexgpt-5-lite")
    assert (await ask(telegram, yandex, CHAT, "hi"))["model"] == f"gpt://{yandex.folder_id}/yandexgpt-5-lite"
    await saved_thread(app.store, str(CHAT), 2)

    telegram.command(CHAT, "/model", qwen)
    await telegram.wait_for_text(f"Model: {qwen}. It applies from the next question.", CHAT, timeout=15)
    assert (await ask(telegram, yandex, CHAT, "hi again"))["model"] == qwen
    await saved_thread(app.store, str(CHAT), 4)
    telegram.command(CHAT, "/model", "default")
    await telegram.wait_for_text("Model: yandexgpt-5.1. It applies from the next question.", CHAT, timeout=15)
    telegram.command(CHAT, "/model", "gpt-4")
    await telegram.wait_for_text(
        "“gpt-4” is not one of the models you can choose. Send /model to see them.", CHAT, timeout=15
    )


async def test_without_allowed_models_there_is_nothing_to_pick(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    await run_bot()
    telegram.command(CHAT, "/model", "yandexgpt-5-lite")
    await telegram.wait_for_text("This bot offers no other models: this chat uses yandexgpt-5.1.", CHAT)


async def test_settings_outlive_reset_and_restart_until_settings_reset(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    make_settings: SettingsFactory,
    services: Services,
) -> None:
    yandex.responder = lambda body: "Noted."
    settings = make_settings()
    service = await services.start(settings)
    telegram.command(CHAT, "/mode", "code")
    await telegram.wait_for_text("Mode: code. It applies from the next question.", CHAT, timeout=15)
    telegram.command(CHAT, "/instructions", "Prefer Python.")
    await bot_message(telegram, CHAT, "Saved:")
    await ask(telegram, yandex, CHAT, "a question")
    await saved_thread(service.app.store, str(CHAT), 2)
    telegram.command(CHAT, "/reset")
    await telegram.wait_for_text("Done: I forgot our conversation. Your next message starts a new one.", CHAT)
    assert await thread_of(service.app.store, str(CHAT)) == []

    await services.stop(service)
    await services.start(settings)  # a new process: everything comes from Redis
    telegram.command(CHAT, "/settings")
    overview = await bot_message(telegram, CHAT, "Settings of this chat")
    assert "Mode: code — A programming helper" in (overview.text or "")
    assert "Own instructions: Prefer Python." in (overview.text or "")
    body = await ask(telegram, yandex, CHAT, "next")
    assert body["instructions"].startswith(BUILT_IN.modes[3].instructions)
    assert body["instructions"].endswith("Prefer Python.") and body["temperature"] == 0.2

    telegram.command(CHAT, "/settings", "reset")
    await telegram.wait_for_text(
        "Restored the defaults: mode “assistant”, model yandexgpt-5.1, no instructions of its own. "
        "The conversation is kept.",
        CHAT,
        timeout=15,
    )
    assert request_instructions_default(await ask(telegram, yandex, CHAT, "and now"))


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
async def test_the_owners_modes_file_replaces_the_built_in_set(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"modes{suffix}"
    if suffix == ".toml":
        path.write_text(
            '[[modes]]\nname = "support"\ndescription = "Helps customers"\n'
            'instructions = "You help ACME customers."\nmodel = "yandexgpt-5-lite"\ntemperature = 0.1\n\n'
            '[[modes]]\nname = "sales"\ndescription = "Sells"\ninstructions = "You sell."\n'
        )
    else:
        path.write_text(
            "modes:\n  - name: support\n    description: Helps customers\n"
            "    instructions: You help ACME customers.\n    model: yandexgpt-5-lite\n    temperature: 0.1\n"
            "  - name: sales\n    description: Sells\n    instructions: You sell.\n"
        )
    yandex.responder = lambda body: "Hello from support."
    await run_bot(modes_file=str(path))
    body = await ask(telegram, yandex, CHAT, "my order is late")
    assert body["instructions"] == "You help ACME customers."
    assert body["model"] == f"gpt://{yandex.folder_id}/yandexgpt-5-lite" and body["temperature"] == 0.1
    telegram.command(CHAT, "/mode")
    listing = await bot_message(telegram, CHAT, "Mode of this chat: support")
    assert [button["text"] for button in buttons(listing)] == ["✓ support", "sales"]


# ---------------------------------------------------------------------------------------- groups and topics


async def test_in_groups_only_admins_change_the_assistant(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: "Translated."
    await run_bot(admin_user_ids=str(OWNER + 100))
    group = {"chat_type": "supergroup"}
    telegram.set_member(GROUP, ADMIN, "administrator")
    telegram.set_member(GROUP, OWNER, "creator")

    telegram.command(GROUP, "/mode", "translator", user_id=MEMBER, **group)
    refusal = "In groups only the chat's admins can change the assistant's settings."
    await telegram.wait_for_text(refusal, GROUP, timeout=15)
    telegram.command(GROUP, "/instructions", "Be rude.", user_id=MEMBER, **group)
    telegram.command(GROUP, "/settings", "reset", user_id=MEMBER, **group)
    await telegram.wait_until(lambda: telegram.bot_texts(GROUP).count(refusal) == 3, timeout=15)

    telegram.command(GROUP, "/mode", user_id=MEMBER, **group)  # anyone may look
    listing = await bot_message(telegram, GROUP, "Mode of this chat: assistant")
    refused = await press(telegram, GROUP, listing, "editor", user_id=MEMBER)
    assert refused["text"] == refusal and refused["show_alert"] is True

    accepted = await press(telegram, GROUP, listing, "editor", user_id=ADMIN)
    assert accepted["text"] == "Mode: editor. It applies from the next question."
    telegram.command(GROUP, "/mode", "translator", user_id=ADMIN, **group)
    await telegram.wait_for_text("Mode: translator. It applies from the next question.", GROUP, timeout=15)
    checks = [call for call in telegram.calls_of("getChatMember") if call.params.get("user_id") == ADMIN]
    assert len(checks) == 1, "an admin's status is asked once, then remembered briefly"

    telegram.command(GROUP, "/model", user_id=OWNER, **group)
    await telegram.wait_for_text("This bot offers no other models: this chat uses yandexgpt-5.1.", GROUP)
    telegram.command(GROUP, "/instructions", "Keep the tone formal.", user_id=OWNER, **group)
    await bot_message(telegram, GROUP, "Saved:")

    # An admin writing anonymously speaks as the group itself.
    anonymous = {"sender_chat": {"id": GROUP, "type": "supergroup", "title": f"Group {GROUP}"}}
    telegram.command(GROUP, "/mode", "editor", user_id=ANONYMOUS_ADMIN_BOT, extra=anonymous, **group)
    await telegram.wait_for_text("Mode: editor. It applies from the next question.", GROUP, timeout=15)
    # The bot's own admins may change it anywhere, without asking Telegram.
    before = len(telegram.calls_of("getChatMember"))
    telegram.command(GROUP, "/mode", "translator", user_id=OWNER + 100, **group)
    await telegram.wait_until(
        lambda: telegram.bot_texts(GROUP).count("Mode: translator. It applies from the next question.") == 2,
        timeout=15,
    )
    assert len(telegram.calls_of("getChatMember")) == before

    text, entities = mention("Guten Tag")
    body = await ask(telegram, yandex, GROUP, text, entities=entities, user_id=MEMBER, **group)
    assert body["instructions"].startswith(TRANSLATOR.instructions)
    assert body["instructions"].endswith("Keep the tone formal.")


async def test_a_failed_admin_check_is_said_in_plain_words(
    telegram: FakeTelegram, run_bot: BotRunner
) -> None:
    await run_bot()
    telegram.fail_next("getChatMember", error_code=500, description="Internal Server Error", times=10)
    telegram.command(GROUP, "/mode", "editor", user_id=ADMIN, chat_type="supergroup")
    await telegram.wait_for_text(
        "I could not check your permissions with Telegram just now. Please try again.", GROUP, timeout=20
    )


async def test_each_forum_topic_has_its_own_settings(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    yandex.responder = lambda body: "Fine."
    app = await run_bot()
    telegram.set_member(FORUM, ADMIN, "administrator")
    topic = {"chat_type": "supergroup", "is_topic_message": True}
    telegram.command(FORUM, "/mode", "translator", user_id=ADMIN, message_thread_id=10, **topic)
    await bot_message(telegram, FORUM, "Mode: translator", topic=10)

    text, entities = mention("hello ten")
    body = await ask(
        telegram, yandex, FORUM, text, entities=entities, user_id=ADMIN, message_thread_id=10, **topic
    )
    assert body["instructions"] == TRANSLATOR.instructions
    await saved_thread(app.store, f"{FORUM}:10", 2)
    text, entities = mention("hello twenty")
    body = await ask(
        telegram, yandex, FORUM, text, entities=entities, user_id=ADMIN, message_thread_id=20, **topic
    )
    assert request_instructions_default(body)
    telegram.command(FORUM, "/settings", user_id=MEMBER, message_thread_id=20, **topic)
    overview = await bot_message(telegram, FORUM, "Settings of this chat", topic=20)
    assert "Mode: assistant" in (overview.text or "")
