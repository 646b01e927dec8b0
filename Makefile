# Two entry points for a fresh machine (see README):
#   make demo  -- set up, then generate, ingest, assess and serve a demo patient
#   make test  -- set up (Debian packages included), then run the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(VENV)/bin/oncohybrid demo

test: system-deps $(STAMP)
	bash scripts/run-tests.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
