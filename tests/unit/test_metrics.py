"""Metrics: the names and labels exported, the values the small reporting methods leave, multi-process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics, StreamWatch, outcome_label


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


def test_every_name_has_the_one_prefix_and_the_issue_names_exist() -> None:
    names = Metrics().names()
    assert all(name.startswith("tgbot_") for name in names)
    assert {
        "tgbot_answers_total",
        "tgbot_first_visible_text_seconds_bucket",
        "tgbot_answer_duration_seconds_count",
        "tgbot_model_tokens_total",
        "tgbot_generations_running",
        "tgbot_generations_waiting",
        "tgbot_telegram_calls_total",
        "tgbot_telegram_flood_wait_seconds_total",
        "tgbot_updates_deduplicated_total",
        "tgbot_answers_recovered_total",
        "tgbot_kb_uploads_total",
        "tgbot_questions_refused_total",
        "tgbot_model_first_token_seconds_sum",
        "tgbot_frame_display_lag_seconds_bucket",
    } <= names


def test_two_objects_do_not_share_values() -> None:
    first, second = Metrics(), Metrics()
    first.question_taken()
    assert value(first, "tgbot_questions_total") == 1
    assert value(second, "tgbot_questions_total") == 0


def test_reported_moments_become_values() -> None:
    metrics = Metrics()
    metrics.answer_finished("completed", 1.5)
    metrics.answer_finished("completed", 0.2)
    metrics.answer_finished("failed_timeout", 60.0)
    metrics.question_refused("access")
    metrics.model_usage({"input_tokens": 120, "output_tokens": 30, "total_tokens": 150})
    metrics.model_usage({"input_tokens": "junk"})  # a malformed usage object counts nothing
    metrics.telegram_call("sendMessage", "ok")
    metrics.telegram_call("sendMessage", "429", flood_wait=3)
    metrics.recovered(0)
    metrics.recovered(2)
    metrics.kb_upload("ready")
    assert value(metrics, "tgbot_answers_total", outcome="completed") == 2
    assert value(metrics, "tgbot_answers_total", outcome="failed_timeout") == 1
    assert value(metrics, "tgbot_answers_total", outcome="stopped") == 0  # exists before the first stop
    assert value(metrics, "tgbot_answer_duration_seconds_count") == 3
    assert value(metrics, "tgbot_answer_duration_seconds_bucket", le="0.25") == 1
    assert value(metrics, "tgbot_answer_duration_seconds_bucket", le="2.0") == 2
    assert value(metrics, "tgbot_answer_duration_seconds_sum") == 61.7
    assert value(metrics, "tgbot_questions_refused_total", reason="access") == 1
    assert value(metrics, "tgbot_model_tokens_total", kind="input") == 120
    assert value(metrics, "tgbot_model_tokens_total", kind="output") == 30
    assert value(metrics, "tgbot_telegram_calls_total", method="sendMessage", result="429") == 1
    assert value(metrics, "tgbot_telegram_flood_wait_seconds_total") == 3
    assert value(metrics, "tgbot_answers_recovered_total") == 2
    assert value(metrics, "tgbot_kb_uploads_total", result="ready") == 1
    assert value(metrics, "tgbot_kb_uploads_total", result="failed") == 0


def test_gauges_go_up_and_back_down() -> None:
    metrics = Metrics()
    hold = metrics.waiting_for_generation()
    with metrics.generation_running():
        assert value(metrics, "tgbot_generations_running") == 1
        assert value(metrics, "tgbot_generations_waiting") == 1
        hold.end()
        hold.end()  # ending twice takes only one away
        assert value(metrics, "tgbot_generations_waiting") == 0
    assert value(metrics, "tgbot_generations_running") == 0


def test_stream_watch_times_the_first_text_and_each_frames_lag() -> None:
    now = [100.0]
    metrics = Metrics()
    watch = StreamWatch(metrics, lambda: now[0])
    now[0] = 101.0
    watch.shown(with_text=False)  # "in line" notice: no text yet
    now[0] = 102.0
    watch.text_arrived()
    now[0] = 102.5
    watch.text_arrived()  # the lag counts from the oldest text not yet shown
    now[0] = 103.0
    watch.shown(with_text=True)
    now[0] = 104.0
    watch.text_arrived()
    now[0] = 104.25
    watch.shown(with_text=True)
    watch.shown(with_text=True)  # nothing new: no lag sample
    assert value(metrics, "tgbot_first_visible_text_seconds_count") == 1
    assert value(metrics, "tgbot_first_visible_text_seconds_sum") == 3.0
    assert value(metrics, "tgbot_frame_display_lag_seconds_count") == 2
    assert value(metrics, "tgbot_frame_display_lag_seconds_sum") == 1.25
    StreamWatch(None).shown(with_text=True)  # without metrics: nothing to record, nothing fails


def test_outcome_labels() -> None:
    assert outcome_label(stopped=False, interrupted=False, failure=None) == "completed"
    assert outcome_label(stopped=True, interrupted=False, failure=None) == "stopped"
    assert outcome_label(stopped=True, interrupted=True, failure=None) == "interrupted"
    assert outcome_label(stopped=False, interrupted=False, failure="rate_limited") == "failed_rate_limited"


def test_multiprocess_mode_sums_the_processes(tmp_path: Path) -> None:
    """Two processes with PROMETHEUS_MULTIPROC_DIR count into files; /metrics (render) adds them up."""
    script = (
        "from bot.metrics import Metrics\n"
        "m = Metrics()\n"
        "m.answer_finished('completed', 1.0)\n"
        "m.telegram_call('sendMessage', 'ok')\n"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    live = (
        "import sys\n"
        "from bot.metrics import Metrics\n"
        "m = Metrics()\n"
        "m.waiting_for_generation()\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "m.close()\n"  # what Core.aclose does at shutdown
    )
    waiter = subprocess.Popen(
        [sys.executable, "-c", live], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert waiter.stdout is not None and waiter.stdin is not None
        assert waiter.stdout.readline().strip() == "ready"
        reader = Metrics(multiprocess_dir=str(tmp_path))
        assert value(reader, "tgbot_generations_waiting") == 1, "a live process's gauge counts"
        waiter.stdin.write("done\n")
        waiter.stdin.flush()
        assert waiter.wait(timeout=30) == 0
        assert value(reader, "tgbot_generations_waiting") == 0, "a closed process's gauge does not"
    finally:
        waiter.kill()
        waiter.wait(timeout=10)
    assert value(reader, "tgbot_answers_total", outcome="completed") == 2
    assert value(reader, "tgbot_answer_duration_seconds_count") == 2
    assert value(reader, "tgbot_telegram_calls_total", method="sendMessage", result="ok") == 2
