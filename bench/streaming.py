"""Streaming benchmark: the real bot process against HTTP fakes of Telegram and Yandex, N chats at once.

    .venv/bin/python -m bench.streaming --chats 1 100 500 1000 [--chunks token sentence] [--profile]

Per run: the Telegram fake (flood control on: 1 msg/s per private chat with a burst of 3, 20/min per group,
30/s per bot) and the Yandex fake each run in their own process (bench/fake_server.py); the bot runs as
``python -m bot`` with Redis db 14 under a unique key prefix (deleted afterwards). N private chats each send
one question, injected at once; the Yandex fake answers each with the same ~1,550-character answer streamed
at ~150 characters/s after a 0.6 s first delay, in token-sized (4-character) or sentence-sized chunks.

Measured (all times on CLOCK_MONOTONIC, which every process on the machine shares):

* display lag: for every text delta the model emitted, time from its emission (Yandex fake) until Telegram
  received a successful sendMessage/editMessageText for that chat that shows it;
* Telegram calls per answer by method, and 429s;
* bot CPU seconds per answer (/proc/<pid>/stat utime+stime from injection to the end) and peak RSS (VmHWM);
* first visible sign: from the getUpdates response that handed the update to the bot to the first successful
  sendChatAction / sendMessageDraft / sendMessage in that chat;
* keeping up: answers completed (a frame showing the whole answer arrived), and the backlog: how long
  after the last model stream ended the last complete frame arrived.

Results: a table on stdout, JSON in bench/results/. Every process has timeouts and is killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.fake_server import FRAME_METHODS, VISIBLE_METHODS, die_with_parent

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
FIRST_CHAT = 1_000_001
TOKEN = "123456:TEST-TOKEN"
STARTUP_TIMEOUT = 30.0
SETTLE_SECONDS = 1.5
CHUNK_SIZES = {"token": 4, "sentence": 0}
UNLIMITED_GENERATIONS = 1000  # the most YANDEX_MAX_CONCURRENT_GENERATIONS allows
# Telegram's flood limits, on in the Telegram fake of every benchmark: 1 message/s per private chat
# (burst 3), 20/min per group, 30/s per bot.
TELEGRAM_LIMITS = ["--private-interval", "1", "--group-per-minute", "20", "--global-per-second", "30"]
_BOT_REF: list[str] = []


# ------------------------------------------------------------------------------------------- processes


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    log_file: Any = None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self, grace: float = 8.0) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.process.wait(), 5)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


async def spawn(
    name: str,
    args: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    pipe_stdout: bool = False,
) -> Child:
    log_file = open(log_path, "wb")  # noqa: SIM115, ASYNC230 - closed in Child.stop
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE if pipe_stdout else log_file,
        stderr=log_file,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=str(cwd) if cwd else None,
        preexec_fn=die_with_parent,
    )
    return Child(name, process, log_path, log_file)


async def spawn_fake(kind: str, extra: list[str], workdir: Path) -> tuple[Child, dict[str, str]]:
    child = await spawn(
        f"fake-{kind}",
        [PYTHON, "-m", "bench.fake_server", kind, *extra],
        workdir / f"fake-{kind}.log",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        pipe_stdout=True,
    )
    assert child.process.stdout is not None
    try:
        line = await asyncio.wait_for(child.process.stdout.readline(), STARTUP_TIMEOUT)
        info = json.loads(line)
    except Exception:
        await child.stop()
        raise RuntimeError(f"fake {kind} did not start; see {child.log_path}") from None
    return child, info


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0])
    return values


# ------------------------------------------------------------------------------------------- statistics


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; inf entries (never happened within the run) sort last."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, Any]:
    finite = [v for v in values if math.isfinite(v)]
    return {
        "count": len(values),
        "missing": len(values) - len(finite),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max_finite": max(finite) if finite else None,
        "mean_finite": sum(finite) / len(finite) if finite else None,
    }


def analyse(tg: dict[str, Any], ya: dict[str, Any], n: int, chats: list[int]) -> dict[str, Any]:
    injected_at = tg["injected_at"]
    full = tg["answer_norm_len"]
    frames: dict[int, list[tuple[float, int]]] = defaultdict(list)
    visible: dict[int, list[float]] = defaultdict(list)
    methods: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    polls = 0
    for call in tg["calls"]:
        method, chat, at, status = call["m"], call["chat"], call["at"], call["st"]
        if method == "getupdates":
            polls += 1
            continue
        if at < injected_at:
            continue  # start-up calls (getMe, setMyCommands)
        methods[method] += 1
        statuses[status] += 1
        if status == 429:
            rejected[method] += 1
        if status != 200:
            continue
        if method in FRAME_METHODS:
            frames[chat].append((at, call["cover"]))
        if method in VISIBLE_METHODS:
            visible[chat].append(at)

    lags: list[float] = []
    completion: dict[int, float] = {}
    stream_end: dict[int, float] = {}
    stream_start: dict[int, float] = {}
    finish_delay: list[float] = []
    for chat in chats:
        deltas = ya["deltas"].get(str(chat), [])
        ordered = sorted(frames.get(chat, []))
        times = [at for at, _ in ordered]
        best: list[int] = []
        high = 0
        for _, cover in ordered:
            high = max(high, cover)
            best.append(high)
        if best and best[-1] >= full:
            completion[chat] = times[bisect.bisect_left(best, full)]
        if deltas:
            stream_start[chat] = deltas[0][0]
            stream_end[chat] = deltas[-1][0]
        cumulative = 0
        for at, added in deltas:
            cumulative += added
            if not added:
                continue  # a whitespace/punctuation-only delta shows nothing by itself
            index = bisect.bisect_left(best, cumulative)
            lags.append(times[index] - at if index < len(times) else math.inf)
        if chat in completion and chat in stream_end:
            finish_delay.append(completion[chat] - stream_end[chat])
        elif chat in stream_end:
            finish_delay.append(math.inf)

    first_sign: list[float] = []
    delivered = {int(k): v for k, v in tg["delivered_at"].items()}
    for update_id, chat in tg["update_chat"].items():
        at = delivered.get(int(update_id))
        if at is None:
            first_sign.append(math.inf)
            continue
        later = [t for t in visible.get(chat, []) if t >= at - 0.005]
        first_sign.append(min(later) - at if later else math.inf)

    delivered_after = [v - injected_at for v in delivered.values()]
    last_stream_end = max(stream_end.values()) if stream_end else None
    last_final = max(completion.values()) if completion else None
    durations = [stream_end[c] - stream_start[c] for c in stream_end]
    return {
        "answers_streamed": sum(
            1 for c in chats if len(ya["deltas"].get(str(c), [])) >= ya["chunks_per_answer"]
        ),
        "answers_complete": len(completion),
        "display_lag": summary(lags),
        "first_sign": summary(first_sign),
        "finish_delay_after_own_stream": summary(finish_delay),
        "backlog_seconds": (last_final - last_stream_end)
        if last_final is not None and last_stream_end is not None and len(completion) == n
        else None,
        "last_final_after_injection": (last_final - injected_at) if last_final else None,
        "last_stream_end_after_injection": (last_stream_end - injected_at) if last_stream_end else None,
        "stream_duration": summary(durations),
        "update_delivery_after_injection": summary(delivered_after),
        "calls_total": dict(methods),
        "calls_per_answer": {m: c / n for m, c in sorted(methods.items())},
        "status_counts": {str(k): v for k, v in statuses.items()},
        "rejected_429_by_method": dict(rejected),
        "too_many_requests": sum(rejected.values()),
        "flood_count_fake": tg["flood_count"],
        "getupdates_calls": polls,
        "yandex_requests": ya["requests"],
        "yandex_closed_by_client": ya["closed_by_client"],
    }


# ------------------------------------------------------------------------------------------- one run


@dataclass
class RunOptions:
    interval: float
    cps: float
    first_delay: float
    max_wait: float
    redis_url: str
    profile: bool
    profile_seconds: int | None
    keep_raw: bool
    results: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    bot_path: Path = ROOT  # where `python -m bot` imports the bot package from


async def get_json(http: aiohttp.ClientSession, url: str, payload: Any = None) -> Any:
    method = http.post if payload is not None else http.get
    kwargs = {"json": payload} if payload is not None else {}
    async with method(url, **kwargs) as response:
        response.raise_for_status()
        return await response.json()


def bot_env(
    tg_info: dict[str, str],
    ya_info: dict[str, str],
    redis_url: str,
    prefix: str,
    bot_path: Path = ROOT,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a benchmarked `python -m bot`: nothing inherited but PATH and HOME."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(bot_path),
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": tg_info["api"],
        "YANDEX_API_KEY": "test-api-key",
        "YANDEX_FOLDER_ID": "b1gtestfolder",
        "YANDEX_BASE_URL": ya_info["api"],
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
        **(extra or {}),
    }


async def clean_redis(url: str, prefix: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    deleted = 0
    try:
        batch = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


@dataclass
class EndOfRun:
    """Whether a run is over, from the fakes' status polled about once a second: all N answers shown, or,
    since chats whose turn failed before reaching the model never complete, every stream that was started
    has been shown, no new stream came for 5 polls, and 20 s have passed."""

    n: int
    started: float
    requests_seen: int = -1
    stable_polls: int = 0

    def reached(self, tg_status: dict[str, Any], ya_status: dict[str, Any], result: dict[str, Any]) -> bool:
        if tg_status["complete"] >= self.n and ya_status["finished"] >= self.n:
            return True
        self.stable_polls = self.stable_polls + 1 if ya_status["requests"] == self.requests_seen else 0
        self.requests_seen = ya_status["requests"]
        if (
            self.stable_polls >= 5
            and time.monotonic() - self.started > 20
            and ya_status["open_streams"] == 0
            and tg_status["complete"] >= ya_status["finished"]
        ):
            result["stopped_early"] = "some chats never reached the model"
            return True
        return False


async def run_once(n: int, chunks: str, opts: RunOptions) -> dict[str, Any]:
    run_id = f"{chunks}-n{n}-{time.strftime('%Y%m%d-%H%M%S')}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    children: list[Child] = []
    profiler: asyncio.subprocess.Process | None = None
    result: dict[str, Any] = {
        "run": run_id,
        "chats": n,
        "chunks": chunks,
        "interval": opts.interval,
        "cps": opts.cps,
        "first_delay": opts.first_delay,
        "profiled": opts.profile,
        "loadavg_before": _loadavg(),
    }
    chat_ids = list(range(FIRST_CHAT, FIRST_CHAT + n))
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
                str(CHUNK_SIZES[chunks]),
                "--cps",
                str(opts.cps),
                "--first-delay",
                str(opts.first_delay),
            ],
            workdir,
        )
        children.append(yandex)
        env = bot_env(
            tg_info,
            ya_info,
            opts.redis_url,
            prefix,
            opts.bot_path,
            {
                "STREAM_INTERVAL": str(opts.interval),
                # No line of generations here (bench/quota.py measures it): N answers stream at once.
                "YANDEX_MAX_CONCURRENT_GENERATIONS": str(UNLIMITED_GENERATIONS),
                **opts.extra_env,
            },
        )
        bot_log = opts.results / f"{run_id}.bot.log"
        # cwd is an empty directory so that no stray .env file changes the configuration.
        bot = await spawn("bot", [PYTHON, "-m", "bot"], bot_log, env=env, cwd=workdir)
        children.append(bot)

        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            tg_ctl, ya_ctl = tg_info["control"], ya_info["control"]
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not (await get_json(http, f"{tg_ctl}/status"))["polling"]:
                if bot.process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bot did not start polling; see {bot_log}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # let the first long poll settle
            baseline_mem = memory_kib(bot.pid)
            cpu0 = {c.name: cpu_seconds(c.pid) for c in children}
            if opts.profile:
                profiler = await asyncio.create_subprocess_exec(
                    str(Path(PYTHON).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(bot.pid),
                    "--rate",
                    "500" if opts.profile_seconds else "100",
                    *([] if opts.profile_seconds else ["--nonblocking"]),  # a short window: exact stacks
                    "--format",
                    "raw",
                    "-o",
                    str(opts.results / f"{run_id}.pyspy.txt"),
                    "--duration",
                    str(opts.profile_seconds or int(opts.max_wait)),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    preexec_fn=die_with_parent,
                )
                if opts.profile_seconds:
                    await asyncio.sleep(0.5)  # py-spy takes a moment to attach: the window starts sampled
            t0 = time.monotonic()
            await get_json(http, f"{tg_ctl}/inject", {"chats": chat_ids})
            peak_rss = 0
            timed_out = True
            end = EndOfRun(n, t0)
            while time.monotonic() - t0 < opts.max_wait:
                await asyncio.sleep(1.0)
                if bot.process.returncode is not None:
                    result["error"] = f"bot exited with {bot.process.returncode}"
                    timed_out = False
                    break
                peak_rss = max(peak_rss, memory_kib(bot.pid).get("VmRSS", 0))
                tg_status = await get_json(http, f"{tg_ctl}/status")
                ya_status = await get_json(http, f"{ya_ctl}/status")
                if end.reached(tg_status, ya_status, result):
                    timed_out = False
                    break
            await asyncio.sleep(SETTLE_SECONDS)
            elapsed = time.monotonic() - t0
            cpu1 = {c.name: cpu_seconds(c.pid) for c in children if c.process.returncode is None}
            mem = memory_kib(bot.pid) if bot.process.returncode is None else {}
            tg_dump, ya_dump = workdir / "telegram.json", workdir / "yandex.json"
            await get_json(http, f"{tg_ctl}/dump", {"path": str(tg_dump)})
            await get_json(http, f"{ya_ctl}/dump", {"path": str(ya_dump)})
        tg_data = json.loads(tg_dump.read_text())
        ya_data = json.loads(ya_dump.read_text())
        if opts.keep_raw:
            shutil.copy(tg_dump, opts.results / f"{run_id}.telegram.json")
            shutil.copy(ya_dump, opts.results / f"{run_id}.yandex.json")
        result.update(analyse(tg_data, ya_data, n, chat_ids))
        cpu = {name: cpu1[name] - cpu0[name] for name in cpu1}
        result.update(
            {
                "timed_out": timed_out,
                "measured_seconds": elapsed,
                "bot_cpu_seconds": cpu.get("bot"),
                "bot_cpu_per_answer": cpu["bot"] / n if "bot" in cpu else None,
                "cpu_share": {name: value / elapsed for name, value in cpu.items()},
                "bot_rss_baseline_mib": baseline_mem.get("VmRSS", 0) / 1024,
                "bot_rss_sampled_peak_mib": peak_rss / 1024,
                "bot_peak_rss_mib": mem.get("VmHWM", 0) / 1024,
                "bot_log": str(bot_log.relative_to(ROOT)),
            }
        )
        log_text = bot_log.read_text(errors="replace")
        result["bot_log_lines"] = log_text.count("\n")
        result["bot_log_tail"] = log_text[-1500:]
    finally:
        if profiler is not None and profiler.returncode is None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                await asyncio.wait_for(profiler.wait(), 20)
            except TimeoutError:
                profiler.kill()
                await profiler.wait()
        for child in reversed(children):  # the bot first, then the fakes
            await child.stop()
        with contextlib.suppress(Exception):
            result["redis_keys_deleted"] = await asyncio.wait_for(clean_redis(opts.redis_url, prefix), 30)
        shutil.rmtree(workdir, ignore_errors=True)
        result["wall_seconds"] = time.monotonic() - wall_start
    if opts.profile:
        raw = opts.results / f"{run_id}.pyspy.txt"
        if raw.exists():
            result["profile"] = {"raw": str(raw.relative_to(ROOT)), **hot_spots(raw)}
    return result


def _loadavg() -> str:
    with open("/proc/loadavg") as file:
        return file.read().strip()


# ------------------------------------------------------------------------------------------- profile


def hot_spots(raw: Path, top: int = 25) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks → the functions with most own and most inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(frame) for frame in stack.split(";")]
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    share = lambda c: round(100 * c / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "own": [[name, share(c)] for name, c in own.most_common(top)],
        "inclusive": [[name, share(c)] for name, c in inclusive.most_common(top * 2)],
    }


def _frame_name(frame: str) -> str:
    # "function (path/to/file.py:123)" → "path/file.py:function", shortened to the package-relative path.
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{name}"


# ------------------------------------------------------------------------------------------- report


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "never"
    return f"{value * 1000:.0f}"


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "never"
    return f"{value:.2f}"


def table(runs: list[dict[str, Any]]) -> str:
    head = (
        "chunks",
        "N",
        "done",
        "lag p50/p95/p99 s",
        "sendMsg",
        "edit",
        "action",
        "other",
        "429s",
        "CPU s/ans",
        "RSS MiB",
        "1st sign p50/p95 ms",
        "backlog s",
    )
    rows = [head]
    for r in runs:
        if "display_lag" not in r:
            rows.append((r["chunks"], str(r["chats"]), "ERROR", r.get("error", "?"), *[""] * 9))
            continue
        calls = r["calls_per_answer"]
        other = sum(
            v for k, v in calls.items() if k not in ("sendmessage", "editmessagetext", "sendchataction")
        )
        lag = r["display_lag"]
        first = r["first_sign"]
        rows.append(
            (
                r["chunks"],
                str(r["chats"]),
                f"{r['answers_complete']}/{r['chats']}",
                f"{_s(lag['p50'])}/{_s(lag['p95'])}/{_s(lag['p99'])}",
                f"{calls.get('sendmessage', 0):.2f}",
                f"{calls.get('editmessagetext', 0):.2f}",
                f"{calls.get('sendchataction', 0):.2f}",
                f"{other:.2f}",
                str(r["too_many_requests"]),
                f"{r['bot_cpu_per_answer']:.3f}",
                f"{r['bot_peak_rss_mib']:.0f}",
                f"{_ms(first['p50'])}/{_ms(first['p95'])}",
                _s(r["backlog_seconds"])
                if r["backlog_seconds"] is not None
                else (
                    f">{r['measured_seconds'] - (r['last_stream_end_after_injection'] or 0):.0f} (timeout)"
                    if r.get("timed_out")
                    else "-"
                ),
            )
        )
    return render(rows)


def render(rows: list[tuple[str, ...]]) -> str:
    """Right-aligned columns, the first row a heading underlined with dashes."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def targets(r: dict[str, Any], interval: float) -> dict[str, Any]:
    checks: dict[str, Any] = {"zero_429": r.get("too_many_requests") == 0}
    if r["chats"] == 500 and "display_lag" in r:
        p95 = r["display_lag"]["p95"]
        checks["lag_p95_le_1.3x_interval"] = p95 is not None and p95 <= 1.3 * interval
        first = r["first_sign"]["p95"]
        checks["first_sign_p95_le_100ms"] = first is not None and first <= 0.1
    if r["chats"] == 1000 and "display_lag" in r:
        checks["keeps_up"] = r["answers_complete"] == 1000 and not r.get("timed_out")
        checks["rss_le_300MB"] = r["bot_peak_rss_mib"] * 1.048576 <= 300
    return checks


