# `make demo` and `make test` work from a fresh clone: they create .venv and install fractalgd.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/fractalgd render configs/default.toml --out outputs/default

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ""

lint: setup
	$(VENV)/bin/ruff check fractalgd tests benchmarks examples

bench: setup
	$(VENV)/bin/fractalgd bench --json outputs/bench.json

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache
