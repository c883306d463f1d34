# Two commands do all the set-up: `make run` starts the bot, `make test` runs every test.
# Both create the virtual environment and install what they need on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run chat test lint bench clean deploy-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m bot

# The console chat: `make chat`, or `make chat ARGS='--thread work'` / `ARGS='--once "question"'`.
chat: $(STAMP)
	$(PY) -m bot chat $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check bot tests bench
	$(PY) -m mypy
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check bot tests bench
	$(PY) -m ruff format --check bot tests bench

# Validates compose.yaml, deploy/ (Prometheus, Grafana, Caddy, nginx) and docs/deploy.md with the tools
# that are installed; see deploy/check.sh.
deploy-check: $(STAMP)
	PY=$(PY) bash deploy/check.sh

clean:
	rm -rf $(VENV)
