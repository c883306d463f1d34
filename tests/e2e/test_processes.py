"""Two bot processes sharing one Redis behave as one bot.

Two real `App`s (two dispatchers, two Redis clients, two Telegram sessions) run against the same fakes and
the same Redis prefix, each in webhook mode on its own port. The tests play Telegram re-delivering every
update to the other process too (what a retry behind a load balancer does), plus a duplicate to the
same one, and check that every question gets exactly one answer, that answers in one chat never overlap,
and that an answer written by one process sees the turn the other process just finished.

A polling variant is not possible: Telegram (and the fake) allow one getUpdates consumer per bot, so a
second poller only gets 409 Conflict and never sees an update. Webhook mode is how several processes
really share one bot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import aiohttp

from bot.runners import BotService
from tests.conftest import WebhookRunner
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply
from tests.helpers import deliver, question

# The webhook tests' fixtures, imported so pytest finds them here (listed to mark the imports as used).

CHAT_X = 3001
CHAT_Y = 3002
# A question waiting behind an answer must not get the "your message is queued" notice mid-test.
NO_QUEUE_NOTICE = {"queue_notice_seconds": 600}

Claims = dict[int, str]  # update_id -> name of the process that won it


def last_user_text(body: dict[str, Any]) -> str:
    content = body["input"][-1]["content"]
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content)
    return str(content)


def answer_for(text: str) -> str:
    return f"Answer to: {text}"


def slow_echo(delay: float) -> Callable[[dict[str, Any]], Reply]:
    return lambda body: Reply(text=answer_for(last_user_text(body)), chunk_size=4, delay=delay)


def record_claims(service: BotService, name: str, claims: Claims) -> None:
    """Remember which process won each update (the dedupe's `claim` is looked up per call)."""
    dedupe = service.app.dedupe
    original = dedupe.claim

    async def claim(update_id: int) -> bool:
        won = await original(update_id)
        if won:
            claims[update_id] = name
        return won

    dedupe.claim = claim  # type: ignore[method-assign]


def answer_span(telegram: FakeTelegram, chat_id: int, question_id: int) -> tuple[float, float]:
    """From the first to the last Bot API call that wrote this question's answer.

    Only calls that write text count: the ↻ button leaves an answer (editMessageReplyMarkup) while the
    next answer is finishing, which is not writing two answers at once.
    """
    replies = {m.message_id for m in telegram.bot_messages(chat_id) if m.reply_to_message_id == question_id}
    moments = []
    for call in telegram.calls:
        if call.params.get("chat_id") != chat_id or call.status != 200:
            continue
        reply_to = (call.params.get("reply_parameters") or {}).get("message_id")
        if (call.method == "sendMessage" and reply_to == question_id) or (
            call.method == "editMessageText" and call.params.get("message_id") in replies
        ):
            moments.append(call.at)
    assert moments, f"no answer was written to question {question_id}"
    return min(moments), max(moments)


def assert_answered_once(telegram: FakeTelegram, chat_id: int, updates: list[dict[str, Any]]) -> None:
    for update in updates:
        message = update["message"]
        replies = [
            m for m in telegram.bot_messages(chat_id) if m.reply_to_message_id == message["message_id"]
        ]
        assert [reply.text for reply in replies] == [answer_for(message["text"])]
    assert len(telegram.bot_messages(chat_id)) == len(updates), "a message that answers no question"


def assert_no_overlap(telegram: FakeTelegram, chat_id: int, updates: list[dict[str, Any]]) -> None:
    spans = sorted(answer_span(telegram, chat_id, update["message"]["message_id"]) for update in updates)
    for (_, end), (start, _) in pairwise(spans):
        assert end < start, f"two answers in chat {chat_id} were written at the same time: {spans}"


async def test_two_processes_answer_every_question_once_one_at_a_time_per_chat(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    run_webhook_bot: WebhookRunner,
    http: aiohttp.ClientSession,
) -> None:
    yandex.responder = slow_echo(delay=0.06)
    apps = {"A": await run_webhook_bot(**NO_QUEUE_NOTICE), "B": await run_webhook_bot(**NO_QUEUE_NOTICE)}
    claims: Claims = {}
    for name, app in apps.items():
        record_claims(app, name, claims)
    a, b = apps["A"], apps["B"]

    # First questions: each delivered to both processes at once, and twice to A.
    firsts = {chat: question(telegram, chat, f"first question in {chat}") for chat in (CHAT_X, CHAT_Y)}
    deliveries = [deliver(http, app, update) for update in firsts.values() for app in (a, b, a)]
    assert set(await asyncio.gather(*deliveries)) == {200}
    await telegram.wait_until(lambda: all(telegram.bot_messages(chat) for chat in firsts))

    # Second questions arrive while the first answers stream. Each goes first to the process that is NOT
    # answering its chat, which claims it and must wait for the other process to finish.
    seconds = {chat: question(telegram, chat, f"second question in {chat}") for chat in firsts}
    for chat, update in seconds.items():
        busy = apps[claims[firsts[chat]["update_id"]]]
        idle = b if busy is a else a
        assert await deliver(http, idle, update) == 200
        await telegram.wait_until(lambda update=update: update["update_id"] in claims)
        assert claims[update["update_id"]] != claims[firsts[chat]["update_id"]]
        for app in (busy, idle):  # the re-deliveries
            assert await deliver(http, app, update) == 200

    def all_answered() -> bool:
        return all(
            [m.text for m in telegram.bot_messages(chat)]
            == [answer_for(firsts[chat]["message"]["text"]), answer_for(seconds[chat]["message"]["text"])]
            for chat in firsts
        )

    await telegram.wait_until(all_answered, timeout=15)
    await asyncio.sleep(0.3)  # time for a wrongly duplicated answer to show up

    assert len(yandex.requests) == 4
    for chat in firsts:
        updates = [firsts[chat], seconds[chat]]
        assert_answered_once(telegram, chat, updates)
        assert_no_overlap(telegram, chat, updates)
        # The second answer, written by the other process, had the first turn as context.
        first_text, second_text = (update["message"]["text"] for update in updates)
        [request] = [r for r in yandex.requests if last_user_text(r.body) == second_text]
        contents = [item["content"] for item in request.body["input"]]
        assert contents[-3:] == [first_text, answer_for(first_text), second_text]
    # Per chat, not global: the two chats' first answers were written at the same time.
    span_x, span_y = (answer_span(telegram, chat, firsts[chat]["message"]["message_id"]) for chat in firsts)
    assert span_x[0] < span_y[1] and span_y[0] < span_x[1]


async def test_a_burst_of_redelivered_updates_in_one_chat_is_answered_once_each_without_overlap(
    telegram: FakeTelegram,
    yandex: FakeYandex,
    run_webhook_bot: WebhookRunner,
    http: aiohttp.ClientSession,
) -> None:
    questions = 6
    yandex.responder = slow_echo(delay=0.02)
    a = await run_webhook_bot(**NO_QUEUE_NOTICE)
    b = await run_webhook_bot(**NO_QUEUE_NOTICE)
    claims: Claims = {}
    record_claims(a, "A", claims)
    record_claims(b, "B", claims)

    updates = [question(telegram, CHAT_X, f"question number {n}") for n in range(questions)]
    # Everything at once: every update to both processes, every other one to A a second time.
    deliveries = [deliver(http, app, update) for update in updates for app in (a, b)]
    deliveries += [deliver(http, a, update) for update in updates[::2]]
    assert set(await asyncio.gather(*deliveries)) == {200}

    await telegram.wait_until(lambda: len(telegram.bot_messages(CHAT_X)) >= questions, timeout=30)
    await telegram.wait_until(
        lambda: (
            sorted(m.text or "" for m in telegram.bot_messages(CHAT_X))
            == sorted(answer_for(u["message"]["text"]) for u in updates)
        ),
        timeout=15,
    )
    await asyncio.sleep(0.3)

    assert len(yandex.requests) == questions
    assert sorted(claims) == sorted(update["update_id"] for update in updates)
    assert_answered_once(telegram, CHAT_X, updates)
    assert_no_overlap(telegram, CHAT_X, updates)
    # The gate made the turns strictly sequential: the n-th model request carried the n finished turns
    # before it, each question followed by its complete answer.
    for turns, request in enumerate(yandex.requests):
        contents = [item["content"] for item in request.body["input"]]
        assert len(contents) == 2 * turns + 1
        for asked, answered in zip(contents[:-1:2], contents[1::2], strict=True):
            assert answered == answer_for(asked)
