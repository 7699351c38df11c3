# airflow-provider-frontier: `make demo` runs the financial close on the bundled demo ledger,
# `make airflow` runs a local Airflow with the demo, `make test` runs the whole test suite.
# All create .venv on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.9.30
EXTRAS := dev,celery

# The demo's Airflow lives inside the repo (git-ignored), with a SQLite metadata database.
export AIRFLOW_HOME ?= $(CURDIR)/airflow_home
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
AIRFLOW_PORT ?= 8080

.PHONY: demo airflow test lint format install system-packages lock clean

demo: $(VENV)/.installed
	$(BIN)/python -m frontier_provider.demo --period 2024-12

# api-server, scheduler, dag-processor and triggerer on SQLite (or $$FRONTIER_DATABASE_URL), with the
# demo's connections and every DAG unpaused; prints the URL, user and password; Ctrl-C stops it all.
airflow: $(VENV)/.installed
	$(BIN)/python -m frontier_provider.demo.airflow --port $(AIRFLOW_PORT)

test: $(VENV)/.installed system-packages lint
	$(BIN)/pytest

# Debian's Chromium (the UI test) and docker-compose (validates docker-compose.yml), when missing.
system-packages:
	@bash tests/e2e/install_system_packages.sh

# ruff, then the import contracts of pyproject.toml's [tool.importlinter] (the layers of docs/architecture.md).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

install: $(VENV)/.installed

# Installs are reproducible: every package is pinned in constraints.txt (`make lock` regenerates it).
# Bytecode is compiled at install, the provider's own modules included: with PYTHONDONTWRITEBYTECODE
# set, nothing is cached at import, and every task process would compile Airflow, pandas and the
# provider from source again (measured: importing airflow.sdk 3.9 s of CPU without .pyc, 1.3 s with).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[$(EXTRAS)]"
	$(BIN)/python -m compileall -q frontier_provider dags plugins > /dev/null
	touch $@

lock: $(VENV)/.installed
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra celery --python-version 3.11 \
		--no-header --no-annotate -o constraints.txt

clean:
	rm -rf airflow_home .pytest_cache .ruff_cache
