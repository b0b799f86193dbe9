# Two commands for a new user: `make run` (the local stack) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test e2e chaos lint bench deps package clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed

## make run: Azurite + the bot (unauthenticated local mode) + the Agents Playground; Ctrl-C stops all three.
run: deps
	$(PY) -m scripts.run_local

## make test: the whole suite; the suite starts and stops its own in-memory Azurite on a free port.
test: deps
	$(PY) -m pytest

## make e2e: the end-to-end test through the real Agents Playground in headless Chromium.
## It runs inside a loopback-only network namespace (root; scripts/netns.py), because the
## Playground probes a cloud metadata address; LOCAL_NETNS=0 runs it on the host instead.
e2e: deps
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(if $(filter 0,$(LOCAL_NETNS)),,$(PY) -m scripts.netns --) $(PY) -m pytest -m e2e tests/e2e

## make chaos: the real service as two processes on one Azurite under orders, imports, connector
## faults and kill -9 for CHAOS_SECONDS (120), then an audit of the tables; CHAOS_SEED repeats a run.
CHAOS_SECONDS ?= 120
chaos: deps
	$(PY) -m tests.chaos --seconds $(CHAOS_SECONDS) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

## make bench: figures for the notes (not tests), printed by tests/benchmarks/.
bench: deps
	$(PY) -m tests.benchmarks.bench_help
	$(PY) -m tests.benchmarks.bench_form_messages
	$(PY) -m tests.benchmarks.bench_command_parser
	$(PY) -m tests.benchmarks.bench_place_order
	$(PY) -m tests.benchmarks.bench_webhook
	$(PY) -m tests.benchmarks.bench_licences
	$(PY) -m tests.benchmarks.bench_usage_parse
	$(PY) -m tests.benchmarks.bench_usage_import
	$(PY) -m tests.benchmarks.bench_alerts
	$(PY) -m tests.benchmarks.bench_history_export
	$(PY) -m tests.benchmarks.bench_runway
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(if $(filter 0,$(LOCAL_NETNS)),,$(PY) -m scripts.netns --) $(PY) -m tests.benchmarks.bench_playground

## make lint: ruff, and the layout's import rules (import-linter contracts in pyproject.toml).
lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

## make package: the Teams app package build/appPackage.zip; needs MicrosoftAppId (environment or .env).
package: deps
	$(PY) -m manifest.build_package

clean:
	rm -rf $(VENV) node_modules .data build .pytest_cache .ruff_cache .hypothesis
