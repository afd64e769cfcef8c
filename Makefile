# freshrank: `make demo` and `make test` work on a fresh machine (they create the virtualenv first).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

FLINK_VENV ?= .venv-flink

.PHONY: install demo test lint typecheck unit services services-down bench bench-trends flink-venv clean

# pip keeps its cache (~/.cache/pip): torch (a ~3 GB CUDA build on PyPI) downloads once and is never
# reinstalled into an existing venv unless pyproject.toml changes its pin.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

# The trend replay's compiled scanner and reader (Rust, PyO3): built from native/ with cargo (rustup).
# Without it the same results come from the Python path, about half as fast.
NATIVE_STAMP := $(VENV)/.native
CARGO_BIN := $(HOME)/.cargo/bin
$(NATIVE_STAMP): $(STAMP) native/Cargo.toml native/Cargo.lock native/pyproject.toml native/src/lib.rs
	@PATH="$(CARGO_BIN):$$PATH" command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) to build native/" >&2; exit 1; }
	PATH="$(CARGO_BIN):$$PATH" $(PIP) install -q ./native
	touch $@

install: $(STAMP) $(NATIVE_STAMP)

# PyFlink pins (apache-beam, pandas, protobuf) clash with the main venv, so the trend job has its own.
$(FLINK_VENV)/.installed: requirements-flink.txt
	test -x $(FLINK_VENV)/bin/python || $(PYTHON) -m venv $(FLINK_VENV)
	$(FLINK_VENV)/bin/pip install -q --upgrade pip wheel
	$(FLINK_VENV)/bin/pip install -q -r requirements-flink.txt
	$(FLINK_VENV)/bin/pip install -q --no-deps -e .
	bash scripts/flink-jars.sh $(FLINK_VENV) >/dev/null
	$(FLINK_VENV)/bin/python -c "from freshrank.trends.flink.launcher import job_classpath; print(job_classpath()[-1])"
	touch $@

flink-venv: $(FLINK_VENV)/.installed

demo: install
	$(VENV)/bin/freshrank demo

services: install
	bash scripts/services.sh up

services-down:
	bash scripts/services.sh down

lint: install
	$(VENV)/bin/ruff check src tests experiments
	$(VENV)/bin/ruff format --check src tests experiments

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest

test: install services lint typecheck flink-venv
	bash scripts/services.sh up elasticsearch
	bash scripts/flink-jars.sh
	bash deploy/tools.sh
	$(PY) -m pytest

bench: install services flink-venv
	bash scripts/services.sh up elasticsearch
	$(PY) -m freshrank.bench

bench-trends: install flink-venv
	$(PY) -m freshrank.bench trends

clean:
	rm -rf .freshrank .pytest_cache .mypy_cache .ruff_cache bench-results.json
