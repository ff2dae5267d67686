# Two commands for a new user: `make demo` (launch a real model and ask it a question) and
# `make test` (lint, type-check, build the docs and run the whole test suite).
# Both create their own virtual environment in .venv and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: demo test lint typecheck pytest docs bench clean system-deps

$(STAMP): pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

# Debian packages the tests need (headless Chromium for the docs search test).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

demo: $(STAMP)
	$(BIN)/python -m zoo.demo

lint: $(STAMP)
	$(BIN)/ruff check zoo tests plugins bench
	$(BIN)/ruff format --check zoo tests plugins bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/pytest -q

# The whole site with the real catalog, warnings as errors (model pages generated on the way).
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -q -j auto docs docs/_build/html

test: lint typecheck docs pytest

# Every benchmark in bench/, each recording its figures under its heading in bench/RESULTS.md.
BENCHMARKS := startup validate full_catalog docs_render docs_build hubs_download launch_overhead tokens_per_second
bench: $(STAMP)
	@for b in $(BENCHMARKS); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info
