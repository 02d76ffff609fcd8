# evce: `make run` installs and starts everything; `make test` installs and runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install install-dev browser lint format

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-base: requirements/base.txt | $(PY)
	@$(PY) -m pip install -q -r requirements/base.txt
	@touch $@

$(VENV)/.installed-dev: requirements/dev.txt requirements/base.txt | $(PY)
	$(PY) -m pip install -q -r requirements/dev.txt
	touch $@ $(VENV)/.installed-base

install: $(VENV)/.installed-base
install-dev: $(VENV)/.installed-dev

## run: install, migrate and start web + OCPP, worker, beat (and Redis when REDIS_URL is unset)
run: install
	@echo "Preparing the database and static files…"
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py collectstatic --noinput -v0
	@exec $(PY) manage.py serve

## browser: Chromium for the browser tests, from the system package manager when absent
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

## test: install what the tests need and run the whole suite
test: install-dev browser
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	EVCE_DATA_DIR=$(CURDIR)/var/test $(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

format: install-dev
	$(PY) -m ruff format .
