# The two commands: `make demo` and `make test`. Everything else helps.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install browser lint bench-mrmc clean-demo help

help:
	@echo "make demo   - set up and serve the platform with the demo study on http://$(HOST):$(PORT)"
	@echo "make test   - set up and run the whole test suite"
	@echo "make lint   - ruff and the import contracts (lint-imports)"

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's chromium (never a downloaded browser); the report tests read the
# PDF's text with poppler's pdftotext, and WeasyPrint lays reports out in DejaVu Sans (the font
# whose widths the report's table layout measures).
CHROMIUM ?= /usr/bin/chromium
PDFTOTEXT ?= /usr/bin/pdftotext
DEJAVU ?= /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
SYSTEM_PACKAGES := chromium poppler-utils fonts-dejavu-core
$(CHROMIUM) $(PDFTOTEXT) $(DEJAVU):
	@echo "installing Debian's $(SYSTEM_PACKAGES) for the browser and report tests"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SYSTEM_PACKAGES) >/dev/null || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SYSTEM_PACKAGES) >/dev/null; } || \
	  { echo "could not install them; run: apt-get install $(SYSTEM_PACKAGES)" >&2; exit 1; }

browser: $(CHROMIUM) $(PDFTOTEXT) $(DEJAVU)

demo: export XRS_SITE_URL ?= http://$(HOST):$(PORT)
demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup
	$(PY) manage.py demo_study
	$(PY) manage.py demo_report
	@echo "Serving on http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	$(PY) manage.py runserver --noreload $(HOST):$(PORT)

# The guard rails: ruff (style, and TID251: tasks only through core.tasks.task), the import
# contracts of pyproject.toml's [tool.importlinter] (the apps' layers, the pure cores), and the
# shape rules in tests/architecture (run with the tests).
test: install browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench-mrmc: install
	$(PY) bench/mrmc.py

clean-demo:
	rm -rf var/demo var/db.sqlite3 var/media
