"""Quota benchmark: N chats ask at once while Yandex allows only `quota` generations at a time.

    .venv/bin/python -m bench.quota --chats 100 500 [--quota 10] [--chunks sentence]

The harness of bench/streaming.py: the Telegram fake (flood control on) and the Yandex fake each in their
own process (bench/fake_server.py), the real bot as ``python -m bot`` with Redis db 14 under a unique
prefix. The Yandex fake enforces the folder's quota of concurrent generations (``--quota``, Yandex's
default 10: the N+1th stream gets 429 RESOURCE_EXHAUSTED) and the bot runs with its default
YANDEX_MAX_CONCURRENT_GENERATIONS (10). Every chat sends one question, all injected at once; each answer
is the streaming benchmark's ~1,550 characters at ~150 characters/s after 0.6 s (about 11 s).

Measured per chat (all on CLOCK_MONOTONIC):

* arrival: when getUpdates handed the question to the bot (ties in one batch in update order), its rank;
* wait: from arrival until the Yandex fake received the request it served (refused ones come before); it
  includes the bot's burst window (BURST_SECONDS, 1.5 s by default), which every question waits out;
* time to first text: from arrival until Telegram received the first frame showing answer text;
* done: a frame showing the whole answer arrived; failures: chats that never got it;
* fairness: wait by arrival decile, and how far each chat's start order is from its arrival order;
* the floor: N / quota × answer duration (the mean model stream time, request to last delta) is how long
  the last answers must wait at the least; time to first text p50 / p95 are reported against it as a
  ratio, and against a perfect first-come-first-served schedule of the same streams.

Results: a table on stdout, JSON in bench/results/quota-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import aiohttp

from bench.answer import ANSWER
from bench.streaming import (
    CHUNK_SIZES,
    FIRST_CHAT,
    PYTHON,
    RESULTS,
    ROOT,
    SETTLE_SECONDS,
    STARTUP_TIMEOUT,
    TELEGRAM_LIMITS,
    Child,
    _loadavg,
    bot_env,
    clean_redis,
    cpu_seconds,
    get_json,
    machine,
    memory_kib,
    percentile,
    render,
    spawn,
    spawn_fake,
    summary,
)


def analyse(
    tg: dict[str, Any],
    ya: dict[str, Any],
    n: int,
    quota: int,
    burst: float = 0.0,
    groups: dict[int, str] | None = None,
) -> dict[str, Any]:
    """The quota figures; with `groups` (chat -> a name, e.g. the bot process that got its update) also
    the wait and the start-order displacement per group, to see whether one group is served first."""
    full = tg["answer_norm_len"]
    delivered = {int(k): v for k, v in tg["delivered_at"].items()}
    arrivals = sorted(
        (delivered.get(int(update), math.inf), int(update), chat)
        for update, chat in tg["update_chat"].items()
    )
    arrived = {chat: at for at, _, chat in arrivals}
    rank = {chat: index for index, (_, _, chat) in enumerate(arrivals)}

    frames: dict[int, list[tuple[float, int]]] = defaultdict(list)
    notices: Counter[int] = Counter()
    methods: Counter[str] = Counter()
    telegram_429 = 0
    for call in tg["calls"]:
        if call["m"] == "getupdates" or call["at"] < tg["injected_at"]:
            continue
        methods[call["m"]] += 1
        telegram_429 += call["st"] == 429
        if call["st"] == 200 and "cover" in call:
            frames[call["chat"]].append((call["at"], call["cover"]))
            notices[call["chat"]] += bool(call.get("notice"))

    requests: dict[int, list[float]] = defaultdict(list)
    for chat, at in ya["starts"]:
        if chat is not None:
            requests[chat].append(at)
    waits, ttft, durations, first_delays, done, behind = {}, {}, {}, {}, {}, {}
    for chat in arrived:
        deltas = ya["deltas"].get(str(chat), [])
        if requests.get(chat) and deltas:
            served = max(at for at in requests[chat] if at <= deltas[0][0])  # refused ones came before
            waits[chat] = served - arrived[chat]
            durations[chat] = deltas[-1][0] - served
            first_delays[chat] = deltas[0][0] - served
        ordered = sorted(frames.get(chat, []))
        shown = [at for at, cover in ordered if cover > 0]
        if shown:
            ttft[chat] = shown[0] - arrived[chat]
        complete = [at for at, cover in ordered if cover >= full]
        if complete:
            done[chat] = complete[0] - arrived[chat]
            if deltas:
                behind[chat] = complete[0] - deltas[-1][0]  # the whole answer shown after the model ended

    duration = sum(durations.values()) / len(durations) if durations else math.nan
    first_delay = sum(first_delays.values()) / len(first_delays) if first_delays else math.nan
    floor = n / quota * duration
    # A perfect first-come-first-served schedule of these streams: the i-th arrival starts when the
    # (i // quota)-th batch before it has finished (after the bot's burst window, BURST_SECONDS, which
    # every question waits out first), and its first text comes first_delay later.
    ideal = [burst + (index // quota) * duration + first_delay for index in range(n)]
    ttft_values = [ttft.get(chat, math.inf) for chat in arrived]
    p50, p95 = percentile(ttft_values, 50), percentile(ttft_values, 95)

    started = sorted(waits, key=lambda chat: arrived[chat] + waits[chat])
    displacement = [started.index(chat) - rank[chat] for chat in started]
    deciles = []
    for tenth in range(10):
        members = [chat for chat in arrived if rank[chat] * 10 // n == tenth and chat in waits]
        values = [waits[chat] for chat in members]
        firsts = [ttft.get(chat, math.inf) for chat in arrived if rank[chat] * 10 // n == tenth]
        deciles.append(
            {
                "arrivals": f"{tenth * n // 10 + 1}-{(tenth + 1) * n // 10}",
                "ttft_p50": percentile(firsts, 50),
                "wait_min": min(values) if values else None,
                "wait_p50": percentile(values, 50),
                "wait_max": max(values) if values else None,
                "ideal_wait": (
                    burst + (tenth * n // 10) // quota * duration,
                    burst + ((tenth + 1) * n // 10 - 1) // quota * duration,
                ),
            }
        )
    by_group: dict[str, dict[str, Any]] = {}
    for name in sorted(set((groups or {}).values())):
        members = [chat for chat in started if (groups or {}).get(chat) == name]
        moved = [started.index(chat) - rank[chat] for chat in members]
        by_group[name] = {
            "chats": len(members),
            "wait_p50": percentile([waits[chat] for chat in members], 50),
            "wait_p95": percentile([waits[chat] for chat in members], 95),
            "displacement_mean": sum(moved) / len(moved) if moved else None,
            "displacement_max_abs": max((abs(d) for d in moved), default=None),
        }
    return {
        "answers_complete": len(done),
        "failed": n - len(done),
        "by_group": by_group,
        "yandex_requests": len(ya["starts"]),
        "yandex_429": (ya.get("quota") or {}).get("rejected", 0),
        "yandex_peak_streams": (ya.get("quota") or {}).get("peak"),
        "telegram_429": telegram_429,
        "answer_duration_mean": duration,
        "model_first_delay_mean": first_delay,
        "floor_seconds": floor,
        "wait": summary(list(waits.values())),
        "time_to_first_text": summary(ttft_values),
        "time_to_done": summary([done.get(chat, math.inf) for chat in arrived]),
        "shown_in_full_after_model_end": summary(list(behind.values())),
        "ttft_p50_over_floor": p50 / floor if p50 is not None else None,
        "ttft_p95_over_floor": p95 / floor if p95 is not None else None,
        "ideal_ttft_p50": percentile(ideal, 50),
        "ideal_ttft_p95": percentile(ideal, 95),
        "ttft_p50_over_ideal": p50 / percentile(ideal, 50) if p50 is not None else None,
        "ttft_p95_over_ideal": p95 / percentile(ideal, 95) if p95 is not None else None,
        "start_order_displacement": {
            "max_abs": max((abs(d) for d in displacement), default=None),
            "p95_abs": percentile([abs(d) for d in displacement], 95),
            "beyond_one_batch": sum(1 for d in displacement if abs(d) >= quota),
        },
        "wait_by_arrival_decile": deciles,
        "notices_per_answer": sum(notices.values()) / n,
        "chats_told_in_line": sum(1 for chat in arrived if notices[chat]),
        "telegram_calls_per_answer": {m: c / n for m, c in sorted(methods.items())},
    }


async def run_once(n: int, args: argparse.Namespace) -> dict[str, Any]:
    run_id = f"quota{args.quota}-n{n}-{time.strftime('%Y%m%d-%H%M%S')}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-quota-"))
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    children: list[Child] = []
    answer_seconds = args.first_delay + len(ANSWER) / args.cps
    max_wait = args.max_wait or (n / args.quota * answer_seconds * 1.5 + 120)
    result: dict[str, Any] = {
        "run": run_id,
        "chats": n,
        "quota": args.quota,
        "bot_quota": args.bot_quota,
        "chunks": args.chunks,
        "cps": args.cps,
        "first_delay": args.first_delay,
        "loadavg_before": _loadavg(),
    }
    chats = list(range(FIRST_CHAT, FIRST_CHAT + n))
    wall_start = time.monotonic()
    try:
        telegram, tg_info = await spawn_fake(
            "telegram",
            TELEGRAM_LIMITS,
            workdir,
        )
        children.append(telegram)
        yandex, ya_info = await spawn_fake(
            "yandex",
            [
                "--chunk-size",
                str(CHUNK_SIZES[args.chunks]),
                "--cps",
                str(args.cps),
                "--first-delay",
                str(args.first_delay),
                "--quota",
                str(args.quota),
            ],
            workdir,
        )
        children.append(yandex)
        env = bot_env(tg_info, ya_info, args.redis_url, prefix, extra={"BURST_SECONDS": str(args.burst)})
        if args.bot_quota:
            env["YANDEX_MAX_CONCURRENT_GENERATIONS"] = str(args.bot_quota)
        bot_log = RESULTS / f"{run_id}.bot.log"
        bot = await spawn("bot", [PYTHON, "-m", "bot"], bot_log, env=env, cwd=workdir)
        children.append(bot)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            tg_ctl, ya_ctl = tg_info["control"], ya_info["control"]
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not (await get_json(http, f"{tg_ctl}/status"))["polling"]:
                if bot.process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bot did not start polling; see {bot_log}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
            cpu0 = cpu_seconds(bot.pid)
            t0 = time.monotonic()
            await get_json(http, f"{tg_ctl}/inject", {"chats": chats})
            timed_out = True
            while time.monotonic() - t0 < max_wait:
                await asyncio.sleep(2.0)
                if bot.process.returncode is not None:
                    result["error"] = f"bot exited with {bot.process.returncode}"
                    timed_out = False
                    break
                tg_status = await get_json(http, f"{tg_ctl}/status")
                ya_status = await get_json(http, f"{ya_ctl}/status")
                if tg_status["complete"] >= n and ya_status["finished"] >= n:
                    timed_out = False
                    break
            await asyncio.sleep(SETTLE_SECONDS)
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds(bot.pid) - cpu0 if bot.process.returncode is None else None
            mem = memory_kib(bot.pid) if bot.process.returncode is None else {}
            tg_dump, ya_dump = workdir / "telegram.json", workdir / "yandex.json"
            await get_json(http, f"{tg_ctl}/dump", {"path": str(tg_dump)})
            await get_json(http, f"{ya_ctl}/dump", {"path": str(ya_dump)})
        tg_data, ya_data = json.loads(tg_dump.read_text()), json.loads(ya_dump.read_text())
        result.update(analyse(tg_data, ya_data, n, args.quota, args.burst))
        log_text = bot_log.read_text(errors="replace")
        result.update(
            {
                "timed_out": timed_out,
                "measured_seconds": elapsed,
                "bot_cpu_per_answer": cpu / n if cpu is not None else None,
                "bot_peak_rss_mib": mem.get("VmHWM", 0) / 1024,
                "bot_log": str(bot_log.relative_to(ROOT)),
                "bot_log_warnings": log_text.count(" WARNING "),
                "bot_log_errors": log_text.count(" ERROR "),
                "bot_log_tail": log_text[-1500:],
            }
        )
    finally:
        for child in reversed(children):
            await child.stop()
        with contextlib.suppress(Exception):
            result["redis_keys_deleted"] = await asyncio.wait_for(clean_redis(args.redis_url, prefix), 30)
        shutil.rmtree(workdir, ignore_errors=True)
        result["wall_seconds"] = time.monotonic() - wall_start
    return result


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return "never" if not math.isfinite(value) else f"{value:.1f}"


def table(runs: list[dict[str, Any]]) -> str:
    head = (
        "N",
        "done",
        "429 ya/tg",
        "wait p50/p95/max s",
        "1st text p50/p95 s",
        "floor s",
        "p50/floor",
        "p95/floor",
        "vs FIFO p50/p95",
        "order max",
        "notices/ans",
        "CPU s/ans",
        "RSS MiB",
    )
    rows = [head]
    for r in runs:
        if "time_to_first_text" not in r:
            rows.append((str(r["chats"]), "ERROR", r.get("error", "?"), *[""] * (len(head) - 3)))
            continue
        wait, first = r["wait"], r["time_to_first_text"]
        rows.append(
            (
                str(r["chats"]),
                f"{r['answers_complete']}/{r['chats']}",
                f"{r['yandex_429']}/{r['telegram_429']}",
                f"{_s(wait['p50'])}/{_s(wait['p95'])}/{_s(wait['max_finite'])}",
                f"{_s(first['p50'])}/{_s(first['p95'])}",
                _s(r["floor_seconds"]),
                f"{r['ttft_p50_over_floor']:.2f}",
                f"{r['ttft_p95_over_floor']:.2f}",
                f"{r['ttft_p50_over_ideal']:.2f}/{r['ttft_p95_over_ideal']:.2f}",
                str(r["start_order_displacement"]["max_abs"]),
                f"{r['notices_per_answer']:.2f}",
                f"{r['bot_cpu_per_answer']:.3f}" if r["bot_cpu_per_answer"] is not None else "-",
                f"{r['bot_peak_rss_mib']:.0f}",
            )
        )
    return render(rows)


def deciles(run: dict[str, Any]) -> str:
    lines = [
        f"N = {run['chats']}: wait by arrival order (s)  min / p50 / max  (perfect FIFO: from–to)"
        "  | first text p50 (s)"
    ]
    for row in run.get("wait_by_arrival_decile", []):
        low, high = row["ideal_wait"]
        lines.append(
            f"  arrivals {row['arrivals']:>9}:  {_s(row['wait_min'])} / {_s(row['wait_p50'])} / "
            f"{_s(row['wait_max'])}   ({low:.0f}–{high:.0f})  | {_s(row.get('ttft_p50'))}"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"quota-{time.strftime('%Y%m%d-%H%M%S')}.json"
    runs = []
    for n in args.chats:
        print(f"--- N = {n}, quota {args.quota} ...", file=sys.stderr, flush=True)
        try:
            run = await run_once(n, args)
        except Exception as error:  # a failed run is reported, the others still run
            run = {"chats": n, "error": f"{type(error).__name__}: {error}"}
        runs.append(run)
        out.write_text(json.dumps({"machine": machine(), "args": vars(args), "runs": runs}, indent=1))
        print(table([run]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(runs))
    for run in runs:
        print()
        print(deciles(run))
    print(f"\nJSON: {out.relative_to(ROOT)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--quota", type=int, default=10, help="the Yandex fake's concurrent generations")
    parser.add_argument(
        "--bot-quota", type=int, default=0, help="YANDEX_MAX_CONCURRENT_GENERATIONS (0: the bot's default)"
    )
    parser.add_argument("--chunks", choices=sorted(CHUNK_SIZES), default="token")
    parser.add_argument("--cps", type=float, default=150.0, help="model speed, characters per second")
    parser.add_argument("--first-delay", type=float, default=0.6)
    parser.add_argument("--burst", type=float, default=1.5, help="BURST_SECONDS of the bot (its default)")
    parser.add_argument("--max-wait", type=float, default=0.0, help="cut-off after injection (0: from N)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
