"""Scale-out benchmark: K bot processes in webhook mode behind a load balancer, one Redis, N chats at once.

    .venv/bin/python -m bench.scale --processes 1 2 4 --chats 1000 [--modes round-robin duplicate]
        [--quota 10] [--spacing 0.05] [--own-redis] [--tracemalloc] [--redis-url redis://127.0.0.1:6379/14]

The harness of bench/streaming.py, in webhook mode. The Telegram fake (flood control on: 1 msg/s per private
chat with a burst of 3, 20/min per group, 30/s per bot) and the Yandex fake each run in their own process
(bench/fake_server.py). K real ``python -m bot`` processes run with WEBHOOK_URL/WEBHOOK_SECRET set, each
listening on its own loopback port, all with the same REDIS_URL and a unique REDIS_PREFIX. The Telegram
fake POSTs every update (as Telegram does after setWebhook: the secret header, at most 40 connections,
re-delivery when not answered 200) to a small load balancer in this harness, which forwards each POST to
one process, round robin; in mode ``duplicate`` (``--duplicate``) each update also goes to the next
process (a different one when K > 1), at the same time, as a retry behind a load balancer would.

N private chats each send one question, all injected at once (``--spacing S``: one every S seconds, so that
arrival order is not decided by which process the OS scheduled first); the Yandex fake answers each with the
streaming benchmark's ~1,550-character answer (token-sized chunks by default). With ``--quota Q`` the
Yandex fake refuses more than Q generations at once (429, its folder quota) and every bot process runs with
YANDEX_MAX_CONCURRENT_GENERATIONS=Q; bench/quota.py's fairness figures are then reported too, by process.

Measured per run (see bench/streaming.py for display lag and first sign; first sign starts when the
Telegram fake starts the webhook POST):

* answers done, duplicates shown (extra bot messages showing the answer in a chat: must be 0) and chats
  whose question was streamed by the model twice;
* Telegram 429s; display lag p50/p95/p99 and its ratio to the K = 1 run of the same N and mode;
* CPU per answer summed over the K bot processes; each process's peak RSS (VmHWM) and
  (sampled peak RSS - idle RSS) / the answers it was given;
* Redis CPU (INFO cpu used_cpu_sys + used_cpu_user, after - before) and Redis commands per answer (INFO
  commandstats calls, after - before, over N). On a shared Redis these include other clients' work:
  ``--own-redis`` starts a private redis-server for the run so that they are the bots' alone.

``--tracemalloc`` runs process 0 under tracemalloc (bench/traced_bot.py) and writes the allocation sites
that grew most between idle and the moment most streams were open to bench/results/<run>.tracemalloc.txt.

Results: a table on stdout, JSON in bench/results/scale-<time>.json. Every process is killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import quota as quota_bench
from bench.answer import ANSWER
from bench.fake_server import SECRET_HEADER
from bench.streaming import (
    CHUNK_SIZES,
    FIRST_CHAT,
    PYTHON,
    RESULTS,
    ROOT,
    SETTLE_SECONDS,
    TELEGRAM_LIMITS,
    UNLIMITED_GENERATIONS,
    Child,
    EndOfRun,
    _loadavg,
    analyse,
    bot_env,
    clean_redis,
    cpu_seconds,
    get_json,
    machine,
    memory_kib,
    render,
    spawn,
    spawn_fake,
)

WEBHOOK_URL = "https://bench.invalid/telegram/webhook"  # what setWebhook registers; the fake POSTs to the LB
WEBHOOK_PATH = "/telegram/webhook"
WEBHOOK_SECRET = "bench_Webhook-secret"
STARTUP_TIMEOUT = 120.0  # K processes importing aiogram at once on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------------------- load balancer


class LoadBalancer:
    """Telegram's side of the webhook: forwards each POST to one bot process round robin (two with
    `duplicate`, at the same time) and answers with the best status; remembers who got which update."""

    def __init__(self, duplicate: bool) -> None:
        self.duplicate = duplicate
        self.targets: list[str] = []
        self.assigned: dict[int, list[int]] = {}  # update_id -> indexes of the processes it went to
        self.statuses: Counter[int] = Counter()
        self._next = 0
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=400), timeout=aiohttp.ClientTimeout(total=60)
        )
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}{WEBHOOK_PATH}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = request.headers.get(SECRET_HEADER, "")
        count = len(self.targets)
        first = self._next % count
        self._next += 1
        picks = [first, (first + 1) % count] if self.duplicate else [first]
        with contextlib.suppress(ValueError, KeyError, TypeError):
            self.assigned[int(json.loads(body)["update_id"])] = picks
        statuses = await asyncio.gather(*(self._forward(self.targets[i], body, secret) for i in picks))
        return web.Response(status=200 if 200 in statuses else max(statuses))

    async def _forward(self, url: str, body: bytes, secret: str) -> int:
        assert self._session is not None
        headers = {"Content-Type": "application/json", SECRET_HEADER: secret}
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 502
        self.statuses[status] += 1
        return status


async def wait_for_file(path: Path, seconds: float = 180.0) -> None:
    """A traced snapshot of a large heap takes a while (the process stands still meanwhile); the file
    comes from another process, so it is polled for."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:  # noqa: ASYNC110, ASYNC240
        await asyncio.sleep(0.5)


