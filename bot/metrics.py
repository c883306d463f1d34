"""The bot's Prometheus metrics: one object, built once in the composition root and passed in.

Every name starts with `tgbot_`. Labels take values from small fixed sets (outcomes, failure kinds,
Telegram method names, results), never chat or user ids, so the number of series stays bounded.

Multi-process: with PROMETHEUS_MULTIPROC_DIR set (several `python -m bot` behind one webhook port, e.g.
under a process manager that shares the directory), prometheus-client keeps every value in files there
and `render()` merges all processes' files; gauges add up the live processes' values. Without it the
values live in this process, in the object's own registry (tests build as many as they like).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

PREFIX = "tgbot_"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds a user waits: from a fraction of a second (a short answer) to minutes (a long one in line).
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# Display lag of a frame: pacing makes it up to a few seconds (groups), a flood wait much more.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)

TELEGRAM_RESULTS = ("ok", "429", "4xx", "5xx", "network")
KB_UPLOAD_RESULTS = ("ready", "rejected", "failed")
REFUSAL_REASONS = ("access", "rate", "tokens")


class Metrics:
    """Counters, gauges and histograms of one bot process, with small methods the code calls at the
    moment something happens (the callers do not know Prometheus)."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = (
            multiprocess_dir if multiprocess_dir is not None else os.environ.get(MULTIPROC_ENV)
        )
        # The metrics are registered in a registry of our own, never the library's global one.
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.questions = Counter(
            f"{PREFIX}questions_total", "Questions taken for an answer (a burst counts once).", registry=reg
        )
        self.refused = Counter(
            f"{PREFIX}questions_refused_total",
            "Questions refused before any cost: access lists, or the user's rate or token limit.",
            ["reason"],
            registry=reg,
        )
        self.answers = Counter(
            f"{PREFIX}answers_total",
            "Answers by how they ended: completed, stopped, interrupted, failed_<kind>.",
            ["outcome"],
            registry=reg,
        )
        self.answer_duration = Histogram(
            f"{PREFIX}answer_duration_seconds",
            "From taking the question to the answer shown in full (waits for the turn and the quota too).",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.first_visible_text = Histogram(
            f"{PREFIX}first_visible_text_seconds",
            "From taking the question to the first frame with the answer's text shown in Telegram.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.frame_lag = Histogram(
            f"{PREFIX}frame_display_lag_seconds",
            "From the model's text arriving to a frame with it shown (pacing and flood waits).",
            buckets=LAG_BUCKETS,
            registry=reg,
        )
        self.model_first_token = Histogram(
            f"{PREFIX}model_first_token_seconds",
            "From sending the request to Yandex to the first text delta.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.model_tokens = Counter(
            f"{PREFIX}model_tokens_total",
            "Tokens used by the model, by kind (input, output).",
            ["kind"],
            registry=reg,
        )
        self.generations_running = Gauge(
            f"{PREFIX}generations_running",
            "Model generations holding a slot of the folder's quota now.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.generations_waiting = Gauge(
            f"{PREFIX}generations_waiting",
            "Questions waiting for a slot of the folder's generation quota now.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.telegram_calls = Counter(
            f"{PREFIX}telegram_calls_total",
            "Bot API calls by method and result (ok, 429, 4xx, 5xx, network).",
            ["method", "result"],
            registry=reg,
        )
        self.flood_wait = Counter(
            f"{PREFIX}telegram_flood_wait_seconds_total",
            "Seconds Telegram asked to wait (retry_after of its 429 answers), summed.",
            registry=reg,
        )
        self.updates_deduplicated = Counter(
            f"{PREFIX}updates_deduplicated_total",
            "Updates dropped because another delivery of them was handled already.",
            registry=reg,
        )
        self.answers_recovered = Counter(
            f"{PREFIX}answers_recovered_total",
            "Answers a dead process left half-written, closed at start-up with an 'interrupted' notice.",
            registry=reg,
        )
        self.kb_uploads = Counter(
            f"{PREFIX}kb_uploads_total",
            "Documents added to the knowledge base, by result (ready, rejected, failed).",
            ["result"],
            registry=reg,
        )
        # Labelled series exist from the start at 0, so rates and dashboards have them before the event.
        for result in KB_UPLOAD_RESULTS:
            self.kb_uploads.labels(result)
        for reason in REFUSAL_REASONS:
            self.refused.labels(reason)
        for kind in ("input", "output"):
            self.model_tokens.labels(kind)
        for outcome in ("completed", "stopped"):
            self.answers.labels(outcome)

    # -- the moments the code reports --------------------------------------------------------------

    def question_taken(self) -> None:
        self.questions.inc()

    def question_refused(self, reason: str) -> None:
        self.refused.labels(reason).inc()

    def answer_finished(self, outcome: str, seconds: float) -> None:
        self.answers.labels(outcome).inc()
        self.answer_duration.observe(max(0.0, seconds))

    def first_text_shown(self, seconds: float) -> None:
        self.first_visible_text.observe(max(0.0, seconds))

    def frame_shown(self, lag: float) -> None:
        self.frame_lag.observe(max(0.0, lag))

    def model_first_token_after(self, seconds: float) -> None:
        self.model_first_token.observe(max(0.0, seconds))

    def model_usage(self, usage: dict[str, Any]) -> None:
        """The `usage` object of a finished Responses API response."""
        for kind in ("input", "output"):
            value = usage.get(f"{kind}_tokens")
            if isinstance(value, int) and value > 0:
                self.model_tokens.labels(kind).inc(value)

    @contextmanager
    def generation_running(self) -> Iterator[None]:
        with self.generations_running.track_inprogress():
            yield

    def waiting_for_generation(self) -> GaugeHold:
        """A question starts waiting for a slot; `end()` on the result (any number of times) when not."""
        return GaugeHold(self.generations_waiting)

    def telegram_call(self, method: str, result: str, *, flood_wait: float | None = None) -> None:
        self.telegram_calls.labels(method, result).inc()
        if flood_wait:
            self.flood_wait.inc(flood_wait)

    def update_deduplicated(self) -> None:
        self.updates_deduplicated.inc()

    def recovered(self, answers: int) -> None:
        if answers > 0:
            self.answers_recovered.inc(answers)

    def kb_upload(self, result: str) -> None:
        self.kb_uploads.labels(result).inc()

    def stream_watch(self, now: Callable[[], float] = time.monotonic) -> StreamWatch:
        """What one streamed answer reports: its first visible text and each frame's display lag."""
        return StreamWatch(self, now)

    # -- exposition --------------------------------------------------------------------------------

    def names(self) -> set[str]:
        """Every exported sample name (with `_total`, `_bucket`, `_count`, `_sum`), for dashboard checks."""
        names: set[str] = set()
        for family in self.registry.collect():
            if family.type in ("counter",):
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
            else:
                names.add(family.name)
        return names

    def close(self) -> None:
        """The process is ending: in multi-process mode its live gauges stop counting (its counters stay)."""
        if self.multiprocess_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        """The text exposition format: this registry, or every process's values in multi-process mode."""
        if self.multiprocess_dir:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


class GaugeHold:
    """One unit of a gauge, held from construction until the first `end()`."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._held = True
        gauge.inc()

    def end(self) -> None:
        if self._held:
            self._held = False
            self._gauge.dec()


class StreamWatch:
    """The timing of one streamed answer, from the moment its question was taken.

    `text_arrived()` when the model's text grows, `shown(with_text)` after each frame Telegram accepted:
    the first frame with text gives the time to first visible text, and every text frame its lag behind
    the oldest text it is the first to show. Without a Metrics (a unit test's streamer) it records nothing.
    """

    def __init__(self, metrics: Metrics | None, now: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._now = now
        self._started = now()
        self._pending_since: float | None = None  # text arrived that no frame has shown yet
        self._first_shown = False

    def text_arrived(self) -> None:
        if self._pending_since is None:
            self._pending_since = self._now()

    def shown(self, with_text: bool) -> None:
        if self._metrics is None or not with_text:
            return
        now = self._now()
        if not self._first_shown:
            self._first_shown = True
            self._metrics.first_text_shown(now - self._started)
        if self._pending_since is not None:
            self._metrics.frame_shown(now - self._pending_since)
            self._pending_since = None


def outcome_label(*, stopped: bool, interrupted: bool, failure: str | None) -> str:
    """The `outcome` label of an answer: completed, stopped, interrupted or failed_<kind>."""
    if failure is not None:
        return f"failed_{failure}"
    if interrupted:
        return "interrupted"
    if stopped:
        return "stopped"
    return "completed"
