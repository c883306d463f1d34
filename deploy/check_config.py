"""The deployment files agree with the bot: run by deploy/check.sh and by tests/unit/test_deploy.py.

- the Grafana dashboard parses, uses the provisioned Prometheus datasource, queries only metrics the bot
  exports (bot.metrics), and shows every one of them;
- the Grafana provisioning files and prometheus.yml parse and point where compose.yaml puts things;
- compose.yaml mounts only files that exist, and has the `monitoring` profile;
- the TLS proxy examples forward the bot's default webhook path to its port;
- docs/deploy.md names only files of the repository that exist.

`python deploy/check_config.py` prints each problem and exits 1 if there is any.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "tgbot.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "tgbot.yml"
PROMETHEUS = DEPLOY / "prometheus.yml"
COMPOSE = ROOT / "compose.yaml"
GUIDE = ROOT / "docs" / "deploy.md"
METRIC = re.compile(r"\btgbot_[a-z0-9_]+")
BOT_PORT = 8080  # WEBHOOK_PORT's default, and HEALTH_PORT in compose.yaml


def exported_metrics() -> set[str]:
    sys.path.insert(0, str(ROOT))
    from bot.metrics import Metrics

    return Metrics().names()


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels (rows' nested panels too)."""
    exprs: list[str] = []
    panels = list(dashboard.get("panels", []))
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        exprs.extend(target["expr"] for target in panel.get("targets", []) if "expr" in target)
    return exprs


def check_dashboard(exported: set[str]) -> list[str]:
    problems: list[str] = []
    try:
        dashboard = json.loads(DASHBOARD.read_text())
    except (OSError, ValueError) as error:
        return [f"{DASHBOARD.name}: does not parse: {error}"]
    for key in ("uid", "title", "panels"):
        if not dashboard.get(key):
            problems.append(f"dashboard: no {key}")
    exprs = dashboard_queries(dashboard)
    if not exprs:
        problems.append("dashboard: no queries")
    used: set[str] = set()
    for expr in exprs:
        names = set(METRIC.findall(expr))
        if not names and "up{" not in expr:
            problems.append(f"dashboard: a query uses no tgbot metric: {expr}")
        for name in sorted(names - exported):
            problems.append(f"dashboard: {name} is not exported by the bot (in: {expr})")
        used |= names
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in exported}
    shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    for family in sorted(families - shown):
        problems.append(f"dashboard: the bot exports {family}, but no panel shows it")
    datasource_uid = _provisioned_datasource_uid()
    for panel in dashboard.get("panels", []):
        uid = (panel.get("datasource") or {}).get("uid")
        if uid != datasource_uid:
            problems.append(
                f"dashboard: panel {panel.get('title')!r} uses datasource {uid!r}, not {datasource_uid!r}"
            )
    return problems


def _provisioned_datasource_uid() -> str | None:
    sources = yaml.safe_load(DATASOURCES.read_text()).get("datasources", [])
    return sources[0].get("uid") if sources else None


def check_provisioning(compose: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    sources = yaml.safe_load(DATASOURCES.read_text()).get("datasources", [])
    if [source.get("url") for source in sources] != ["http://prometheus:9090"]:
        problems.append("grafana datasource: expected one, at http://prometheus:9090")
    providers = yaml.safe_load(PROVIDERS.read_text()).get("providers", [])
    paths = [provider.get("options", {}).get("path") for provider in providers]
    grafana_volumes = compose["services"]["grafana"].get("volumes", [])
    if not any(volume.endswith(f":{path}:ro") for path in paths for volume in grafana_volumes):
        problems.append(f"grafana: the dashboard provider's path {paths} is not mounted in compose.yaml")
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in prometheus.get("scrape_configs", [])}
    job = jobs.get("tgbot")
    if job is None:
        problems.append("prometheus.yml: no tgbot job")
    else:
        if job.get("metrics_path") != "/metrics":
            problems.append("prometheus.yml: the tgbot job must scrape /metrics")
        ports = {config.get("port") for config in job.get("dns_sd_configs", [])}
        if ports != {BOT_PORT}:
            problems.append(f"prometheus.yml: scrapes port(s) {ports}, the bot serves /metrics on {BOT_PORT}")
    return problems


def check_compose(compose: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    services = compose.get("services", {})
    for name in ("redis", "bot", "prometheus", "grafana", "caddy"):
        if name not in services:
            problems.append(f"compose.yaml: no {name} service")
    for name in ("prometheus", "grafana"):
        if "monitoring" not in services.get(name, {}).get("profiles", []):
            problems.append(f"compose.yaml: {name} is not in the monitoring profile")
    if "webhook" not in services.get("caddy", {}).get("profiles", []):
        problems.append("compose.yaml: caddy is not in the webhook profile")
    if "profiles" in services.get("bot", {}) or "profiles" in services.get("redis", {}):
        problems.append("compose.yaml: the bot and Redis must start without a profile")
    environment = services.get("bot", {}).get("environment", {})
    if str(environment.get("HEALTH_PORT")) != str(BOT_PORT):
        problems.append(f"compose.yaml: the bot's HEALTH_PORT must be {BOT_PORT} (Prometheus scrapes it)")
    if "redis-data:/data" not in services.get("redis", {}).get("volumes", []):
        problems.append("compose.yaml: Redis keeps no data volume")
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(".") and not (ROOT / source).exists():
                problems.append(f"compose.yaml: {name} mounts {source}, which does not exist")
    return problems


def check_proxies() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from bot.config import Settings

    path = Settings.model_fields["webhook_path"].default
    problems: list[str] = []
    caddy = (DEPLOY / "Caddyfile").read_text()
    if f"handle {path}" not in caddy or f"bot {BOT_PORT}" not in caddy:
        problems.append(f"Caddyfile: must forward {path} to port {BOT_PORT}")
    nginx = (DEPLOY / "nginx.conf").read_text()
    if f"location = {path}" not in nginx or f":{BOT_PORT}" not in nginx:
        problems.append(f"nginx.conf: must forward {path} to port {BOT_PORT}")
    for name, text in (("Caddyfile", caddy), ("nginx.conf", nginx)):
        if re.search(r"^\s*(location|handle)\b[^\n]*/metrics", text, re.MULTILINE):
            problems.append(f"{name}: /metrics must not be published")
    return problems


def check_guide() -> list[str]:
    if not GUIDE.exists():
        return ["docs/deploy.md is missing"]
    text = GUIDE.read_text()
    problems: list[str] = []
    for reference in sorted(set(re.findall(r"`((?:deploy|docs|bot|tests)/[A-Za-z0-9_./-]+)`", text))):
        if not (ROOT / reference.rstrip("/")).exists():
            problems.append(f"docs/deploy.md: names {reference}, which does not exist")
    makefile = (ROOT / "Makefile").read_text()
    for target in sorted(set(re.findall(r"\bmake ([a-z][a-z-]*)", text))):
        if not re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE):
            problems.append(f"docs/deploy.md: `make {target}` is not a Makefile target")
    return problems


def problems() -> list[str]:
    compose = yaml.safe_load(COMPOSE.read_text())
    return [
        *check_dashboard(exported_metrics()),
        *check_provisioning(compose),
        *check_compose(compose),
        *check_proxies(),
        *check_guide(),
    ]


def main() -> int:
    found = problems()
    for problem in found:
        print(f"deploy check: {problem}", file=sys.stderr)
    if not found:
        print("deploy check: dashboard, provisioning, prometheus.yml, compose.yaml, proxies, guide: ok")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
