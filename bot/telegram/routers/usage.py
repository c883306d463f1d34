"""/usage: a user's questions and tokens today and what their limits leave; /stats for the bot's admins."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.assistant.knowledge import KnowledgeBase, KnowledgeError
from bot.telegram.routers.common import human_size, reply, texts_of
from bot.telegram.sender import Outbox
from bot.texts import Texts
from bot.threads.limits import UsageLimits, UserUsage
from bot.threads.usage import StatsSummary, UsageStats

log = logging.getLogger(__name__)


def router() -> Router:
    router = Router(name="usage")

    @router.message(Command("usage"))
    async def usage(message: Message, outbox: Outbox, limits: UsageLimits, is_admin: bool) -> None:
        texts = texts_of(message)
        if message.from_user is None:  # a channel or an anonymous admin: no user to count
            await reply(outbox, message, texts.usage.no_limits)
            return
        await reply(outbox, message, usage_text(await limits.usage(message.from_user.id), texts, is_admin))

    @router.message(Command("stats"))
    async def stats(
        message: Message, outbox: Outbox, usage_stats: UsageStats, knowledge: KnowledgeBase, is_admin: bool
    ) -> None:
        texts = texts_of(message)
        if not is_admin:
            await reply(outbox, message, texts.usage.stats_refused)
            return
        try:
            documents: tuple[int, int] | None = await knowledge.recorded_size()
        except KnowledgeError:
            log.warning("could not read the knowledge base's size", exc_info=True)
            documents = None
        await reply(outbox, message, stats_text(await usage_stats.summary(), documents, texts))

    return router


def usage_text(usage: UserUsage, texts: Texts, exempt: bool) -> str:
    words = texts.usage
    lines = [
        words.title,
        words.questions.format(count=usage.questions),
        words.tokens.format(count=usage.tokens),
    ]
    if exempt:
        lines.append(words.admin_exempt)
    elif usage.per_minute is None and usage.daily_tokens is None:
        lines.append(words.no_limits)
    else:
        if usage.per_minute is not None:
            lines.append(words.rate.format(limit=usage.per_minute, left=usage.left_this_minute))
        if usage.daily_tokens is not None:
            lines.append(words.budget.format(limit=usage.daily_tokens, left=usage.tokens_left))
    return "\n".join(lines)


def stats_text(summary: StatsSummary, documents: tuple[int, int] | None, texts: Texts) -> str:
    words = texts.usage
    today, week = summary.today, summary.week
    lines = [
        words.stats_title,
        words.stats_chats.format(today=summary.chats_today, week=summary.chats_week),
        words.stats_users.format(today=summary.users_today, week=summary.users_week),
        words.stats_answers.format(today=today.answers, week=week.answers),
        words.stats_tokens.format(today=today.tokens, week=week.tokens),
        words.stats_stopped.format(today=today.stopped, week=week.stopped),
    ]
    if week.failures:
        names = {kind.value: name for kind, name in words.failure_names.items()}
        listed = ", ".join(f"{names.get(kind, kind)} {count}" for kind, count in week.failures.items())
        lines.append(words.stats_failures.format(failures=listed))
    else:
        lines.append(words.stats_no_failures)
    if documents is None:
        lines.append(words.stats_knowledge_unknown)
    else:
        count, size = documents
        lines.append(words.stats_knowledge.format(count=count, size=human_size(size)))
    return "\n".join(lines)
