"""End to end: Telegram's flood limits, with the fake's flood control on as always.

A group's 20 messages a minute are shared by every topic, answer, notice and history page there, and by
every process of the bot; a flood ban is waited out without a call to that chat, within
TELEGRAM_MAX_FLOOD_WAIT, and the answer is in the thread in any case. Where a test needs a group's minute
to pass, the minute is scaled down alike in the fake and in the bot.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.telegram import budget as limits
from tests.conftest import BotRunner, WebhookRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import deliver, mention, saved_thread

CHAT = 3001
FORUM = -1003001
WINDOW = 6.0  # the group "minute" of these tests, in seconds


@pytest.fixture
def short_minute(telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    """Telegram's rolling minute scaled down to WINDOW seconds, in the fake and in the bot."""
    telegram.flood.group_window = WINDOW
    monkeypatch.setattr(limits, "GROUP_WINDOW_SECONDS", WINDOW + 0.5, raising=False)


def topic_question(telegram: FakeTelegram, topic: int, text: str) -> dict:
    body, entities = mention(text)
    return telegram.user_message(
        FORUM, body, chat_type="supergroup", user_id=500 + topic, message_thread_id=topic, entities=entities
    )


async def test_two_topics_and_a_history_page_share_the_groups_pace(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, short_minute: None
) -> None:
    long = "A long answer that keeps streaming into its topic for a while. " * 12
    yandex.responder = lambda body: Reply(text=long, chunk_size=16, delay=0.08)
    app = await run_bot(stream_group_interval=0.1)
    topic_question(telegram, 10, "first topic")
    topic_question(telegram, 20, "second topic")
    await telegram.wait_until(lambda: len(telegram.bot_messages(FORUM)) >= 2)
    telegram.command(FORUM, "/history", chat_type="supergroup", user_id=510, message_thread_id=30)

    for topic in (10, 20):
        await saved_thread(app.store, f"{FORUM}:{topic}", 2)
    await telegram.wait_until(
        lambda: (
            [m.text for m in telegram.bot_messages(FORUM, 10)] == [long.strip()]
            and [m.text for m in telegram.bot_messages(FORUM, 20)] == [long.strip()]
            and len(telegram.bot_messages(FORUM, 30)) == 1
        ),
        timeout=60,
    )
    counted = [c for c in telegram.calls if c.params.get("chat_id") == FORUM and c.status == 200]
    assert len([c for c in counted if c.method != "sendChatAction"]) > 20, "more than one window's worth"
    assert telegram.flood_count() == 0


async def test_two_processes_behind_the_webhook_share_the_group_pace_and_the_bot_budget(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    run_webhook_bot: WebhookRunner,
    http: aiohttp.ClientSession,
    short_minute: None,
) -> None:
    answer = "An answer streamed in a few pieces by whichever process got the question."
    yandex.responder = lambda body: Reply(text=answer, chunk_size=12, delay=0.05)
    processes = [await run_webhook_bot(stream_group_interval=0.1) for _ in range(2)]

    # Two topics of one group, one per process, and 40 private chats split between them: one process
    # alone would keep to 25 calls a second, two unaware of each other would send ~50.
    for topic in (10, 20):
        topic_question(telegram, topic, "hello")
    for n in range(40):
        telegram.user_message(4000 + n, f"question {n}")
    updates = telegram.pending_updates()
    statuses = await asyncio.gather(*(deliver(http, processes[n % 2], u) for n, u in enumerate(updates)))
    assert set(statuses) == {200}

    def all_answered() -> bool:
        private = all(telegram.bot_texts(4000 + n) == [answer] for n in range(40))
        topics = all([m.text for m in telegram.bot_messages(FORUM, t)] == [answer] for t in (10, 20))
        return private and topics

    await telegram.wait_until(all_answered, timeout=90)
    assert telegram.flood_count() == 0
    assert len(yandex.requests) == 42


async def test_a_flood_ban_is_waited_out_without_a_call_and_the_answer_delivered(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner
) -> None:
    answer = "This answer outlives a flood ban of several seconds and is shown in full once it ends."
    yandex.script(Reply(text=answer, chunk_size=8, delay=0.1))
    app = await run_bot(telegram_max_flood_wait=60)
    telegram.user_message(CHAT, "go on")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    telegram.flood.ban(CHAT, 4)

    await telegram.wait_until(lambda: telegram.bot_texts(CHAT) == [answer], timeout=30)
    assert telegram.flood.hammered.get(CHAT, 0) <= 1  # the one call that learned of the ban
    assert telegram.flood.banned_for(CHAT) == 0
    await saved_thread(app.store, str(CHAT), 2)


async def test_a_ban_longer_than_the_bound_leaves_the_answer_in_the_thread(
    telegram: FakeTelegram, yandex: FakeYandex, run_bot: BotRunner, caplog: pytest.LogCaptureFixture
) -> None:
    answer = "Telegram bans this chat for an hour; the answer is kept in the thread all the same."
    yandex.script(Reply(text=answer, chunk_size=8, delay=0.1))
    app = await run_bot(telegram_max_flood_wait=3)
    telegram.user_message(CHAT, "go on")
    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT)) == 1)
    telegram.flood.ban(CHAT, 3600)

    [_, saved] = await saved_thread(app.store, str(CHAT), 2)
    assert saved.text == answer
    calls = len(telegram.calls)
    await asyncio.sleep(1.0)
    banned_calls = [c for c in telegram.calls[calls:] if c.params.get("chat_id") == CHAT and c.status == 429]
    assert banned_calls == [], "nothing more is sent to a chat banned beyond TELEGRAM_MAX_FLOOD_WAIT"
    assert telegram.flood.hammered.get(CHAT, 0) <= 1
    assert "TELEGRAM_MAX_FLOOD_WAIT" in caplog.text
