# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# The Python check comes first, in one line, before pip can print a wall of "Requires-Python" errors.
# clean and browser need no Python, so they run whatever PYTHON is.
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
ifneq ($(filter-out clean browser,$(or $(MAKECMDGOALS),default)),)
ifeq ($(PYTHON_VERSION),)
$(error no Python at PYTHON=$(PYTHON); this project needs Python 3.11+ (make PYTHON=python3.11 ...))
endif
PYTHON_MINOR_OK := $(shell v="$(PYTHON_VERSION)"; major=$${v%%.*}; rest=$${v#*.}; minor=$${rest%%.*}; \
	[ "$$major" -gt 3 ] || { [ "$$major" -eq 3 ] && [ "$$minor" -ge 11 ]; } && echo yes)
ifneq ($(PYTHON_MINOR_OK),yes)
$(error found Python $(PYTHON_VERSION) at PYTHON=$(PYTHON); this project needs Python 3.11+ (make PYTHON=python3.11 ...))
endif
endif

# .venv remembers the interpreter that built it (pyvenv.cfg's `version`); another one rebuilds it from scratch,
# since a virtualenv cannot change its Python.
VENV_VERSION := $(shell sed -n 's/^version *= *//p' $(VENV)/pyvenv.cfg 2>/dev/null)
ifneq ($(VENV_VERSION),$(PYTHON_VERSION))
VENV_STALE := FORCE
endif

# Debian's Chromium and the emoji font for the browser test (tests/e2e/test_sandbox_browser.py skips without them).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test lint bench clean browser FORCE

$(VENV)/.installed: requirements.txt requirements-dev.txt $(VENV_STALE)
	@if [ -n "$(VENV_VERSION)" ] && [ "$(VENV_VERSION)" != "$(PYTHON_VERSION)" ]; then \
		echo "$(VENV) was built with Python $(VENV_VERSION), PYTHON is $(PYTHON_VERSION): rebuilding $(VENV)"; \
		rm -rf $(VENV); \
	fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

FORCE:

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

browser:  ## Debian's chromium and fonts-noto-color-emoji, for the browser test (installs system packages)
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji

clean:
	rm -rf $(VENV) instance .pytest_cache
