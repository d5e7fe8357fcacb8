# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed  ## run the product (a local sandbox when TELEGRAM_BOT_TOKEN is not set)
	$(PY) -m devtools.launch

test: $(VENV)/.installed  ## the whole test suite (PostgreSQL too when TEST_DATABASE_URL is set)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed  ## ruff (lint and format) and mypy, as CI runs them
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) bench/api.py
	$(PY) bench/delivery.py
	$(PY) bench/staff_broadcast.py

clean:
	rm -rf $(VENV) instance .pytest_cache