# ------------------------------------------------------------------------------------------- main


async def main_async(args: argparse.Namespace) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    extra_env = dict(item.split("=", 1) for item in args.env)
    opts = RunOptions(
        interval=args.interval,
        cps=args.cps,
        first_delay=args.first_delay,
        max_wait=args.max_wait,
        redis_url=args.redis_url,
        profile=args.profile or args.profile_seconds is not None,
        profile_seconds=args.profile_seconds,
        keep_raw=args.keep_raw,
        results=RESULTS,
        extra_env=extra_env,
    )
    snapshot = None
    if args.bot_ref:
        # A commit's bot/ package, so edits in progress in the working tree do not change the measured code.
        snapshot = Path(tempfile.mkdtemp(prefix="bench-bot-"))
        archive = await asyncio.create_subprocess_exec(
            "git", "archive", args.bot_ref, "bot", cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        data, _ = await asyncio.wait_for(archive.communicate(), 30)
        tar = await asyncio.create_subprocess_exec(
            "tar", "-x", "-C", str(snapshot), stdin=asyncio.subprocess.PIPE
        )
        await asyncio.wait_for(tar.communicate(data), 30)
        if archive.returncode or tar.returncode:
            raise SystemExit(f"could not extract bot/ of {args.bot_ref}")
        opts.bot_path = snapshot
    try:
        return await _run_all(args, opts)
    finally:
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)


