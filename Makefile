# Kakehashi build tooling (GNU make). Every target works on a fresh clone with only python3
# (3.11), and, for PostgreSQL, Debian's apt (see `postgres-bins`).

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON       ?= python3
VENV         := .venv
BIN          := $(VENV)/bin
STAMP        := $(VENV)/.stamp-installed
# This machine's pip config lists local extra indexes that lack most projects; pip warns once per
# project about each. Drop only that warning from pip's stderr.
PIP_NOISE    := 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
# pytest-xdist workers. Default 2 (`-n 2`): with the process end-to-end tests, which mostly wait
# on their child processes, two workers measured 7m05s against 10m28s single-process on this
# 2-core machine (2026-11-30). `make test PYTEST_WORKERS=0` for plain single-process pytest.
PYTEST_WORKERS ?= 2
PYTEST_ARGS  ?=
# anvil and cast (foundry) for the EVM tests: npm packages pinned in package.json/package-lock.json.
NODE_STAMP   := node_modules/.stamp-installed
# Only lint the directories that exist (git does not keep empty ones).
LINT_PATHS   := $(wildcard src tests benchmarks)

ifeq ($(PYTEST_WORKERS),0)
PYTEST_N :=
else
PYTEST_N := -n $(PYTEST_WORKERS) --dist loadfile
endif

.PHONY: help venv postgres-bins browser-bins node-tools lint typecheck test demo bench clean

help:
	@echo "make venv       create $(VENV) and install -e .[dev] (instant when up to date)"
	@echo "make node-tools npm ci: anvil and cast for the EVM tests (instant when up to date)"
	@echo "make browser-bins  Debian's chromium for the browser tests (apt-get when root)"
	@echo "make lint       ruff check $(LINT_PATHS)"
	@echo "make typecheck  mypy src/kakehashi"
	@echo "make test       lint + typecheck + pytest (PYTEST_WORKERS=$(PYTEST_WORKERS))"
	@echo "make demo       run the DVP and the logistics demos across both ledgers"
	@echo "make bench      run the benchmarks"
	@echo "make clean      remove $(VENV), caches and build output"

venv: $(STAMP)

# Re-installs only when pyproject.toml changes (or the venv is gone).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, $(PYTHON) is {sys.version.split()[0]}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(PIP_NOISE)
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(PIP_NOISE)
	@touch $@

# PostgreSQL server binaries for the tests' throwaway server (tests/pg.py finds them on PATH
# or in /usr/lib/postgresql/*/bin). Installed from Debian only when missing and running as root.
postgres-bins:
	@if $(PYTHON) tests/pg.py find >/dev/null 2>&1; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "PostgreSQL server binaries missing: installing Debian's postgresql"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	  $(PYTHON) tests/pg.py find; \
	else \
	  echo "WARNING: no PostgreSQL server binaries (initdb, pg_ctl, postgres) and cannot apt-get them;" \
	       "install Debian's postgresql package. Tests marked 'postgres' will fail." >&2; \
	fi

# Debian's chromium for the browser tests (tests/ui/test_browser.py drives /usr/bin/chromium through
# Playwright; Playwright never downloads a browser of its own). Installed only when missing and
# running as root; otherwise say what is missing (the browser tests then fail saying so).
CHROMIUM     := /usr/bin/chromium

browser-bins:
	@if [ -x $(CHROMIUM) ]; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "$(CHROMIUM) missing: installing Debian's chromium"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  $(CHROMIUM) --version; \
	else \
	  echo "WARNING: no $(CHROMIUM) and cannot apt-get it; install Debian's chromium package." \
	       "The browser tests (tests/ui/test_browser.py) will fail." >&2; \
	fi

node-tools: $(NODE_STAMP)

# Re-installs only when package.json or package-lock.json changes (or node_modules is gone).
# Install scripts are skipped: each tool's binary comes in its per-platform package
# (@foundry-rs/anvil-linux-amd64, ...), which npm selects by os/cpu; tests/foundry.py checks it.
$(NODE_STAMP): package.json $(wildcard package-lock.json)
	@command -v npm >/dev/null 2>&1 || { \
	  echo "ERROR: npm not found. The EVM tests need anvil and cast from npm: install Node.js" \
	       "and npm (Debian: apt-get install nodejs npm), then run make node-tools again." >&2; \
	  exit 1; }
	@if [ -f package-lock.json ]; then \
	  echo "node-tools: npm ci (anvil, cast) from package-lock.json"; \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null; \
	else \
	  echo "node-tools: npm install (anvil, cast); no package-lock.json yet, writing one"; \
	  npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null; \
	fi
	@$(PYTHON) tests/foundry.py find >/dev/null
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy src/kakehashi

test: $(STAMP) postgres-bins browser-bins node-tools
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory typecheck
	$(BIN)/python -m pytest $(PYTEST_N) $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/kakehashi demo dvp
	$(BIN)/kakehashi demo logistics

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist .eggs src/*.egg-info .pytest_cache .mypy_cache .ruff_cache \
	       .hypothesis .coverage htmlcov .stamp* node_modules
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
