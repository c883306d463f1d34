"""Runs ONE HTTP fake (Telegram Bot API or Yandex Responses API) in its own process for the benchmark.

    python -m bench.fake_server telegram --private-interval 1 --group-per-minute 20 --global-per-second 30
    python -m bench.fake_server telegram ... --push-to http://127.0.0.1:PORT/telegram/webhook
    python -m bench.fake_server yandex --chunk-size 4 --cps 150 --first-delay 0.6 [--quota 10]

On start it prints one JSON line to stdout: {"api": <base URL of the fake>, "control": <control URL>}.
The control server (loopback) answers:

* ``GET /status``  — a few live counters (cheap; the harness polls it);
* ``POST /inject`` — telegram only, ``{"chats": [ids]}``: one question per private chat, all at once
  (or, with ``"spacing": s``, one every s seconds);
* ``POST /dump``   — ``{"path": ...}``: writes the raw measurements as JSON;
* ``POST /shutdown``.

With ``--push-to`` the Telegram fake plays Telegram's webhook delivery once the bot has called setWebhook:
every update is POSTed (with setWebhook's secret in ``X-Telegram-Bot-Api-Secret-Token``) to that address,
which stands for the registered HTTPS URL (like a TLS-terminating proxy would), over at most
``max_connections`` connections at once (setWebhook's parameter, Telegram's default 40); an update whose
POST fails or is not answered 200 is delivered again after a second, like Telegram does.

The process also exits on SIGTERM/SIGINT and when its parent dies (PR_SET_PDEATHSIG): no orphans.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import signal
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import aiohttp
from aiohttp import web

from bench.answer import ANSWER, chat_of_request, covered, normalise, question
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yandex import FakeYandex, Reply, split_chunks
from tests.fakes.yandex.quota import GenerationQuotaFake

FRAME_METHODS = frozenset({"sendmessage", "editmessagetext"})
VISIBLE_METHODS = frozenset({"sendchataction", "sendmessage", "sendmessagedraft"})
ANSWER_NORM = normalise(ANSWER)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PUSH_TIMEOUT = 60.0  # Telegram gives a webhook about a minute to answer
PUSH_RETRY_SECONDS = 1.0
PUSH_ATTEMPTS = 10


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits (no orphans if the harness is killed)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class BenchTelegram(FakeTelegram):
    """The Telegram fake, plus: when each update was first handed to the bot (in a getUpdates response,
    or, with ``push_to``, when its webhook POST was started)."""

    def __init__(self, *, push_to: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delivered_at: dict[int, float] = {}
        self.update_chat: dict[int, int] = {}
        self.injected_at: float | None = None
        self.complete_chats: set[int] = set()
        self.polled = False
        self.push_to = push_to
        self.webhook_secret = ""
        self.webhook_registrations = 0
        self.max_connections = 40
        self.pushed = 0
        self.push_failures = 0
        self.push_given_up = 0
        self._push_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pushers: list[asyncio.Task[None]] = []
        self._push_session: aiohttp.ClientSession | None = None
        self._injector: asyncio.Task[None] | None = None

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        result = super()._set_webhook(params)
        self.webhook_secret = str(params.get("secret_token") or "")
        self.max_connections = min(max(int(params.get("max_connections") or 40), 1), 100)
        self.webhook_registrations += 1
        if self.push_to and self.webhook_url:
            self.start_pushing()
        return result

    def add_update(self, update: dict[str, Any]) -> int:
        update_id = super().add_update(update)
        if self.push_to:
            self._push_queue.put_nowait(update)
        return update_id

    def start_pushing(self) -> None:
        """Deliver queued updates to the webhook from now on (the first setWebhook sets the connections)."""
        if self._pushers:
            return
        connector = aiohttp.TCPConnector(limit=self.max_connections)
        self._push_session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=PUSH_TIMEOUT)
        )
        self._pushers = [asyncio.create_task(self._pusher()) for _ in range(self.max_connections)]

    async def _pusher(self) -> None:
        assert self._push_session is not None
        while True:
            update = await self._push_queue.get()
            body = json.dumps(update).encode()
            headers = {"Content-Type": "application/json", SECRET_HEADER: self.webhook_secret}
            for _ in range(PUSH_ATTEMPTS):
                self.delivered_at.setdefault(update["update_id"], time.monotonic())
                try:
                    async with self._push_session.post(self.push_to, data=body, headers=headers) as reply:
                        await reply.read()
                        ok = reply.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    self.pushed += 1
                    with contextlib.suppress(ValueError):
                        self._updates.remove(update)  # confirmed, as getUpdates' offset would
                    break
                self.push_failures += 1
                await asyncio.sleep(PUSH_RETRY_SECONDS)
            else:
                self.push_given_up += 1

    async def stop(self) -> None:
        for task in self._pushers:
            task.cancel()
        await asyncio.gather(*self._pushers, return_exceptions=True)
        if self._push_session is not None:
            await self._push_session.close()
        await super().stop()

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.polled = True
        result = await super()._get_updates(params)
        now = time.monotonic()
        for update in result:
            self.delivered_at.setdefault(update["update_id"], now)
        return result

    def inject(self, chats: list[int], spacing: float = 0.0) -> dict[str, Any]:
        """One question per chat: all at once, or one every `spacing` seconds (in the background)."""
        self.injected_at = time.monotonic()
        if spacing > 0:
            self._injector = asyncio.create_task(self._inject_spaced(chats, spacing))
        else:
            for chat in chats:
                self._ask(chat)
        return {"injected": len(chats), "at": self.injected_at}

    async def _inject_spaced(self, chats: list[int], spacing: float) -> None:
        start = time.monotonic()
        for index, chat in enumerate(chats):
            await asyncio.sleep(max(0.0, start + index * spacing - time.monotonic()))
            self._ask(chat)

    def _ask(self, chat: int) -> None:
        message = self.user_message(chat, question(chat), first_name=f"User{chat}")
        # user_message() enqueued exactly one update; its id is the newest one.
        self.update_chat[self._next_update_id - 1] = message["chat"]["id"]

    def status(self) -> dict[str, Any]:
        latest: dict[int, str] = {}
        for (chat, _), sent in self._sent.items():
            if chat in self.complete_chats or sent.deleted or sent.text is None:
                continue
            latest[chat] = latest.get(chat, "") + sent.text
        for chat, text in latest.items():
            if covered(text, ANSWER_NORM) >= len(ANSWER_NORM):
                self.complete_chats.add(chat)
        return {
            "polling": self.polled,
            "webhook_registrations": self.webhook_registrations,
            "pushed": self.pushed,
            "push_failures": self.push_failures,
            "calls": len(self.calls),
            "flood": self.flood_count(),
            "complete": len(self.complete_chats),
            "delivered": len(self.delivered_at),
        }

    def dump(self) -> dict[str, Any]:
        calls = []
        for call in self.calls:
            method = call.method.lower()
            record: dict[str, Any] = {
                "m": method,
                "chat": call.params.get("chat_id"),
                "at": call.at,
                "st": call.status,
            }
            if method in FRAME_METHODS and call.status == 200:
                text = str(call.params.get("text") or "")
                record["cover"] = covered(text, ANSWER_NORM)
                if text.startswith("⏳"):
                    record["notice"] = True  # the bot's "your question is in line" message
            calls.append(record)
        return {
            "kind": "telegram",
            "answer_norm_len": len(ANSWER_NORM),
            "calls": calls,
            "delivered_at": {str(k): v for k, v in self.delivered_at.items()},
            "update_chat": {str(k): v for k, v in self.update_chat.items()},
            "injected_at": self.injected_at,
            "flood_count": self.flood_count(),
            "answer_messages": self._answer_messages(),
            "push": {
                "pushed": self.pushed,
                "failures": self.push_failures,
                "given_up": self.push_given_up,
                "max_connections": self.max_connections,
            },
        }

    def _answer_messages(self) -> dict[str, int]:
        """Per chat: the bot's messages (not deleted) that show some of the answer: 1 each, if none twice."""
        counts: Counter[int] = Counter()
        for (chat, _), sent in self._sent.items():
            text = sent.text or ""
            if not sent.deleted and not text.startswith("⏳") and covered(text, ANSWER_NORM) > 0:
                counts[chat] += 1
        return {str(chat): count for chat, count in counts.items()}


