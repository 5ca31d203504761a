# django-pi-payments developer and CI entry points.  `make help` lists the targets.
#
# Every tool runs from the project virtualenv ($(VENV)); `make venv` creates it and reinstalls
# only when pyproject.toml changes.  To add a target, give it a `## description` comment and
# list it in .PHONY; to add a step to `make test`, append it to TEST_STEPS.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENV_PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Extra arguments for every pytest run, e.g. `make test-sqlite PYTEST_ARGS="-k approve -x"`.
PYTEST_ARGS ?=

# Everything below runs from the repo root with tests.settings importable.
DJANGO_ENV := DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=.
export VENV

# The steps of `make test`, in order.
TEST_STEPS := lint test-sqlite test-postgres

.PHONY: help venv lint test test-sqlite test-postgres demo bench clean distclean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# --- environment -----------------------------------------------------------------------------

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV_PY)
	$(VENV_PY) -m pip install --quiet --progress-bar off 'pip>=25.1'
	$(VENV_PY) -m pip install --progress-bar off -e . --group dev
	touch $@

venv: $(STAMP) ## create .venv and install the package with the dev group (only when pyproject.toml changed)

# --- checks ----------------------------------------------------------------------------------

lint: venv ## ruff check, ruff format --check, mypy (package and example shop), and makemigrations --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(DJANGO_ENV) $(BIN)/mypy
	cd example_project && ../$(BIN)/mypy .
	$(DJANGO_ENV) $(VENV_PY) -m django makemigrations --check --dry-run
	cd example_project && ../$(VENV_PY) manage.py makemigrations --check --dry-run

test-sqlite: venv ## the whole suite on SQLite with the LocMem cache
	env -u DATABASE_URL -u REDIS_URL $(DJANGO_ENV) scripts/run-pytest.sh sqlite $(PYTEST_ARGS)

test-postgres: venv ## the whole suite on a throwaway PostgreSQL cluster with a throwaway Redis cache
	$(DJANGO_ENV) scripts/with-postgres.sh scripts/with-redis.sh scripts/run-pytest.sh postgres $(PYTEST_ARGS)

test: venv ## venv, lint, then the suite on SQLite and on PostgreSQL
	@for step in $(TEST_STEPS); do \
		echo "=== make $$step ==="; \
		$(MAKE) --no-print-directory $$step || exit $$?; \
	done

# --- demo ------------------------------------------------------------------------------------

demo: venv ## the example shop (http://127.0.0.1:8000, admin/admin) on the local Pi sandbox; Ctrl-C stops both
	scripts/demo.sh

# --- benchmarks ------------------------------------------------------------------------------

# Extra arguments for the benchmarks, e.g. `make bench BENCH_ARGS=--quick` for a smoke run.
BENCH_ARGS ?=

bench: venv ## the figures of docs/performance.md on PostgreSQL + Redis: a table and benchmarks/results.json
	scripts/with-postgres.sh scripts/with-redis.sh $(VENV_PY) -m benchmarks $(BENCH_ARGS)

# --- housekeeping ----------------------------------------------------------------------------

clean: ## remove caches and build output (keeps .venv)
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv
	rm -rf $(VENV)
