# CRM: `make run` serves the app, `make test` runs the tests. `make help` lists the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run serve migrate worker test lint format bench bench-quick clean audit-verify chaos

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the app with its test and dev tools

migrate: install ## Apply database migrations (DATABASE_URL, default SQLite in ./var)
	$(BIN)/piccolo migrations forwards all

run: migrate ## Install, migrate and serve on http://$${HOST:-127.0.0.1}:$${PORT:-8000}
	$(BIN)/crm serve

worker: install ## Run a SAQ worker (full stack: REDIS_URL must be set)
	$(BIN)/saq jobs.worker.settings

test: install ## Install test dependencies and run the whole test suite
	$(BIN)/pytest

bench: install ## All benchmarks: one table + var/bench/latest.json (see tests/perf/README.md)
	@$(BIN)/python -m tests.perf.report --check
	$(BIN)/pytest tests/perf -m perf -s

bench-quick: ## make bench with BENCH_QUICK=1: 10,000 rows, a few minutes, as CI runs it
	@BENCH_QUICK=1 $(MAKE) --no-print-directory bench

chaos: install ## Failure tests: workers killed, Redis restarted, S3 stopped (full stack, minutes)
	$(BIN)/pytest tests/chaos -m chaos -s

audit-verify: install ## Check a user's audit hash chain: make audit-verify USER=email-or-id
	@test "$(origin USER)" = "command line" || { echo "usage: make audit-verify USER=email-or-id"; exit 2; }
	$(BIN)/crm audit-verify --user "$(USER)"

lint: install ## ruff check, ruff format --check and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv and local data in ./var
	rm -rf $(VENV) var