class BenchYandex:
    """The Yandex fake answering every question with ANSWER, recording when each delta was written."""

    def __init__(self, *, chunk_size: int, cps: float, first_delay: float, quota: int = 0) -> None:
        self.fake = FakeYandex()
        if quota:
            self.fake.quota = GenerationQuotaFake(limit=quota)  # Yandex's folder quota: 429 beyond it
        chunks = split_chunks(ANSWER, chunk_size)
        # Pace the chunks so the whole answer streams at `cps` characters per second on average.
        delay = len(ANSWER) / cps / max(1, len(chunks))
        self.reply = Reply(text=ANSWER, chunk_size=chunk_size, delay=delay, first_delay=first_delay)
        self.chunks_per_answer = len(chunks)
        self.fake.responder = lambda body: self.reply
        self.fake.on_delta = self._on_delta
        self.deltas: dict[int, list[tuple[float, int]]] = defaultdict(list)  # chat -> (at, alnum chars)
        # id(body) -> (body, chat): the body is kept so that its id is not reused by a later request's.
        self._chat_by_body: dict[int, tuple[dict[str, Any], int | None]] = {}
        self.total_deltas = 0
        self.unknown = 0

    def _on_delta(self, body: dict[str, Any], chunk: str, at: float) -> None:
        known = self._chat_by_body.get(id(body))
        if known is None or known[0] is not body:
            known = self._chat_by_body[id(body)] = (body, chat_of_request(body))
        chat = known[1]
        self.total_deltas += 1
        if chat is None:
            self.unknown += 1
            return
        self.deltas[chat].append((at, len(normalise(chunk))))

    def status(self) -> dict[str, Any]:
        finished = sum(1 for d in self.deltas.values() if len(d) >= self.chunks_per_answer)
        return {
            "requests": len(self.fake.requests),
            "open_streams": self.fake.open_streams,
            "deltas": self.total_deltas,
            "finished": finished,
            "closed_by_client": self.fake.closed_by_client,
            "quota_rejected": self.fake.quota.rejected if self.fake.quota else 0,
        }

    def dump(self) -> dict[str, Any]:
        quota = self.fake.quota
        return {
            "kind": "yandex",
            "chunks_per_answer": self.chunks_per_answer,
            "delay": self.reply.delay,
            "requests": len(self.fake.requests),
            "closed_by_client": self.fake.closed_by_client,
            "unknown_deltas": self.unknown,
            "deltas": {str(chat): items for chat, items in self.deltas.items()},
            # Every POST /v1/responses (refused ones too) as [chat, monotonic time it arrived].
            "starts": [[chat_of_request(r.body), r.at] for r in self.fake.requests],
            "quota": None
            if quota is None
            else {"limit": quota.limit, "peak": quota.peak, "rejected": quota.rejected},
        }


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if args.kind == "telegram":
        fake: Any = BenchTelegram(
            private_interval=args.private_interval or None,
            group_per_minute=args.group_per_minute or None,
            global_per_second=args.global_per_second or None,
            push_to=args.push_to,
        )
        api_url = await fake.start()
        target: Any = fake
    else:
        target = BenchYandex(
            chunk_size=args.chunk_size, cps=args.cps, first_delay=args.first_delay, quota=args.quota
        )
        api_url = await target.fake.start()
        fake = target.fake

    async def status(request: web.Request) -> web.Response:
        return web.json_response(target.status())

    async def inject(request: web.Request) -> web.Response:
        if not isinstance(target, BenchTelegram):
            raise web.HTTPNotFound()
        body = await request.json()
        chats = [int(c) for c in body["chats"]]
        return web.json_response(target.inject(chats, float(body.get("spacing") or 0)))

    async def dump(request: web.Request) -> web.Response:
        body = await request.json()
        data = target.dump()
        with open(body["path"], "w") as file:  # noqa: ASYNC230 - a one-off dump after the run
            json.dump(data, file)
        return web.json_response({"ok": True})

    async def shutdown(request: web.Request) -> web.Response:
        stop.set()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/status", status)
    app.router.add_post("/inject", inject)
    app.router.add_post("/dump", dump)
    app.router.add_post("/shutdown", shutdown)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"api": api_url, "control": f"http://127.0.0.1:{port}"}), flush=True)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await fake.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await runner.cleanup()


def main() -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["telegram", "yandex"])
    parser.add_argument("--private-interval", type=float, default=1.0)
    parser.add_argument("--group-per-minute", type=int, default=20)
    parser.add_argument("--global-per-second", type=int, default=30)
    parser.add_argument("--push-to", default="", help="telegram: POST updates here once setWebhook came")
    parser.add_argument("--chunk-size", type=int, default=4, help="0 = sentence-sized chunks")
    parser.add_argument("--cps", type=float, default=150.0, help="characters per second of a stream")
    parser.add_argument("--first-delay", type=float, default=0.6)
    parser.add_argument("--quota", type=int, default=0, help="concurrent generations per folder (0: none)")
    args = parser.parse_args()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
