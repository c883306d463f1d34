"""What Telegram allows the bot to send: the bot-wide budget, each group's pace and flood bans.

Telegram counts per bot token, so these limits are the same for every process of one bot: with Redis they
live there (`RedisCallBudget`, one Lua round trip per call); the embedded store keeps them in memory
(`CallBudget`), where there is only one process anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.clock import Clock
from bot.keys import RedisKeys
from bot.outage import OutageLog

log = logging.getLogger(__name__)

# Telegram allows about 30 messages per second per bot (edits included); staying below leaves room for
# commands, chat actions and other processes' bursts.
DEFAULT_CALLS_PER_SECOND = 25.0
# Telegram counts calls in a rolling second: rate + burst must stay under 30 even when requests bunch up.
DEFAULT_BURST = 1.0
# About 20 messages a minute per group, shared by every topic, answer, notice and history page there;
# counted over a rolling minute like Telegram does (a second longer: our count starts when a call is
# sent, Telegram's when it arrives).
GROUP_CALLS_PER_MINUTE = 20
GROUP_WINDOW_SECONDS = 61.0
# About one message a second per private chat, short bursts tolerated: a bucket a little smaller and
# slower than Telegram's, shared by every answer and notice in that chat.
PRIVATE_BURST = 2.0
PRIVATE_CALLS_PER_SECOND = 1 / 1.05


_EPSILON = 1e-9  # float slack, so that sleeping exactly the computed wait is always enough
# A process's first waiting caller asks again at least once per token (40 ms at 25/s); one not seen for
# this long has been cancelled or its process is gone, and the others stop waiting for it.
HEAD_FRESH_MS = 250


def is_group(chat_id: int | None) -> bool:
    """Groups, supergroups and channels have negative ids; private chats positive ones."""
    return chat_id is not None and chat_id < 0


class Budget(Protocol):
    """The limits every Telegram call of the bot keeps to."""

    async def acquire(self, chat_id: int | None = None, *, max_ban: float | None = None) -> bool:
        """Wait until a call to `chat_id` may go out: its flood ban is over, its group has room in the
        rolling minute, and the bot-wide budget has a call. False, without waiting, when the chat's ban
        lasts longer than `max_ban` seconds."""
        ...

    async def flooded(self, chat_id: int, retry_after: float) -> None:
        """Telegram answered 429: nothing goes to that chat, from any answer or process, until then."""
        ...


class CallBudget:
    """The limits in memory, for one process: a token bucket for the bot (`rate` calls per second on
    average, at most `burst` at once), a rolling window per group, and each chat's ban.

    Waiters for the bot-wide budget are served first come, first served (one asyncio.Lock queue), so when
    many chats stream at once each gets its turn in order rather than the fastest ones starving the rest.
    Callers render their frame after `acquire()` returns, so the wait never makes a frame stale.
    """

    def __init__(
        self,
        clock: Clock,
        rate: float = DEFAULT_CALLS_PER_SECOND,
        burst: float | None = None,
        *,
        group_per_minute: int = GROUP_CALLS_PER_MINUTE,
        group_window: float = GROUP_WINDOW_SECONDS,
    ) -> None:
        self._clock = clock
        self._rate = rate
        self._group_window = group_window
        self._burst = burst if burst is not None else DEFAULT_BURST
        self._tokens = self._burst
        self._updated = clock.now()
        self._queue = asyncio.Lock()
        self._group_limit = group_per_minute
        self._groups: dict[int, deque[float]] = {}
        self._private: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
        self._bans: dict[int, float] = {}

    def _refill(self) -> None:
        now = self._clock.now()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    def _chat_wait(self, chat_id: int | None) -> tuple[float, float]:
        """(seconds of ban left, seconds until the group has room)."""
        if chat_id is None:
            return 0.0, 0.0
        now = self._clock.now()
        ban = self._bans.get(chat_id, 0.0) - now
        if ban <= 0:
            self._bans.pop(chat_id, None)
        room = 0.0
        if is_group(chat_id):
            window = self._groups.setdefault(chat_id, deque())
            while window and window[0] <= now - self._group_window + _EPSILON:
                window.popleft()
            if len(window) >= self._group_limit:
                room = window[0] + self._group_window - now
            elif not window:
                del self._groups[chat_id]
        else:
            tokens = self._private_tokens(chat_id, now)
            if tokens < 1 - _EPSILON:
                room = (1 - tokens) / PRIVATE_CALLS_PER_SECOND
        return max(ban, 0.0), room

    def _private_tokens(self, chat_id: int, now: float) -> float:
        tokens, at = self._private.get(chat_id, (PRIVATE_BURST, now))
        return min(PRIVATE_BURST, tokens + (now - at) * PRIVATE_CALLS_PER_SECOND)

    async def acquire(self, chat_id: int | None = None, *, max_ban: float | None = None) -> bool:
        while True:
            ban, room = self._chat_wait(chat_id)
            if max_ban is not None and ban > max_ban:
                return False
            if ban > 0 or room > 0:
                await self._clock.sleep(max(ban, room))
                continue
            async with self._queue:
                self._refill()
                if self._tokens < 1:
                    await self._clock.sleep((1 - self._tokens) / self._rate)
                    self._refill()
                if any(self._chat_wait(chat_id)):
                    continue  # a ban or the group's last slot came while waiting for the budget
                self._tokens -= 1
                now = self._clock.now()
                if is_group(chat_id):
                    assert chat_id is not None
                    self._groups.setdefault(chat_id, deque()).append(now)
                elif chat_id is not None:
                    self._private[chat_id] = (self._private_tokens(chat_id, now) - 1, now)
                return True

    async def flooded(self, chat_id: int, retry_after: float) -> None:
        until = self._clock.now() + retry_after
        self._bans[chat_id] = max(self._bans.get(chat_id, 0.0), until)


# One round trip per call: the chat's ban, then its own limit (a group's rolling minute, a private
# chat's small bucket), then the bot-wide token bucket; a call is counted only when all three let it
# through. Time is Redis's own, so processes on different machines agree. Returns {0, 0} (go), or
# {reason, milliseconds to wait}: 1 ban, 2 the chat's limit, 3 the bot's budget.
#
# The bot's budget goes to callers in the order they began to wait, across processes: each process's
# first waiting caller (its head; the others queue behind it in the process) is in `heads` with the
# wall-clock ms it began to wait, and a call goes only when no other process's head still asking
# (seen within ARGV[11] ms) began earlier. Otherwise every process would get about the same share of
# the budget however many answers it carries, and the busiest process's answers would wait longest.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pid, since, fresh = ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
local function leave()
  redis.call('ZREM', KEYS[4], pid)
  redis.call('HDEL', KEYS[5], pid)
end
local ban = redis.call('PTTL', KEYS[3])
if ban > 0 then leave() return {1, ban} end
local function bucket(key, rate, burst)
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  return math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
end
local window = tonumber(ARGV[4])
local kind = ARGV[6]
local chat_tokens = 0
if kind == 'group' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    leave()
    return {2, math.max(1, tonumber(oldest[2]) + window - now)}
  end
elseif kind == 'private' then
  chat_tokens = bucket(KEYS[2], tonumber(ARGV[7]), tonumber(ARGV[8]))
  if chat_tokens < 1 then
    leave()
    return {2, math.max(1, math.ceil((1 - chat_tokens) * 1000 / tonumber(ARGV[7])))}
  end
end
local rate = tonumber(ARGV[1])
local tokens = bucket(KEYS[1], rate, tonumber(ARGV[2]))
local next_token = math.max(1, math.ceil((1 - tokens) * 1000 / rate))
redis.call('ZADD', KEYS[4], since, pid)
redis.call('HSET', KEYS[5], pid, now)
redis.call('PEXPIRE', KEYS[4], 60000)
redis.call('PEXPIRE', KEYS[5], 60000)
local heads = redis.call('ZRANGE', KEYS[4], 0, -1)
for _, other in ipairs(heads) do
  if other == pid then break end
  local seen = tonumber(redis.call('HGET', KEYS[5], other) or '0')
  if now - seen <= fresh then
    -- an earlier caller of another process goes first: ask again after its token
    return {3, tokens < 1 and next_token or math.max(1, math.ceil(1000 / rate))}
  end
  redis.call('ZREM', KEYS[4], other)  -- stopped asking (cancelled, or its process is gone)
  redis.call('HDEL', KEYS[5], other)
end
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', KEYS[1], 60000)
  return {3, next_token}
end
leave()
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', now)
redis.call('PEXPIRE', KEYS[1], 60000)
if kind == 'group' then
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], window)
elseif kind == 'private' then
  redis.call('HSET', KEYS[2], 'tokens', tostring(chat_tokens - 1), 'at', now)
  redis.call('PEXPIRE', KEYS[2], 60000)
end
return {0, 0}
"""
# A ban only ever grows: a shorter retry_after seen later does not end a longer one early.
_FLOODED = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], 1, 'PX', ms) end
return 1
"""

_BAN, _GROUP, _BOT = 1, 2, 3


class RedisCallBudget:
    """The same limits kept in Redis, so every process of the bot shares them (Telegram counts per token).

    Waiters for the bot-wide budget are served first come, first served: within a process in one queue,
    across processes by when each process's first waiter began to wait (the script's `heads`), so a
    process carrying more answers gets more of the budget. A chat that waits for its ban or its group's
    minute waits outside that queue and holds nobody else up.

    While Redis is unreachable the process keeps to the same limits on its own (an in-memory
    `CallBudget` that also learns every ban), so an outage slows nothing that was already streaming and
    never sends faster than one process may; the shared count resumes when Redis is back.
    """

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        clock: Clock,
        *,
        rate: float = DEFAULT_CALLS_PER_SECOND,
        burst: float = DEFAULT_BURST,
        group_per_minute: int = GROUP_CALLS_PER_MINUTE,
        group_window: float = GROUP_WINDOW_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._wall_clock = wall_clock  # when a caller began to wait, compared across processes
        self._args = (str(rate), str(burst), str(group_per_minute), str(int(group_window * 1000)))
        self._private_args = (str(PRIVATE_CALLS_PER_SECOND), str(PRIVATE_BURST))
        self._acquire = redis.register_script(_ACQUIRE)
        self._flooded = redis.register_script(_FLOODED)
        self._queue = asyncio.Lock()
        self._process = uuid.uuid4().hex[:12]
        self._names = (f"{self._process}:{number}" for number in itertools.count())
        self._local = CallBudget(
            clock, rate, burst, group_per_minute=group_per_minute, group_window=group_window
        )
        self._outage = OutageLog(log, "the shared Telegram limits in Redis")

    async def _try(self, chat_id: int | None, since_ms: int) -> tuple[int, float]:
        chat = chat_id if chat_id is not None else 0
        kind = "none" if chat_id is None else "group" if is_group(chat_id) else "private"
        keys = [
            self._keys.telegram_budget,
            self._keys.telegram_chat(chat),
            self._keys.telegram_ban(chat),
            self._keys.telegram_heads,
            self._keys.telegram_heads_seen,
        ]
        args: list[str | int] = [
            *self._args,
            next(self._names),
            kind,
            *self._private_args,
            self._process,
            since_ms,
            HEAD_FRESH_MS,
        ]
        reason, wait_ms = await self._acquire(keys=keys, args=args)
        return int(reason), int(wait_ms) / 1000

    async def acquire(self, chat_id: int | None = None, *, max_ban: float | None = None) -> bool:
        try:
            granted = await self._acquire_shared(chat_id, max_ban)
        except (RedisConnectionError, RedisTimeoutError) as error:
            self._outage.failed(error)
            return await self._local.acquire(chat_id, max_ban=max_ban)
        self._outage.ok()
        return granted

    async def _acquire_shared(self, chat_id: int | None, max_ban: float | None) -> bool:
        since_ms = int(self._wall_clock() * 1000)  # its place among all processes' callers
        while True:
            async with self._queue:
                while True:
                    reason, wait = await self._try(chat_id, since_ms)
                    if reason != _BOT:
                        break
                    await self._clock.sleep(wait)  # the bot's budget: wait in line, keeping our place
            if reason == _BAN and max_ban is not None and wait > max_ban:
                return False
            if reason in (_BAN, _GROUP):
                await self._clock.sleep(wait)
                continue
            return True

    async def flooded(self, chat_id: int, retry_after: float) -> None:
        await self._local.flooded(chat_id, retry_after)
        ms = max(1, int(retry_after * 1000))
        try:
            await self._flooded(keys=[self._keys.telegram_ban(chat_id)], args=[ms])
        except (RedisConnectionError, RedisTimeoutError) as error:
            self._outage.failed(error)


# Calls that do not count against Telegram's message budget (reading, polling, chat actions, set-up).
_FREE_METHODS = frozenset(
    {
        "getUpdates",
        "getMe",
        "getFile",
        "getChat",
        "sendChatAction",
        "answerCallbackQuery",
        "setMyCommands",
        "deleteMyCommands",
        "getMyCommands",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "close",
        "logOut",
    }
)
_prepaid: ContextVar[bool] = ContextVar("budget_prepaid", default=False)


@contextlib.contextmanager
def prepaid() -> Iterator[None]:
    """Mark the calls made inside as already paid for (the streamer acquires before rendering)."""
    token = _prepaid.set(True)
    try:
        yield
    finally:
        _prepaid.reset(token)


class BudgetMiddleware(BaseRequestMiddleware):
    """Every message-sending call of the bot, whoever makes it, waits for the shared budget.

    So command replies, error messages and uploads' status lines cannot push the bot over Telegram's
    bot-wide limit while many answers stream.
    """

    def __init__(self, budget: Budget) -> None:
        self._budget = budget

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name: Any = getattr(method, "__api_method__", "")
        if name in _FREE_METHODS:
            return await make_request(bot, method)
        chat = getattr(method, "chat_id", None)
        chat_id = chat if isinstance(chat, int) else None
        if not _prepaid.get():
            await self._budget.acquire(chat_id)
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as error:
            if chat_id is not None:  # whoever made the call, the whole bot now leaves that chat alone
                await self._budget.flooded(chat_id, error.retry_after)
            raise
