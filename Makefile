# Two commands on a fresh machine: `make run` and `make test`. Everything is installed from here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
CUTOUT := $(VENV)/bin/cutout
# The server's own variables, when set, are what `make run` serves with; `make run PORT=9000` wins over both.
PORT      ?= $(or $(CUTOUT_PORT),8080)
ORIGINALS ?= $(CUTOUT_ORIGINALS)

.PHONY: quality help install model run test test-fast lint bench clean

# `make help`: the targets marked with `## ` below, one line each (kept beside each target, not listed twice).
help: ## list the targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install cutout with its test tools

model: $(STAMP) ## fetch IS-Net into $CUTOUT_HOME (default ~/.cache/cutout); a no-op when it is there
	$(CUTOUT) fetch-model

# The console (/console) is on, open on loopback; its address is printed with the example URLs.
# Without ORIGINALS (or CUTOUT_ORIGINALS) the originals are a writable copy of the samples under CUTOUT_HOME
# (the console uploads into it, and the checkout stays clean), made once, whole or not at all: copied again
# on every run, a sample deleted came back, and one replaced by an upload in another format (docs/road as
# PNG) was shadowed by the restored JPEG, tried first. A folder of one's own gets no samples copied in. Uploads are on with a key "local" and a random secret kept in CUTOUT_HOME/run-secret, which is the
# console's password (the secret never goes in a URL).
RUN_HOME := $${CUTOUT_HOME:-$$HOME/.cache/cutout}
run: model ## start the server on :8080 (PORT=..., ORIGINALS=...; or CUTOUT_PORT, CUTOUT_ORIGINALS)
	@test -n "$(ORIGINALS)" || test -d "$(RUN_HOME)/originals" || (mkdir -p "$(RUN_HOME)" && \
	  rm -rf "$(RUN_HOME)/originals.part" && cp -R cutout/samples "$(RUN_HOME)/originals.part" && \
	  rm -rf "$(RUN_HOME)/originals.part/.cutout" && mv "$(RUN_HOME)/originals.part" "$(RUN_HOME)/originals")
	@test -s "$(RUN_HOME)/run-secret" || (umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(18))' > "$(RUN_HOME)/run-secret")
	@echo "console sign-in: user $${CUTOUT_API_KEY:-local}, password in $(RUN_HOME)/run-secret"
	CUTOUT_CONSOLE=$${CUTOUT_CONSOLE:-1} CUTOUT_UPLOAD=$${CUTOUT_UPLOAD:-1} CUTOUT_API_KEY=$${CUTOUT_API_KEY:-local} \
	CUTOUT_API_SECRET=$${CUTOUT_API_SECRET:-$$(cat "$(RUN_HOME)/run-secret")} \
	$(CUTOUT) serve --originals "$(or $(ORIGINALS),$(RUN_HOME)/originals)" --cache-dir $${CUTOUT_CACHE_DIR:-$(RUN_HOME)/derived} --port $(PORT) --print-examples

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check grammar transform cache cutout tests bench
	$(VENV)/bin/mypy

test: model lint ## lint, then the whole test suite
	$(PY) -m pytest

# Fast subset: everything except the real-model tests.
test-fast: $(STAMP) ## the tests without the real-model ones
	$(PY) -m pytest -m "not slow"

# `make test` scores a quarter of ecssd_val200 (tests/segment/test_quality.py); this scores all 200 photos
# and fails as that test does. EVAL: the folder holding the evaluation sets (../shared/eval by default).
EVAL ?= $(or $(CUTOUT_SHARED_DIR),../shared)/eval
quality: model ## the default cut-out against the raw model on every photo of ecssd_val200
	$(PY) bench/quality.py --levels default --check $(EVAL)/ecssd_val200

bench: model ## the benchmarks (bench/run_all.py)
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) bench/run_all.py

clean: ## remove .venv and the tools' caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