# ------------------------------------------------------------------------------------------- redis


async def start_redis(workdir: Path) -> tuple[Child, str]:
    """A private redis-server for one run, so that its CPU and command counts are the bots' alone."""
    port = free_port()
    child = await spawn(
        "redis",
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        workdir / "redis.log",
        cwd=workdir,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 15
    while True:
        try:
            await redis_counters(url)
            return child, url
        except Exception:
            if time.monotonic() > deadline or child.process.returncode is not None:
                await child.stop()
                raise RuntimeError(f"redis-server did not start; see {child.log_path}") from None
            await asyncio.sleep(0.1)


async def redis_counters(url: str) -> dict[str, Any]:
    """The server's CPU seconds (user + sys) and commands served so far, by command."""
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=3)
    try:
        cpu = await client.info("cpu")
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {"cpu": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), "calls": calls}


def redis_delta(before: dict[str, Any], after: dict[str, Any], answers: int) -> dict[str, Any]:
    calls = Counter(after["calls"])
    calls.subtract(before["calls"])
    calls.pop("info", None)  # the harness's own INFO calls
    total = sum(v for v in calls.values() if v > 0)
    per = max(answers, 1)
    return {
        "redis_cpu_seconds": after["cpu"] - before["cpu"],
        "redis_cpu_ms_per_answer": (after["cpu"] - before["cpu"]) * 1000 / per,
        "redis_commands": total,
        "redis_commands_per_answer": total / per,
        "redis_commands_top": {k: v / per for k, v in calls.most_common(12) if v > 0},
    }


# ------------------------------------------------------------------------------------------- one run


def duplicates(tg: dict[str, Any], ya: dict[str, Any], chats: list[int]) -> dict[str, Any]:
    shown = {int(chat): count for chat, count in tg["answer_messages"].items()}
    per_answer = ya["chunks_per_answer"]
    return {
        "duplicates_shown": sum(max(0, shown.get(chat, 0) - 1) for chat in chats),
        "chats_shown_twice": sum(1 for chat in chats if shown.get(chat, 0) > 1),
        "chats_streamed_twice": sum(1 for chat in chats if len(ya["deltas"].get(str(chat), [])) > per_answer),
    }


