#!/usr/bin/env bash
# Validates the deployment files with every tool this machine has (`make deploy-check`).
# Only a missing compose tool is skipped, with a note; the python checks always run, and a missing
# promtool, caddy or nginx is said too (CI installs none of them; tests/unit/test_deploy.py runs the
# python part in every test run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
failed=0
note() { printf 'deploy check: %s\n' "$*"; }

# 1. compose.yaml (both profiles)
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  compose=()
  note "SKIPPED docker compose config: neither 'docker compose' nor docker-compose is installed"
fi
if ((${#compose[@]})); then
  for profile in "" monitoring webhook; do
    args=(-f compose.yaml)
    [[ -n $profile ]] && args+=(--profile "$profile")
    if "${compose[@]}" "${args[@]}" config --quiet; then
      note "compose.yaml ${profile:+(profile $profile) }ok"
    else
      note "compose.yaml ${profile:+(profile $profile) }FAILED"; failed=1
    fi
  done
fi

# 2. prometheus.yml
if command -v promtool >/dev/null 2>&1; then
  promtool check config deploy/prometheus.yml || failed=1
else
  note "promtool not installed: deploy/prometheus.yml checked by the python check only"
fi

# 3. the TLS proxies
if command -v caddy >/dev/null 2>&1; then
  if caddy validate --config deploy/Caddyfile --adapter caddyfile; then note "Caddyfile ok"; else failed=1; fi
else
  note "caddy not installed: deploy/Caddyfile checked by the python check only"
fi
if command -v nginx >/dev/null 2>&1; then
  # nginx -t opens the certificates: a throwaway self-signed pair stands in for Let's Encrypt's.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=bot.example.com \
    -keyout "$tmp/privkey.pem" -out "$tmp/fullchain.pem" 2>/dev/null
  sed -e "s#/etc/letsencrypt/live/bot.example.com#$tmp#g" -e "s#/tmp/nginx-tgbot.pid#$tmp/nginx.pid#" \
    deploy/nginx.conf >"$tmp/nginx.conf"
  if nginx -t -q -e stderr -p "$tmp" -c "$tmp/nginx.conf"; then note "nginx.conf ok"; else failed=1; fi
else
  note "nginx not installed: deploy/nginx.conf checked by the python check only"
fi

# 4. the python checks: dashboard vs bot.metrics, provisioning, compose, proxies, guide
"$PY" deploy/check_config.py || failed=1

exit "$failed"
