"""The deployment files (deploy/, compose.yaml, docs/deploy.md) agree with the bot: the pure-python part
of deploy/check.sh, so every test run checks it even where docker, promtool, caddy or nginx are missing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_check_config", ROOT / "deploy" / "check_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_deployment_files_have_no_problems(check: ModuleType) -> None:
    assert check.problems() == []


def test_the_dashboard_queries_metrics_the_bot_exports(check: ModuleType) -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/tgbot.json").read_text())
    queries = check.dashboard_queries(dashboard)
    assert len(queries) >= 10
    assert any("tgbot_answers_total" in query for query in queries)
    assert any("tgbot_telegram_calls_total" in query for query in queries)


def test_the_check_finds_a_metric_the_bot_does_not_export(check: ModuleType, monkeypatch, tmp_path) -> None:
    """The check can fail: a dashboard querying an unknown metric, or missing one, is reported."""
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/tgbot.json").read_text())
    dashboard["panels"][0]["targets"][0]["expr"] = "sum(rate(tgbot_no_such_thing_total[5m]))"
    broken = tmp_path / "tgbot.json"
    broken.write_text(json.dumps(dashboard))
    monkeypatch.setattr(check, "DASHBOARD", broken)
    problems = check.check_dashboard(check.exported_metrics())
    assert any("tgbot_no_such_thing_total is not exported" in problem for problem in problems)
    assert any("tgbot_answers" in problem and "no panel shows it" in problem for problem in problems)
    broken.write_text("{ not json")
    assert "does not parse" in check.check_dashboard(set())[0]


def test_the_check_finds_a_mount_of_a_missing_file(check: ModuleType) -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    compose["services"]["grafana"]["volumes"].append("./deploy/missing.yml:/etc/missing.yml:ro")
    del compose["services"]["prometheus"]["profiles"]
    problems = check.check_compose(compose)
    assert "compose.yaml: grafana mounts ./deploy/missing.yml, which does not exist" in problems
    assert "compose.yaml: prometheus is not in the monitoring profile" in problems


def test_the_check_script_runs_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "check_config.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": ok")
