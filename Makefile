# motionledger — `make run` runs the ledger, `make test` installs and passes the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every dependency comes from the lock (exact versions and hashes, made by `make lock`
# with uv): a release on PyPI cannot change what a fresh clone, CI or the image installs.
LOCK   := requirements/dev.lock
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: install run test test-nats-floor lint fmt lock schema-docs swagger-ui bench bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r $(LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: install
	$(BIN)/motionledger serve

test: install
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory test-nats-floor

# The SDK and ingest tests again on the lowest nats-py pyproject.toml allows (the locked
# venv has the newest): that nats-py is put in front of the venv's on PYTHONPATH.
NATS_FLOOR := $(shell sed -n 's/^ *"nats-py>=\([0-9.]*\),.*/\1/p' pyproject.toml | head -n 1)
FLOOR_DIR  := .ci/nats-py-$(NATS_FLOOR)

test-nats-floor: install
	test -d $(FLOOR_DIR) || $(PIP) install --quiet --no-deps --target $(FLOOR_DIR) nats-py==$(NATS_FLOOR)
	PYTHONPATH=$(FLOOR_DIR) MOTIONLEDGER_EXPECT_NATS_PY=$(NATS_FLOOR) \
	  $(BIN)/pytest -q -p no:cacheprovider tests/producer tests/integration/test_ingest.py

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

fmt: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

# Re-resolve the locks after changing dependencies in pyproject.toml (then commit them).
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
lock: install
	$(UV_COMPILE) pyproject.toml requirements/build.in requirements/tools.in --extra dev -o requirements/dev.lock
	$(UV_COMPILE) pyproject.toml requirements/build.in requirements/tools.in --extra dev --extra bench -o requirements/bench.lock
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra server -o requirements/server.lock

# Rewrite docs/schema/*.json from the event Structs (a test fails when they are stale).
schema-docs: install
	$(BIN)/python -m tests.support.schema_docs

# The docs page's Swagger UI is vendored (so /schema works without internet): `make
# swagger-ui SWAGGER_UI=<version>` replaces it with that release of swagger-ui-dist from npm
# (then commit src/motionledger/http/static/swagger-ui/; the version is read from its package.json).
SWAGGER_UI       ?= 5.35.0
SWAGGER_UI_DIR   := src/motionledger/http/static/swagger-ui
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css \
                    favicon-32x32.png LICENSE NOTICE package.json

swagger-ui:
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent swagger-ui-dist@$(SWAGGER_UI) >/dev/null \
	  && tar xzf swagger-ui-dist-*.tgz) && mkdir -p $(SWAGGER_UI_DIR) \
	  && for f in $(SWAGGER_UI_FILES); do cp $$tmp/package/$$f $(SWAGGER_UI_DIR)/; done; \
	  status=$$?; rm -rf $$tmp; exit $$status

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): requirements/bench.lock $(STAMP)
	$(PIP) install --quiet --require-hashes -r requirements/bench.lock
	touch $(BENCH_STAMP)

# ~10 minutes on 2 cores; results in bench/results/<timestamp>.{json,md,png}
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .ci/nats-py-*