async def run_once(n: int, k: int, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    duplicate = mode == "duplicate"
    run_id = f"scale-k{k}-n{n}{'-dup' if duplicate else ''}{f'-q{args.quota}' if args.quota else ''}"
    run_id += f"-{time.strftime('%Y%m%d-%H%M%S')}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    children: list[Child] = []
    bots: list[Child] = []
    balancer = LoadBalancer(duplicate)
    answer_seconds = args.first_delay + len(ANSWER) / args.cps
    max_wait = args.max_wait or (n / args.quota * answer_seconds * 1.5 + 120 if args.quota else 60 + 0.15 * n)
    result: dict[str, Any] = {
        "run": run_id,
        "processes": k,
        "chats": n,
        "mode": mode,
        "quota": args.quota,
        "chunks": args.chunks,
        "own_redis": args.own_redis,
        "spacing": args.spacing,
        "loadavg_before": _loadavg(),
    }
    chats = list(range(FIRST_CHAT, FIRST_CHAT + n))
    wall_start = time.monotonic()
    redis_url = args.redis_url
    traced = RESULTS / f"{run_id}.tracemalloc.txt"
    try:
        lb_url = await balancer.start()
        if args.own_redis:
            redis, redis_url = await start_redis(workdir)
            children.append(redis)
        telegram, tg_info = await spawn_fake(
            "telegram",
            [*TELEGRAM_LIMITS, "--push-to", lb_url],
            workdir,
        )
        children.append(telegram)
        yandex_args = ["--chunk-size", str(CHUNK_SIZES[args.chunks]), "--cps", str(args.cps)]
        yandex_args += ["--first-delay", str(args.first_delay), "--quota", str(args.quota)]
        yandex, ya_info = await spawn_fake("yandex", yandex_args, workdir)
        children.append(yandex)
        ports = [free_port() for _ in range(k)]
        for index, port in enumerate(ports):
            extra = {
                "WEBHOOK_URL": WEBHOOK_URL,
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                "WEBHOOK_HOST": "127.0.0.1",
                "WEBHOOK_PORT": str(port),
                "WEBHOOK_PATH": WEBHOOK_PATH,
                "STREAM_INTERVAL": str(args.interval),
                "BURST_SECONDS": str(args.burst),
            }
            # Without --quota nothing but Telegram should limit the answers: the bot's own line of
            # generations (10 by default) is opened to its maximum.
            extra["YANDEX_MAX_CONCURRENT_GENERATIONS"] = str(args.quota or UNLIMITED_GENERATIONS)
            command = [PYTHON, "-m", "bot"]
            if args.tracemalloc and index == 0:
                command = [PYTHON, "-m", "bench.traced_bot"]
                extra["BENCH_TRACEMALLOC_OUT"] = str(traced)
            env = bot_env(tg_info, ya_info, redis_url, prefix, ROOT, {**extra, **dict(args.env)})
            log = RESULTS / f"{run_id}.bot{index}.log"
            bot = await spawn(f"bot{index}", command, log, env=env, cwd=workdir)
            bots.append(bot)
            children.append(bot)
        balancer.targets = [f"http://127.0.0.1:{port}{WEBHOOK_PATH}" for port in ports]

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            tg_ctl, ya_ctl = tg_info["control"], ya_info["control"]
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while (await get_json(http, f"{tg_ctl}/status"))["webhook_registrations"] < k:
                dead = [b.name for b in bots if b.process.returncode is not None]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"bots did not all register the webhook (exited: {dead})")
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)
            idle = [memory_kib(b.pid).get("VmRSS", 0) for b in bots]
            cpu0 = [cpu_seconds(b.pid) for b in bots]
            harness0 = time.process_time()
            redis0 = await redis_counters(redis_url)
            if args.tracemalloc:
                bots[0].process.send_signal(signal.SIGUSR1)  # the idle snapshot
                await wait_for_file(Path(f"{traced}.idle"))
            t0 = time.monotonic()
            await get_json(http, f"{tg_ctl}/inject", {"chats": chats, "spacing": args.spacing})
            peak = [0] * k
            traced_peak = not args.tracemalloc
            most_streams = 0
            timed_out = True
            end = EndOfRun(n, t0)
            while time.monotonic() - t0 < max_wait:
                await asyncio.sleep(1.0)
                dead = [b.name for b in bots if b.process.returncode is not None]
                if dead:
                    result["error"] = f"bot process exited: {dead}"
                    timed_out = False
                    break
                peak = [max(p, memory_kib(b.pid).get("VmRSS", 0)) for p, b in zip(peak, bots, strict=True)]
                tg_status = await get_json(http, f"{tg_ctl}/status")
                ya_status = await get_json(http, f"{ya_ctl}/status")
                # The traced snapshot when most of the answers are under way, or just after the most were.
                most_streams = max(most_streams, ya_status["open_streams"])
                if not traced_peak and (
                    ya_status["open_streams"] >= 0.9 * n or ya_status["open_streams"] < most_streams
                ):
                    bots[0].process.send_signal(signal.SIGUSR1)
                    traced_peak = True
                    result["tracemalloc_at_streams"] = ya_status["open_streams"]
                if end.reached(tg_status, ya_status, result):
                    timed_out = False
                    break
            await asyncio.sleep(SETTLE_SECONDS)
            elapsed = time.monotonic() - t0
            if args.tracemalloc and traced_peak:
                await wait_for_file(traced)
            alive = [b for b in bots if b.process.returncode is None]
            cpu_by_process = [
                cpu_seconds(b.pid) - cpu0[i] if b in alive else None for i, b in enumerate(bots)
            ]
            cpu = sum(v for v in cpu_by_process if v is not None)
            hwm = [memory_kib(b.pid).get("VmHWM", 0) if b in alive else 0 for b in bots]
            harness_cpu = time.process_time() - harness0
            redis1 = await redis_counters(redis_url)
            tg_dump, ya_dump = workdir / "telegram.json", workdir / "yandex.json"
            await get_json(http, f"{tg_ctl}/dump", {"path": str(tg_dump)})
            await get_json(http, f"{ya_ctl}/dump", {"path": str(ya_dump)})
        tg_data, ya_data = json.loads(tg_dump.read_text()), json.loads(ya_dump.read_text())
        result.update(analyse(tg_data, ya_data, n, chats))
        result.update(duplicates(tg_data, ya_data, chats))
        result.update(redis_delta(redis0, redis1, n))
        update_chat = {int(u): c for u, c in tg_data["update_chat"].items()}
        given = Counter(picks[0] for picks in balancer.assigned.values())
        if args.quota:
            groups = {update_chat[u]: f"bot{p[0]}" for u, p in balancer.assigned.items() if u in update_chat}
            fairness = quota_bench.analyse(tg_data, ya_data, n, args.quota, args.burst, groups)
            result["quota_figures"] = fairness
        result.update(
            {
                "timed_out": timed_out,
                "measured_seconds": elapsed,
                "webhook_push": tg_data["push"],
                "balancer_statuses": {str(s): c for s, c in balancer.statuses.items()},
                "updates_per_process": [given.get(i, 0) for i in range(k)],
                "bot_cpu_seconds": cpu,
                "bot_cpu_per_answer": cpu / n,
                "bot_cpu_seconds_by_process": cpu_by_process,
                "harness_cpu_seconds": harness_cpu,
                "bot_rss_idle_mib": [v / 1024 for v in idle],
                "bot_rss_sampled_peak_mib": [v / 1024 for v in peak],
                "bot_peak_rss_mib": [v / 1024 for v in hwm],
                # With --duplicate both processes take each update and either may answer it: unknown.
                "kib_per_concurrent_answer": [
                    (peak[i] - idle[i]) / given[i] if given.get(i) and not duplicate else None
                    for i in range(k)
                ],
            }
        )
        logs = [(RESULTS / f"{run_id}.bot{i}.log").read_text(errors="replace") for i in range(k)]
        result["bot_log_warnings"] = sum(text.count(" WARNING ") for text in logs)
        result["bot_log_errors"] = sum(text.count(" ERROR ") for text in logs)
        result["bot_log_tail"] = logs[0][-1200:]
        if args.tracemalloc and traced.exists():
            result["tracemalloc"] = str(traced.relative_to(ROOT))
    finally:
        for child in reversed(children):  # the bots first, then the fakes, then a private Redis
            await child.stop()
        await balancer.stop()
        if not args.own_redis:
            with contextlib.suppress(Exception):
                result["redis_keys_deleted"] = await asyncio.wait_for(clean_redis(redis_url, prefix), 30)
        shutil.rmtree(workdir, ignore_errors=True)
        result["wall_seconds"] = time.monotonic() - wall_start
        result["loadavg_after"] = _loadavg()
    return result


