# tradingagent: `make run` starts the whole platform locally, `make test` runs every check.
# Both work from a fresh clone with only Python 3.11: they create .venv and install into it.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstall only when a requirements file changed since the last successful install.
SETUP_STAMP := $(VENV)/.setup-stamp
# Every Django app (a folder with apps.py), the project package and the scripts.
APPS := $(patsubst %/apps.py,%,$(wildcard */apps.py)) core tradingagent scripts
PYTEST_ARGS ?=

.PHONY: help setup run test test-fast lint format typecheck pytest chromium clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	$(PYTHON) -m venv $(VENV)

$(SETUP_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements-dev.txt
	@touch $@

setup: $(SETUP_STAMP)  ## create .venv and install the pinned requirements (quick when nothing changed)

run: setup  ## the embedded default: SQLite + embedded Redis, demo bots; web, worker, beat, Flower
	@# The embedded default ignores any DATABASE_URL/REDIS_URL of the shell (they are for tests).
	env -u DATABASE_URL -u REDIS_URL DEBUG=true $(PY) -m tradingagent.launcher --seed-demo

# Every step runs even when an earlier one failed, so one CI run reports every problem;
# the target fails if any step failed.
test: setup chromium  ## ruff, mypy and the whole pytest suite (PostgreSQL + Redis, started if absent)
	@failed=""; \
	$(MAKE) --no-print-directory lint || failed="$$failed lint"; \
	$(MAKE) --no-print-directory typecheck || failed="$$failed typecheck"; \
	$(MAKE) --no-print-directory pytest || failed="$$failed pytest"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: all checks passed"

# The unit tier, for quick local runs: no process, no browser, no real timeout waited for.
test-fast: setup  ## pytest without the slow and browser tests (PostgreSQL + Redis as for make test)
	@$(MAKE) --no-print-directory pytest PYTEST_ARGS='-m "not slow and not browser" $(PYTEST_ARGS)'

lint: setup  ## ruff check, ruff format --check, and the layering contracts (import-linter, pyproject.toml)
	@rc=0; \
	$(VENV)/bin/ruff check . || rc=1; \
	$(VENV)/bin/ruff format --check . || rc=1; \
	$(VENV)/bin/lint-imports --no-cache --no-logo || rc=1; \
	exit $$rc

format: setup  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: setup  ## mypy on the apps
	$(VENV)/bin/mypy $(APPS)

# pytest runs on PYTEST_WORKERS processes (pytest-xdist; 0: in one process), one test module per
# worker at a time. Each worker has its own PostgreSQL database (pytest-django suffixes the name)
# and its own Redis database (REDIS_URL's, then the next ones: see tests/settings.py).
PYTEST_WORKERS ?= 2

pytest: setup  ## pytest against DATABASE_URL/REDIS_URL, the local servers, or throwaway ones
	@# pytest exits 5 when it collected no test: that is a failure here, not a pass.
	@set +e; $(PY) scripts/test_services.py -- $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# The browser tests drive Debian's Chromium (never a browser downloaded by Playwright).
chromium:
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		( apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null ) \
			|| echo "warning: could not install chromium: the browser tests will be skipped"; \
	else \
		echo "note: /usr/bin/chromium is missing and we are not root: the browser tests will be skipped"; \
	fi

clean:  ## remove caches and the embedded run's data (var/); keeps .venv
	rm -rf var .mypy_cache .ruff_cache .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