async def _run_all(args: argparse.Namespace, opts: RunOptions) -> int:
    from redis.asyncio import Redis

    probe = Redis.from_url(args.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await probe.ping()
    finally:
        await probe.aclose()
    runs = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"streaming-{stamp}{'-profile' if opts.profile else ''}.json"
    for chunks in args.chunks:
        for n in args.chats:
            print(f"--- {chunks} chunks, N = {n} ...", file=sys.stderr, flush=True)
            try:
                run = await asyncio.wait_for(run_once(n, chunks, opts), args.max_wait + 120)
            except Exception as error:  # a failed run is reported, the others still run
                run = {"chats": n, "chunks": chunks, "error": f"{type(error).__name__}: {error}"}
            run["targets"] = targets(run, args.interval)
            runs.append(run)
            out.write_text(json.dumps({"machine": machine(), "args": vars(args), "runs": runs}, indent=1))
            print(table([run]).splitlines()[-1], file=sys.stderr, flush=True)
            if "profile" in run:
                for name, pct in run["profile"]["own"][:12]:
                    print(f"    {pct:5.1f}%  {name}", file=sys.stderr)
    print(table(runs))
    print(f"\nJSON: {out.relative_to(ROOT)}")
    return 0


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    git = {}
    with contextlib.suppress(Exception):
        import subprocess

        def run(*cmd: str) -> str:
            return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()

        git = {
            "bot_ref": run("git", "rev-parse", _BOT_REF[0]) if _BOT_REF else "working tree",
            "head": run("git", "rev-parse", "HEAD"),
            "dirty_bot": run("git", "status", "--porcelain", "bot"),
        }
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "loadavg": _loadavg(),
        "git": git,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, nargs="+", default=[1, 100, 500, 1000])
    parser.add_argument("--chunks", nargs="+", choices=sorted(CHUNK_SIZES), default=["token", "sentence"])
    parser.add_argument("--interval", type=float, default=1.0, help="STREAM_INTERVAL of the bot")
    parser.add_argument("--cps", type=float, default=150.0, help="model speed, characters per second")
    parser.add_argument("--first-delay", type=float, default=0.6)
    parser.add_argument(
        "--max-wait",
        type=float,
        default=150.0,
        help="seconds after the questions are injected before a run is cut off",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--profile", action="store_true", help="record the bot with py-spy (perturbs figures)"
    )
    parser.add_argument(
        "--profile-seconds",
        type=int,
        help="record only the first S seconds after the questions are sent (implies --profile)",
    )
    parser.add_argument("--keep-raw", action="store_true", help="keep the fakes' raw dumps in bench/results")
    parser.add_argument(
        "--bot-ref", help="measure this commit's bot/ (git archive) instead of the working tree"
    )
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE", help="extra bot settings")
    args = parser.parse_args()
    if args.bot_ref:
        _BOT_REF.append(args.bot_ref)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
