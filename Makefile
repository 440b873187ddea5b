# Two commands on a fresh machine: `make run` and `make test`. Everything is installed from here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
CUTOUT := $(VENV)/bin/cutout
PORT   ?= 8080

.PHONY: install model run test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Fetches IS-Net once into $$CUTOUT_HOME (default ~/.cache/cutout); a no-op when present and valid.
model: $(STAMP)
	$(CUTOUT) fetch-model

# The console (/console) is on, open on loopback; its address is printed with the example URLs.
run: model
	CUTOUT_CONSOLE=$${CUTOUT_CONSOLE:-1} $(CUTOUT) serve --originals cutout/samples --cache-dir $${CUTOUT_CACHE_DIR:-$$HOME/.cache/cutout/derived} --port $(PORT) --print-examples

lint: $(STAMP)
	$(VENV)/bin/ruff check grammar transform cache cutout tests bench
	$(VENV)/bin/mypy

test: model lint
	$(PY) -m pytest

# Fast subset: everything except the real-model tests.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: model
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
