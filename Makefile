# One command to run the demo, one to run every test. Both set up what they need.
SHELL := bash
VENV := .venv
PY := $(VENV)/bin/python
# Every extra, so the tests reach every adapter; the dev tools are a PEP 735 group (pip >= 25.1).
EXTRAS := sdk,socketio,redis,rabbitmq,nats,postgres,sqlite,httpx,otlp,websocket,testing,prometheus
STAMP := .make
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE := 1
# Test servers take ports from this range, each held under a lock for the run, and every topic,
# stream and key a run creates starts with its own prefix (clicktrace.testing.unique_name), so two
# runs on one machine and its brokers cannot collide. Override either on the command line.
export CLICKTRACE_TEST_PORTS ?= 20000-29999
# The plugin's sources and the demo web app's: `web` rebuilds only when one of them changed.
JS_SRC := $(shell find js_sdk/src js_sdk/package.json js_sdk/tsconfig.json js_sdk/tsconfig.build.json -type f 2>/dev/null)
WEB_SRC := $(shell find demo_app/web -path demo_app/web/dist -prune -o -path demo_app/web/node_modules -prune -o -type f -print 2>/dev/null)

.PHONY: console demo demo-distributed test setup web chromium test-py test-otel test-js test-e2e test-example packages check bench clean

# The fault panel is off unless enabled; the demo enables it, behind an operator token that
# the printed address carries in its fragment (the browser never sends a fragment).
demo: export CLICKTRACE_FAULTS ?= 1
demo: export CLICKTRACE_OPERATOR_TOKEN ?= $(shell python3 -c 'import secrets; print(secrets.token_hex(16))')
demo: setup web
	@echo "clicktrace demo: http://$(HOST):$(PORT)/#operator=$$CLICKTRACE_OPERATOR_TOKEN"
	HOST=$(HOST) PORT=$(PORT) $(PY) -m demo_app.server

# The same catalogue as separate processes (Procfile): RabbitMQ unless CLICKTRACE_BUS_URL says
# otherwise, socket fan-out and faults over Redis, event store and read model in PostgreSQL.
demo-distributed: export CLICKTRACE_BUS_URL ?= amqp://guest:guest@127.0.0.1:5672/
demo-distributed: export CLICKTRACE_REDIS_URL ?= redis://127.0.0.1:6379/0
demo-distributed: export CLICKTRACE_JOURNAL_URL ?= redis://127.0.0.1:6379/0
demo-distributed: export CLICKTRACE_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
demo-distributed: export CLICKTRACE_SECRET ?= $(shell python3 -c 'import secrets; print(secrets.token_hex(16))')
demo-distributed: export CLICKTRACE_FAULTS ?= 1
demo-distributed: export CLICKTRACE_OPERATOR_TOKEN ?= $(shell python3 -c 'import secrets; print(secrets.token_hex(16))')
demo-distributed: export PYTHONUNBUFFERED := 1
demo-distributed: setup web
	@echo "clicktrace distributed demo: http://$(HOST):8001/#operator=$$CLICKTRACE_OPERATOR_TOKEN and http://$(HOST):8002"
	HOST=$(HOST) $(VENV)/bin/honcho -f Procfile start

test: setup web chromium check test-py test-otel test-js test-e2e test-example

setup: $(STAMP)/venv $(STAMP)/npm

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]' --group dev
	@touch $@

$(STAMP)/npm: package.json package-lock.json js_sdk/package.json demo_app/web/package.json
	@mkdir -p $(STAMP)
	npm ci --no-audit --no-fund
	@touch $@

web: demo_app/web/dist/index.html

# The operator console's assets, committed in the Python package (the user has no build step).
console: $(STAMP)/npm
	npm run -s build:console -w clicktrace-pinia

# The plugin's tsc build alone: what the demo's typecheck reads (its .d.ts), without Vite.
$(STAMP)/js-sdk: $(STAMP)/npm $(JS_SRC)
	npm run build -w clicktrace-pinia
	@touch $@

# Vite rewrites index.html on every build, so it is the stamp: deleting dist/ rebuilds too.
demo_app/web/dist/index.html: $(STAMP)/js-sdk $(WEB_SRC)
	npm run build -w clicktrace-demo-web
	@touch $@

chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# No Vite build here: the typecheck needs only the plugin's declarations.
check: setup $(STAMP)/js-sdk
	$(PY) -m mypy
	$(PY) -m mypy tests e2e bench demo_app/server
	$(PY) -m mypy --strict examples/todo/server.py examples/todo/tests
	$(PY) -m ruff check py_sdk tests e2e bench demo_app/server examples
	$(PY) -m ruff format --check py_sdk tests e2e bench demo_app/server examples
	npm run typecheck
	npm run lint -w clicktrace-pinia  # Biome: lint + format check of js_sdk
	node bench/bundle.mjs --check  # the plugin's 6.1 KiB min+gzip budget per transport
	node js_sdk/console/build.mjs --check  # the committed console assets are a rebuild of their sources

test-py: setup
	$(PY) -m pytest tests -q --cov=clicktrace --cov-report=term:skip-covered

# The OpenTelemetry matrix. Lean spans read private parts of the SDK (clicktrace.spans checks
# them once at start and falls back to SDK spans), so the tests that open, sample or export
# spans run again against the oldest and the newest opentelemetry-sdk the package allows, each
# in a venv of its own (the main venv's dev tools pin the SDK to what they were built for).
# The oldest is pyproject's lower bound; the newest is what the registry has below 2 when the
# venv is made (CI makes it on every run; locally, delete it to take a newer release).
# Left out: the broker suites (the spans they open are the bus's, already in
# tests/bus/test_tracing.py and test_sampling_loop.py), the journal, notify's hub and the e2e.
OTEL_OLDEST := $(shell sed -n 's/^  "opentelemetry-api>=\([0-9.]*\),<2",$$/\1/p' pyproject.toml)
OTEL_EXTRAS := sdk,testing,httpx,otlp,redis,rabbitmq,socketio,websocket
OTEL_TOOLS := pytest-asyncio pytest-timeout hypothesis 'uvicorn[standard]' fastapi structlog aiohttp \
  opentelemetry-instrumentation-asgi
