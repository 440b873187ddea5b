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
# The originals live in a writable copy of the samples under CUTOUT_HOME (the console uploads into it, and
# the checkout stays clean); uploads are on with a key "local" and a random secret kept in
# CUTOUT_HOME/run-secret, which is the console's password (the secret never goes in a URL).
RUN_HOME := $${CUTOUT_HOME:-$$HOME/.cache/cutout}
run: model
	@mkdir -p "$(RUN_HOME)/originals" && cp -Rn cutout/samples/. "$(RUN_HOME)/originals/"
	@test -s "$(RUN_HOME)/run-secret" || (umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(18))' > "$(RUN_HOME)/run-secret")
	@echo "console sign-in: user $${CUTOUT_API_KEY:-local}, password in $(RUN_HOME)/run-secret"
	CUTOUT_CONSOLE=$${CUTOUT_CONSOLE:-1} CUTOUT_UPLOAD=$${CUTOUT_UPLOAD:-1} CUTOUT_API_KEY=$${CUTOUT_API_KEY:-local} \
	CUTOUT_API_SECRET=$${CUTOUT_API_SECRET:-$$(cat "$(RUN_HOME)/run-secret")} \
	$(CUTOUT) serve --originals "$(RUN_HOME)/originals" --cache-dir $${CUTOUT_CACHE_DIR:-$(RUN_HOME)/derived} --port $(PORT) --print-examples

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