# ------------------------------------------------------------------------------------------- report


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return "never" if not math.isfinite(value) else f"{value:.2f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return "never" if not math.isfinite(value) else f"{value * 1000:.0f}"


def add_ratios(runs: list[dict[str, Any]]) -> None:
    """Display lag p50/p95/p99 of each run over the K = 1 run of the same N and quota (of the same mode if
    there is one, else the other: a JSON file of earlier runs can be merged in to compare)."""
    for run in runs:
        bases = [
            r
            for r in runs
            if r.get("processes") == 1
            and "display_lag" in r
            and all(r.get(key) == run.get(key) for key in ("chats", "quota"))
        ]
        base = next((r for r in bases if r.get("mode") == run.get("mode")), bases[0] if bases else None)
        if base is None or "display_lag" not in run:
            continue
        run["lag_ratio_to_k1"] = {
            p: (run["display_lag"][p] / base["display_lag"][p])
            if base["display_lag"][p] and math.isfinite(base["display_lag"][p])
            else None
            for p in ("p50", "p95", "p99")
        }


def table(runs: list[dict[str, Any]]) -> str:
    head = (
        "K",
        "mode",
        "N",
        "done",
        "dup",
        "429s",
        "lag p50/p95/p99 s",
        "lag/K1 p50/p95/p99",
        "1st sign p50/p95 ms",
        "CPU s/ans",
        "peak RSS MiB",
        "KiB/ans",
        "Redis ms/ans",
        "Redis cmd/ans",
    )
    rows = [head]
    for r in runs:
        if "display_lag" not in r:
            rows.append((str(r["processes"]), r["mode"], str(r["chats"]), "ERROR", r.get("error", "?")))
            rows[-1] += ("",) * (len(head) - len(rows[-1]))
            continue
        lag, first = r["display_lag"], r["first_sign"]
        ratio = r.get("lag_ratio_to_k1") or {}
        kib = [v for v in r["kib_per_concurrent_answer"] if v is not None]
        rows.append(
            (
                str(r["processes"]),
                r["mode"] + (f" q{r['quota']}" if r["quota"] else ""),
                str(r["chats"]),
                f"{r['answers_complete']}/{r['chats']}",
                str(r["duplicates_shown"]),
                str(r["too_many_requests"]),
                f"{_s(lag['p50'])}/{_s(lag['p95'])}/{_s(lag['p99'])}",
                "/".join(_s(ratio.get(p)) for p in ("p50", "p95", "p99")),
                f"{_ms(first['p50'])}/{_ms(first['p95'])}",
                f"{r['bot_cpu_per_answer']:.3f}",
                "/".join(f"{v:.0f}" for v in r["bot_peak_rss_mib"]),
                "/".join(f"{v:.0f}" for v in kib) or "-",
                f"{r['redis_cpu_ms_per_answer']:.2f}",
                f"{r['redis_commands_per_answer']:.1f}",
            )
        )
    return render(rows)


