"""The folder's quota of concurrent generations, shared fairly by every bot process through Redis.

Yandex lets a folder run 10 synchronous generations at once by default and answers 429 beyond that.
`GenerationQuota` is a semaphore of `limit` slots kept in Redis, so all bot processes together stay
within the folder's quota, and questions wait for a slot strictly in the order they arrived, whichever
process took them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from bot.keys import RedisKeys
from bot.log_context import ChatRef
from bot.outage import OutageLog

log = logging.getLogger(__name__)

PositionCallback = Callable[[int], Awaitable[None] | None]

_ADMITTED, _WAITING, _MISSING, _DUPLICATE = 1, 0, -1, -2

# One script does all the bookkeeping, atomically: it drops holders whose lease ran out and waiters whose
# process stopped heartbeating, renews this process's holders, heartbeats (and registers) its waiters and
# admits those whose place in the line fits the free slots. "rank < free" admits only waiters all of
# whose predecessors fit too, so nobody ever overtakes an earlier arrival.
#
# KEYS: queue (ticket -> arrival sequence), waiters (ticket -> heartbeat deadline),
#       holders (ticket -> lease deadline), sequence counter, channel
# ARGV: now, lease, waiter_ttl, limit, register (0/1), holder count, holders...,
#       waiter count, (ticket, sequence or "new")...
# Returns: one 0/1 per holder (lease renewed / lost), then (status, position, sequence) per waiter.
_TICK = """
local queue, waiters, holders = KEYS[1], KEYS[2], KEYS[3]
local now, lease, ttl, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local register = ARGV[5] == '1'
local moved = redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
local stale = redis.call('ZRANGEBYSCORE', waiters, '-inf', now)
for _, t in ipairs(stale) do
  redis.call('ZREM', queue, t)
  redis.call('ZREM', waiters, t)
end
moved = moved + #stale
local out = {}
local i = 6
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local t = ARGV[i]; i = i + 1
  if redis.call('ZSCORE', holders, t) then
    redis.call('ZADD', holders, 'XX', now + lease, t)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