OTEL_PINS := $(foreach p,api sdk proto exporter-otlp-proto-http,'opentelemetry-$(p)==$(OTEL_OLDEST)')
OTEL_TESTS := tests/spans tests/sampling tests/asgi tests/bus/test_tracing.py \
  tests/bus/test_outcome_spans.py tests/bus/test_sampling_loop.py tests/notify/test_notifier.py \
  tests/test_httpx.py tests/test_step.py \
  tests/ingest/test_route.py tests/ingest/test_otlp.py tests/testing

$(STAMP)/otel-oldest: pyproject.toml Makefile
	@mkdir -p $(STAMP)
	test -n "$(OTEL_OLDEST)"  # the lower bound, read from pyproject.toml
	test -x .venv-otel-oldest/bin/python || python3 -m venv .venv-otel-oldest
	.venv-otel-oldest/bin/python -m pip install -q -e '.[$(OTEL_EXTRAS)]' $(OTEL_TOOLS) $(OTEL_PINS)
	@touch $@

$(STAMP)/otel-newest: pyproject.toml Makefile
	@mkdir -p $(STAMP)
	test -x .venv-otel-newest/bin/python || python3 -m venv .venv-otel-newest
	.venv-otel-newest/bin/python -m pip install -q --upgrade --upgrade-strategy eager \
	  -e '.[$(OTEL_EXTRAS)]' $(OTEL_TOOLS)
	@touch $@

test-otel: $(STAMP)/otel-oldest $(STAMP)/otel-newest
	@for end in oldest newest; do \
	  py=.venv-otel-$$end/bin/python; \
	  echo "== $$end: $$($$py -c 'from importlib.metadata import version as v; print("opentelemetry-sdk", v("opentelemetry-sdk"), "/ api", v("opentelemetry-api"))')"; \
	  $$py -m pytest $(OTEL_TESTS) -q -p no:cacheprovider || exit 1; \
	done

test-js: setup
	npm test

test-e2e: setup web chromium
	$(PY) -m pytest e2e -q

# The todo example (examples/todo) as a user has it: clicktrace from the built wheel in a venv
# of its own, clicktrace-pinia from the packed tarball, so a packaging break fails here.
DIST := $(STAMP)/dist
EXAMPLE := examples/todo
EXAMPLE_PY := $(STAMP)/example-venv/bin/python

BUILD_PY := $(STAMP)/build-venv/bin/python

# A venv holding pip alone (a system python3 may have none): it builds the wheel in an
# isolated environment with only the build backend (hatchling) in it.
$(BUILD_PY):
	@mkdir -p $(STAMP)
	python3 -m venv $(STAMP)/build-venv

# The two packages and nothing else: no development venv, no demo web app. npm pack builds the
# plugin with its own prepack (tsc), which needs only the workspace's node_modules.
packages: $(STAMP)/npm $(BUILD_PY)
	rm -rf $(DIST) && mkdir -p $(DIST)
	$(BUILD_PY) -m pip wheel -q --no-deps --wheel-dir $(DIST) .
	npm pack -w clicktrace-pinia --pack-destination $(DIST) --silent >/dev/null
	mv $(DIST)/clicktrace-pinia-*.tgz $(DIST)/clicktrace-pinia.tgz
	@python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = z.namelist(); print(sys.argv[1], len(n), "files"); missing = {"clicktrace/console/_static/console.js", "clicktrace/console/_static/console.css"} - set(n); sys.exit(f"the wheel lacks the console assets: {sorted(missing)}" if missing else 0)' $(DIST)/clicktrace-*.whl
	@tar -tzf $(DIST)/clicktrace-pinia.tgz | wc -l | xargs echo $(DIST)/clicktrace-pinia.tgz files:
	@ls -l $(DIST)

test-example: packages chromium
	test -x $(EXAMPLE_PY) || python3 -m venv $(STAMP)/example-venv
	$(EXAMPLE_PY) -m pip install -q --upgrade pip
	$(EXAMPLE_PY) -m pip install -q --force-reinstall --no-deps $(DIST)/clicktrace-*.whl
	$(EXAMPLE_PY) -m pip install -q "$$(ls $(DIST)/clicktrace-*.whl)[sdk,socketio,otlp,testing]" \
	  --group $(EXAMPLE)/pyproject.toml:test
	cd $(EXAMPLE)/web && rm -rf node_modules/clicktrace-pinia && \
	  npm install --no-audit --no-fund --no-package-lock && npx vite build --mode e2e
	cd $(EXAMPLE) && $(abspath $(EXAMPLE_PY)) -m pytest -q -p no:cacheprovider

bench: setup web chromium
	$(PY) bench/middleware.py
	$(PY) bench/bus.py
	$(PY) bench/notify.py
	$(PY) bench/journal.py
	$(PY) bench/health.py
	$(PY) bench/click.py  # click → confirmed in Chromium against the embedded demo
	node bench/bundle.mjs

clean:
	rm -rf $(STAMP) $(VENV) .venv-otel-oldest .venv-otel-newest node_modules js_sdk/dist demo_app/web/dist data \
	  $(EXAMPLE)/web/node_modules $(EXAMPLE)/web/dist
