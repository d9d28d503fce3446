# otelsim — common tasks. `make demo` runs the main job on the embedded sink;
# `make test` runs every test (it installs the rotel collector into .venv first).

CARGO        ?= cargo
PYTHON       ?= python3
VENV         ?= .venv
ROTEL_VERSION = 0.0.1a15
CONTAINER_CMD ?= docker
OTELSIM      ?= $(or $(CARGO_TARGET_DIR),target)/release/otelsim

.PHONY: all build release demo test lint rotel verify-pipeline jaeger-up jaeger-down clean

all: build

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## demo: start `otelsim sink`, run a mixed workload into it, print both summaries.
demo: release
	OTELSIM=$(OTELSIM) scripts/demo.sh

## test: unit, integration and property tests, including the rotel end-to-end test.
test: rotel
	OTELSIM_ROTEL="$$(ls $(VENV)/lib/python3*/site-packages/rotel/rotel-agent | head -n1)" \
	OTELSIM_REQUIRE_ROTEL=1 $(CARGO) test --all-targets

## verify-pipeline: otelsim → rotel → otelsim sink at 10,000 spans/s for 60 s, then otelsim verify.
verify-pipeline: release rotel
	OTELSIM=$(OTELSIM) scripts/verify-pipeline.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

## rotel: a real third-party OTLP collector (Rust, shipped as a Python wheel) for tests.
rotel:
	@if ! ls $(VENV)/lib/python3*/site-packages/rotel/rotel-agent >/dev/null 2>&1; then \
		$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --quiet rotel==$(ROTEL_VERSION); \
	fi

## jaeger-up / jaeger-down: Jaeger all-in-one (UI :16686, OTLP :4317/:4318) for live viewing.
jaeger-up:
	$(CONTAINER_CMD) compose up -d jaeger
	@echo "Jaeger UI: http://localhost:16686  —  then: otelsim run --count 200 --interval 100"

jaeger-down:
	$(CONTAINER_CMD) compose down

clean:
	$(CARGO) clean
	rm -rf $(VENV)