n = tonumber(ARGV[i]); i = i + 1
local free = limit - redis.call('ZCARD', holders)
local admitted = 0
for _ = 1, n do
  local t, seq = ARGV[i], ARGV[i + 1]; i = i + 2
  local status, position = 0, 0
  local queued = redis.call('ZSCORE', queue, t)
  if register and seq == 'new' and (queued or redis.call('ZSCORE', holders, t)) then
    status = -2
  elseif redis.call('ZSCORE', holders, t) then
    status = 1
  elseif not queued then
    if register then
      if seq == 'new' then seq = redis.call('INCR', KEYS[4]) end
      redis.call('ZADD', queue, seq, t)
    else
      status = -1
    end
  end
  if status == 0 then
    redis.call('ZADD', waiters, now + ttl, t)
    local rank = redis.call('ZRANK', queue, t)
    if rank < free then
      redis.call('ZREM', queue, t)
      redis.call('ZREM', waiters, t)
      redis.call('ZADD', holders, now + lease, t)
      free = free - 1
      admitted = admitted + 1
      status = 1
    else
      position = rank + 1
    end
  end
  out[#out + 1] = status
  out[#out + 1] = position
  out[#out + 1] = tonumber(seq) or 0
end
if moved + admitted > 0 then redis.call('PUBLISH', KEYS[5], 'moved') end
return out
"""

# KEYS: queue, waiters, holders, channel; ARGV: ticket. Leaving the line and giving a slot back are one
# operation, so a ticket is gone whatever state a cancellation caught it in.
_LEAVE = """
local removed = redis.call('ZREM', KEYS[3], ARGV[1]) + redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if removed > 0 then redis.call('PUBLISH', KEYS[4], 'moved') end
return removed
"""


class DuplicateTicket(ValueError):
    """A ticket id that is already waiting or holding a slot."""


@dataclass(eq=False)
class _Ticket:
    id: str
    sequence: str = "new"
    position: int = 0
    holding: bool = False
    missing: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class GenerationQuota:
    """A fair semaphore in Redis with `limit` slots, shared by all processes using the same keys.

    A holder has a lease of `lease_seconds`, renewed while it holds the slot, so a crashed process's
    slots come back within one lease. Waiters are served in arrival order across processes; each
    process heartbeats its waiters, so a dead process's place in line is dropped within
    `waiter_ttl_seconds`. Waiting is woken by a pub/sub message whenever the line moves, with a poll every
    `poll_seconds` as a safety net; one Redis script per process does the work for all its tickets, so
    hundreds of waiters cost a few commands per released slot, not one each.

    Scores are wall-clock times from `clock`, compared across processes: hosts need synchronised clocks
    (skew well under a lease).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        keys: RedisKeys,
        limit: int = 10,
        lease_seconds: float = 6.0,
        poll_seconds: float = 1.0,
        waiter_ttl_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._redis = redis
        self.limit = limit
        self._lease = lease_seconds
        # Holders renew three times per lease; waiters heartbeat (and re-check) every poll.
        self._renew_every = lease_seconds / 3
        self._poll = min(poll_seconds, self._renew_every)
        self._waiter_ttl = waiter_ttl_seconds or max(lease_seconds, 4 * self._poll)
        self._clock = clock
        self._queue = keys.quota_queue
        self._waiters = keys.quota_waiters
        self._holders = keys.quota_holders
        self._sequence = keys.quota_sequence
        self._channel = keys.quota_moved
        self._tick_script = redis.register_script(_TICK)
        self._leave_script = redis.register_script(_LEAVE)
        self._local: dict[str, _Ticket] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._outage = OutageLog(log, "the generation quota in Redis")

    # ------------------------------------------------------------------ the slot

    @contextlib.asynccontextmanager
    async def slot(
        self,
        ticket_id: str,
        *,
        on_position: PositionCallback | None = None,
        arrival: int | None = None,
    ) -> AsyncIterator[None]:
        """Hold one slot for the body; wait in line first, reporting the 1-based place through `on_position`.

        `on_position` is called with the place when the waiter registers and whenever it changes (never
        once the slot is held); it runs in the waiter's own task, so it may await. Cancelling (a /stop)
        leaves the line at once; leaving the body gives the slot back, on every exit path.

        The place in line is `arrival` when given — an integer that orders every caller of every process
        (the bot passes the microsecond its question arrived, in Telegram's order for a message, so the
        work between arrival and the model request cannot reorder questions) — else the next number of
        the shared counter. One line should use one kind: counter numbers all sort before timestamps.
        """
        if ticket_id in self._local:
            raise DuplicateTicket(
                f"ticket {ticket_id!r} is already in line or holding a slot in this process"
            )
        ticket = _Ticket(ticket_id, sequence="new" if arrival is None else str(arrival))
        self._local[ticket_id] = ticket
        try:
            await self._register(ticket)
        except BaseException as error:
            self._local.pop(ticket_id, None)
            if not isinstance(error, DuplicateTicket):  # a duplicate's entry in Redis is someone else's
                # A cancellation may have reached Redis after the script ran: leave to be sure.
                await asyncio.shield(self._leave(ticket_id))
            raise
        try:
            reported = 0
            while not ticket.holding:
                if ticket.missing:
                    # Our heartbeat lapsed (a long stall) and the line dropped us: take our place back.
                    await self._register(ticket)
                    continue
                if ticket.position != reported and on_position is not None:
                    reported = ticket.position
                    result = on_position(reported)
                    if inspect.isawaitable(result):
                        await result
                    continue  # the line may have moved while the callback ran
                reported = ticket.position
                ticket.changed.clear()
                self._ensure_dispatcher()
                await ticket.changed.wait()
            self._ensure_dispatcher()  # renews the lease while the body runs
            yield
        finally:
            self._local.pop(ticket_id, None)
            # Shielded: a cancelled waiter or holder must still leave, or it would hold up the line.
            await asyncio.shield(self._leave(ticket_id))

    async def _register(self, ticket: _Ticket) -> None:
        result = await self._tick([], [ticket], register=True)
        status, position, sequence = result[0], result[1], result[2]
        if status == _DUPLICATE:
            raise DuplicateTicket(f"ticket {ticket.id!r} is already in line or holding a slot")
        ticket.sequence = str(sequence)
        ticket.missing = False
        self._apply(ticket, status, position)

    async def _leave(self, ticket_id: str) -> None:
        try:
            await self._leave_script(
                keys=[self._queue, self._waiters, self._holders, self._channel], args=[ticket_id]
            )
        except Exception:  # the lease or the heartbeat frees it within seconds anyway
            log.warning("could not leave the generation line for %s", ticket_id, exc_info=True)

    # ------------------------------------------------------------------ metrics

    async def position(self, ticket_id: str) -> int | None:
        """The 1-based place of a waiting ticket, or None when it is not waiting."""
        rank = await self._redis.zrank(self._queue, ticket_id)
        return None if rank is None else int(rank) + 1  # type: ignore[arg-type]  # no WITHSCORE: an int

    async def running(self) -> int:
        """Slots held right now (leases not yet run out), across all processes."""
        return int(await self._redis.zcount(self._holders, f"({self._clock()}", "+inf"))

    async def waiting(self) -> int:
        """Tickets waiting right now (heartbeats not yet run out), across all processes."""
        return int(await self._redis.zcount(self._waiters, f"({self._clock()}", "+inf"))

    async def aclose(self) -> None:
        """Stop this process's dispatcher (tickets still inside `slot` stop being renewed)."""
        task, self._dispatcher = self._dispatcher, None
        if task is not None:
            task.cancel()  # also stops it at its next round if redis-py swallows the cancellation
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ the dispatcher

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="generation-quota")

    async def _dispatch(self) -> None:
        """Renews this process's holders and moves its waiters, until it has no ticket left."""
        me = asyncio.current_task()
        try:
            async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(self._channel)
                next_full = 0.0  # monotonic time of the next heartbeat of every ticket
                woken = True
                while True:
                    # Checked here too, not only raised: a cancel that lands while redis-py's read timeout
                    # fires can be swallowed by it, and the loop would carry on.
                    if me is None or me.cancelling() or me is not self._dispatcher:
                        return
                    if not self._local:
                        # Decided synchronously: a slot() registering from now on starts a new dispatcher.
                        if self._dispatcher is me:
                            self._dispatcher = None
                        return
                    now = time.monotonic()
                    full = now >= next_full
                    if full or (woken and self._waiting_tickets()):
                        await self._safe_round(full=full)
                        if full:
                            next_full = now + (self._poll if self._waiting_tickets() else self._renew_every)
                    timeout = max(0.0, next_full - time.monotonic())
                    woken = await _next_message(pubsub, timeout)
        finally:
            if self._dispatcher is me:
                self._dispatcher = None

    def _waiting_tickets(self) -> list[_Ticket]:
        return [t for t in self._local.values() if not t.holding and not t.missing]

    async def _safe_round(self, *, full: bool) -> None:
        try:
            await self._round(full=full)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a Redis hiccup: the next round retries; leases and heartbeats have slack
            self._outage.failed(error)  # one line per outage, not a traceback every round
        else:
            self._outage.ok()

    async def _round(self, *, full: bool) -> None:
        holders = [t for t in self._local.values() if t.holding]
        waiting = sorted(self._waiting_tickets(), key=lambda t: t.position)
        if not full:
            # Woken because the line moved: only waiters that could fit a free slot need asking now;
            # everybody's place is refreshed at the next full round (the poll).
            holders = []
            waiting = waiting[: self.limit]
        result = await self._tick(holders, waiting, register=False)
        for holder, renewed in zip(holders, result, strict=False):
            # A holder that gave its slot back while the round ran is not a lost lease. The ticket id
            # begins with the chat key, so it is logged as a ChatRef (hidden unless LOG_CHAT_IDS).
            if not renewed and self._local.get(holder.id) is holder and holder.holding:
                log.warning("a generation slot in %s was lost (lease ran out)", ChatRef(holder.id))
        offset = len(holders)
        for index, ticket in enumerate(waiting):
            status, position = result[offset + 3 * index], result[offset + 3 * index + 1]
            if ticket.id not in self._local:
                continue  # left meanwhile; its own leave cleans up
            if status == _MISSING:
                ticket.missing = True
                ticket.changed.set()
            else:
                self._apply(ticket, status, position)

    def _apply(self, ticket: _Ticket, status: int, position: int) -> None:
        if status == _ADMITTED:
            ticket.holding = True
            ticket.changed.set()
        elif position != ticket.position:
            ticket.position = position
            ticket.changed.set()

    async def _tick(self, holders: list[_Ticket], waiting: list[_Ticket], *, register: bool) -> list[int]:
        args: list[str | float | int] = [
            self._clock(),
            self._lease,
            self._waiter_ttl,
            self.limit,
            1 if register else 0,
            len(holders),
            *(t.id for t in holders),
            len(waiting),
        ]
        for ticket in waiting:
            args += [ticket.id, ticket.sequence]
        keys = [self._queue, self._waiters, self._holders, self._sequence, self._channel]
        result = await self._tick_script(keys=keys, args=args)
        return [int(value) for value in result]


async def _next_message(pubsub: PubSub, timeout: float) -> bool:  # noqa: ASYNC109 - a poll interval
    """Wait up to `timeout` for a "line moved" message; drain any backlog so a burst costs one round."""
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
    if message is None:
        return False
    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0) is not None:
        pass
    return True
