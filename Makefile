# otelsim — common tasks. `make demo` installs otelsim and runs the main job on its
# own embedded sink; `make test` runs every test (it installs the rotel collector
# into .venv first).

CARGO        ?= cargo
PYTHON       ?= python3
VENV         ?= .venv
ROTEL_VERSION = 0.0.1a15
# docker, or podman (`make jaeger-up CONTAINER_CMD=podman`).
CONTAINER_CMD ?= docker
# Where `make install` puts bin/otelsim; empty means cargo's default, ~/.cargo/bin.
PREFIX       ?=
OTELSIM      ?= $(or $(CARGO_TARGET_DIR),target)/release/otelsim

.PHONY: all build release install demo test lint rotel verify-pipeline jaeger-up jaeger-down jaeger-ui clean

all: build

build:
	$(CARGO) build

release:
	$(CARGO) build --release --locked

## install: otelsim on the PATH, built from the versions Cargo.lock pins (release
## profile, the same build `make demo` and `make test` reuse).
install:
	@echo "== make install: building otelsim (release, Cargo.lock's versions) into $(or $(PREFIX),~/.cargo)/bin"
	@echo "   the first build compiles ~300 crates: about 4 minutes on 2 cores; later ones take seconds"
	$(CARGO) install --locked --quiet --path . $(if $(PREFIX),--root "$(PREFIX)")
	@echo "== installed: $$(command -v otelsim || echo '$(or $(PREFIX),~/.cargo)/bin/otelsim (add its folder to PATH)')"

## demo: install otelsim, start `otelsim sink`, run a mixed workload into it, print both summaries.
demo: install
	OTELSIM=$(OTELSIM) scripts/demo.sh

## test: unit, integration and property tests, including the rotel end-to-end test.
## Built with the release profile: its dependencies are the ones `make install`
## already compiled, which saves rebuilding them all without optimisation.
test: rotel
	@echo "== make test: building the tests (release profile, shared with make install) and running them"
	OTELSIM_ROTEL="$$(ls $(VENV)/lib/python3*/site-packages/rotel/rotel-agent | head -n1)" \
	OTELSIM_REQUIRE_ROTEL=1 $(CARGO) test --locked --release --all-targets

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

## jaeger-up / jaeger-down / jaeger-ui: Jaeger all-in-one (UI :16686, OTLP :4317/:4318)
## for live viewing. The script first checks the container engine, its compose
## plugin and its daemon, and says what is missing.
jaeger-up:
	@CONTAINER_CMD=$(CONTAINER_CMD) scripts/jaeger.sh up

jaeger-down:
	@CONTAINER_CMD=$(CONTAINER_CMD) scripts/jaeger.sh down

jaeger-ui:
	@scripts/jaeger.sh ui

clean:
	$(CARGO) clean
	rm -rf $(VENV)