def quota_lines(run: dict[str, Any]) -> str:
    figures = run.get("quota_figures")
    if not figures:
        return ""
    first = figures["time_to_first_text"]
    lines = [
        f"K = {run['processes']}, N = {run['chats']}, quota {run['quota']}: Yandex peak streams "
        f"{figures['yandex_peak_streams']}, Yandex 429s {figures['yandex_429']}, first text p50/p95 "
        f"{_s(first['p50'])}/{_s(first['p95'])} s = {figures['ttft_p50_over_floor']:.2f}/"
        f"{figures['ttft_p95_over_floor']:.2f} of the floor, vs FIFO {figures['ttft_p50_over_ideal']:.2f}/"
        f"{figures['ttft_p95_over_ideal']:.2f}, start order max displacement "
        f"{figures['start_order_displacement']['max_abs']}"
    ]
    for name, group in figures["by_group"].items():
        lines.append(
            f"  {name}: {group['chats']} chats, wait p50/p95 {_s(group['wait_p50'])}/{_s(group['wait_p95'])}"
            f" s, start order displacement mean {_s(group['displacement_mean'])}"
            f" max {group['displacement_max_abs']}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- main


async def main_async(args: argparse.Namespace) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.own_redis:
        await redis_counters(args.redis_url)  # reachable, or fail before starting anything
    out = RESULTS / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    runs: list[dict[str, Any]] = []
    modes = ["duplicate"] if args.duplicate else args.modes
    for mode, n, k in itertools.product(modes, args.chats, args.processes):
        print(f"--- {mode}, K = {k}, N = {n} ...", file=sys.stderr, flush=True)
        try:
            limit = args.max_wait or (n / args.quota * 20 + 300 if args.quota else 0.15 * n + 60)
            run = await asyncio.wait_for(run_once(n, k, mode, args), limit + STARTUP_TIMEOUT + 120)
        except Exception as error:  # a failed run is reported, the others still run
            run = {"processes": k, "chats": n, "mode": mode, "error": f"{type(error).__name__}: {error}"}
        runs.append(run)
        add_ratios(runs)
        out.write_text(json.dumps({"machine": machine(), "args": vars(args), "runs": runs}, indent=1))
        print(table([run]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(runs))
    for run in runs:
        if text := quota_lines(run):
            print()
            print(text)
    print(f"\nJSON: {out.relative_to(ROOT)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4], help="K bot processes")
    parser.add_argument("--chats", type=int, nargs="+", default=[1000])
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["round-robin", "duplicate"],
        default=["round-robin"],
        help="duplicate: every update goes to two processes",
    )
    parser.add_argument("--duplicate", action="store_true", help="the same as --modes duplicate")
    parser.add_argument("--quota", type=int, default=0, help="the Yandex fake's and the bots' quota (0: off)")
    parser.add_argument(
        "--spacing", type=float, default=0.0, help="seconds between two questions (0: all at once)"
    )
    parser.add_argument("--chunks", choices=sorted(CHUNK_SIZES), default="token")
    parser.add_argument("--interval", type=float, default=1.0, help="STREAM_INTERVAL of the bots")
    parser.add_argument("--cps", type=float, default=150.0, help="model speed, characters per second")
    parser.add_argument("--first-delay", type=float, default=0.6)
    parser.add_argument("--burst", type=float, default=1.5, help="the bots' BURST_SECONDS (for --quota)")
    parser.add_argument("--max-wait", type=float, default=0.0, help="cut-off after injection (0: from N)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--own-redis", action="store_true", help="a private redis-server for each run")
    parser.add_argument("--tracemalloc", action="store_true", help="trace process 0's allocations")
    parser.add_argument(
        "--env", nargs="*", default=[], type=lambda item: tuple(item.split("=", 1)), metavar="NAME=VALUE"
    )
    args = parser.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
