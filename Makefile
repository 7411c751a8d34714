# The user's contract: `make run` brings GITS up with demo data, `make test` runs the suite.
# Both create the virtualenv and install everything on first use.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR := var/supervisor
PACKAGES := gits_cli gits_common gits_ml queue_manager workers data_source ground_truth_collector ml_data_api \
	monitoring_api retraining_api django_admin ml_data_loader

.PHONY: run status test lint bench install env services browser newman lock clean

# supervisord runs the platform (scripts/supervisord_conf.py writes its configuration):
# a process that exits is restarted, and Ctrl-C or SIGTERM stops them all.
run: install env services  ## Start the whole platform with demo data (Ctrl-C stops it)
	@$(PY) scripts/banner.py
	@$(PY) scripts/supervisord_conf.py $(RUN_DIR)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(VENV)/bin/supervisord -c $(RUN_DIR)/supervisord.conf

# supervisorctl answers 3 when a process is not running, as the finished one-shot setup.
status:  ## While `make run` runs: the state, pid and uptime of each of its processes
	@$(VENV)/bin/supervisorctl -c $(RUN_DIR)/supervisord.conf status || test $$? -eq 3

test: install env services browser newman  ## Run the full test suite against the real PostgreSQL and RabbitMQ
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install  ## ruff, mypy and the import contracts between services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(PACKAGES) scripts tests benchmarks
	$(VENV)/bin/lint-imports

bench: install env services  ## Benchmarks; numbers are ratios against a baseline from the same run
	$(PY) -m benchmarks

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

env:  ## Write .env from .env.example, generating local secrets once
	$(PYTHON) scripts/init_env.py

browser:  ## Install Debian's Chromium for the dashboards' browser tests, if missing
	scripts/ensure-browser.sh

newman:  ## Install newman (npm) into .tools/ for the Postman collection's test, if missing
	scripts/ensure-newman.sh

services:  ## Start PostgreSQL and RabbitMQ if they are down (installs them on Debian as root)
	scripts/ensure-services.sh

lock:  ## Re-resolve dependencies and rewrite constraints.txt
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet '.[dev]'
	.venv-lock/bin/pip freeze --exclude-editable | grep -viE '^(pip|setuptools|wheel|gits)==' > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
