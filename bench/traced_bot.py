"""``python -m bot`` under tracemalloc, for bench/scale.py --tracemalloc (never in production).

The first SIGUSR1 keeps a snapshot (the idle process) and creates <BENCH_TRACEMALLOC_OUT>.idle; a later
SIGUSR1 writes to BENCH_TRACEMALLOC_OUT the allocation sites that grew most since the idle snapshot (by
line, and by file), with the traced totals. Taking a snapshot stops the process for a moment, and tracing
slows it throughout: a traced run's other figures are not comparable with an untraced run's.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import tracemalloc
from types import FrameType

TOP = 40
_idle: list[tracemalloc.Snapshot] = []


def _report(signum: int, frame: FrameType | None) -> None:
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib.*"),
    ]
    snapshot = tracemalloc.take_snapshot().filter_traces(ignore)
    out = os.environ["BENCH_TRACEMALLOC_OUT"]
    if not _idle:
        _idle.append(snapshot)
        open(out + ".idle", "w").close()  # tells the harness the snapshot is taken
        return
    idle = _idle[0]
    current, peak = tracemalloc.get_traced_memory()
    at_idle = sum(stat.size for stat in idle.statistics("filename"))
    by_file = snapshot.compare_to(idle, "filename")
    grown = sum(stat.size_diff for stat in by_file)
    lines = [
        f"traced now {current / 1024:.0f} KiB (peak {peak / 1024:.0f} KiB, both counting the idle snapshot"
        f" kept in memory); at idle {at_idle / 1024:.0f} KiB; grown since idle, without tracemalloc's own"
        f" objects: {grown / 1024:.0f} KiB",
        "",
        f"top {TOP} lines by growth since idle (KiB, blocks):",
    ]
    for stat in snapshot.compare_to(idle, "lineno")[:TOP]:
        where = stat.traceback[0]
        lines.append(f"{stat.size_diff / 1024:10.1f} {stat.count_diff:8d}  {where.filename}:{where.lineno}")
    lines += ["", f"top {TOP} files by growth since idle (KiB, blocks):"]
    for stat in by_file[:TOP]:
        lines.append(f"{stat.size_diff / 1024:10.1f} {stat.count_diff:8d}  {stat.traceback[0].filename}")
    with open(out, "w") as file:
        file.write("\n".join(lines) + "\n")


def main() -> None:
    tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1")))
    signal.signal(signal.SIGUSR1, _report)
    sys.argv = ["bot"]
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
