# otelsim — common tasks. `make demo` installs otelsim and runs the main job on its
# own embedded sink; `make test` runs every test (it installs the rotel collector
# into .venv first).

CARGO        ?= cargo
PYTHON       ?= python3
VENV         ?= .venv
ROTEL_VERSION = 0.0.1a15
PHOENIX_VERSION = 20.26.0
MLFLOW_VERSION = 3.17.2
# MLflow pins its own dependencies; a venv of its own keeps them apart from Phoenix's.
MLFLOW_VENV  ?= .venv-mlflow
KUBERNETES_VALIDATE_VERSION = 1.37.0
# DuckDB for `--output duckdb:FILE` (the `duckdb` feature): the prebuilt libduckdb of
# DuckDB's Node.js bindings package, release 1.5.6 (the `duckdb` crate's 1.10506.0),
# and Python's DuckDB of the same release, which the tests read the database with.
LIBDUCKDB_NPM_VERSION = 1.5.6-r.1
DUCKDB_PY_VERSION = 1.5.6
DUCKDB_LIB_DIR ?= $(CURDIR)/.duckdb/lib
# Cargo features of `make install` / `make test`: `make install FEATURES=duckdb`
# links DuckDB for `--output duckdb:FILE` (and fetches libduckdb first).
FEATURES     ?=
WITH_DUCKDB   = $(findstring duckdb,$(FEATURES))
# docker, or podman (`make jaeger-up CONTAINER_CMD=podman`).
CONTAINER_CMD ?= docker
# Where `make install` puts bin/otelsim; empty means cargo's default, ~/.cargo/bin.
PREFIX       ?=
OTELSIM      ?= $(or $(CARGO_TARGET_DIR),target)/release/otelsim

.PHONY: all build release install demo test test-duckdb lint rotel phoenix mlflow kubernetes-validate duckdb-py libduckdb verify-pipeline jaeger-up jaeger-down jaeger-ui clean image

all: build

build:
	$(CARGO) build

release:
	$(CARGO) build --release --locked

## install: otelsim on the PATH, built from the versions Cargo.lock pins (release
## profile; `make demo` runs this build).
install: $(if $(WITH_DUCKDB),libduckdb)
	@echo "== make install: building otelsim (release profile, the versions Cargo.lock pins) into $(or $(PREFIX),~/.cargo)/bin"
	@echo "   the first build compiles ~180 crates (8 min measured on a busy 2-core machine); later ones take seconds"
	$(if $(WITH_DUCKDB),DUCKDB_LIB_DIR="$(DUCKDB_LIB_DIR)") $(CARGO) install --locked --path . $(if $(FEATURES),--features $(FEATURES)) $(if $(PREFIX),--root "$(PREFIX)")
	@bin="$(or $(PREFIX),$${CARGO_INSTALL_ROOT:-$${CARGO_HOME:-$$HOME/.cargo}})/bin"; \
	case ":$$PATH:" in \
	  *":$$bin:"*) echo "== installed $$bin/otelsim: try \`otelsim list\`" ;; \
	  *) echo "== installed $$bin/otelsim, but $$bin is not on your PATH: export PATH=\"$$bin:\$$PATH\"" ;; \
	esac

## demo: install otelsim, start `otelsim sink`, run a mixed workload into it, print both summaries.
demo: install
	OTELSIM=$(OTELSIM) scripts/demo.sh

## test: unit, integration and property tests, including the rotel end-to-end test.
## Dev profile, not the release one `make install` built: measured cold on 2 busy
## cores, the release test build took 560 s against 354 s (it ran golden, property
## and cli tests in 10 s instead of 60 s: not enough to pay for it), and the dev
## profile keeps overflow checks on in tests.
test: rotel phoenix mlflow kubernetes-validate duckdb-py $(if $(WITH_DUCKDB),libduckdb)
	@echo "== make test: building the tests (dev profile) and running them all"
	OTELSIM_ROTEL="$$(ls $(VENV)/lib/python3*/site-packages/rotel/rotel-agent | head -n1)" \
	OTELSIM_REQUIRE_ROTEL=1 OTELSIM_PHOENIX="$(VENV)/bin/phoenix" OTELSIM_REQUIRE_PHOENIX=1 \
	OTELSIM_MLFLOW="$(MLFLOW_VENV)/bin" OTELSIM_REQUIRE_MLFLOW=1 \
	OTELSIM_KUBERNETES_VALIDATE="$(VENV)/bin/kubernetes-validate" OTELSIM_REQUIRE_KUBERNETES_VALIDATE=1 \
	OTELSIM_DUCKDB_PYTHON="$(VENV)/bin/python" OTELSIM_REQUIRE_DUCKDB=1 \
	$(if $(WITH_DUCKDB),DUCKDB_LIB_DIR="$(DUCKDB_LIB_DIR)") \
	$(CARGO) test --locked --all-targets $(if $(FEATURES),--features $(FEATURES))

## test-duckdb: builds otelsim with the `duckdb` feature and runs the session-store
## tests, which write `--output duckdb:FILE` and read it back with Python's DuckDB.
test-duckdb: libduckdb duckdb-py
	@echo "== make test-duckdb: the session-store tests with DuckDB linked in"
	OTELSIM_DUCKDB_PYTHON="$(VENV)/bin/python" OTELSIM_REQUIRE_DUCKDB=1 DUCKDB_LIB_DIR="$(DUCKDB_LIB_DIR)" \
	$(CARGO) test --locked --features duckdb --test it session_store

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

## phoenix: Arize Phoenix, an LLM-observability UI, for the end-to-end rendering test
## (about a minute to install; it runs inside a private network namespace in the test).
phoenix:
	@if [ ! -x $(VENV)/bin/phoenix ]; then \
		$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --quiet arize-phoenix==$(PHOENIX_VERSION); \
	fi

## mlflow: MLflow's tracking server, the second LLM-observability UI of the rendering
## tests (in a venv of its own: about 850 MB, a few minutes to install).
mlflow:
	@if [ ! -x $(MLFLOW_VENV)/bin/mlflow ]; then \
		$(PYTHON) -m venv $(MLFLOW_VENV) && $(MLFLOW_VENV)/bin/pip install --quiet mlflow==$(MLFLOW_VERSION); \
	fi

## image: the container image (Dockerfile: a static binary, non-root, the defaults
## compiled in), tagged $(IMAGE); needs Docker (or CONTAINER_CMD=podman) with a daemon.
IMAGE ?= otelsim:latest
image:
	@command -v $(CONTAINER_CMD) >/dev/null 2>&1 || { echo "make image: $(CONTAINER_CMD) not found; install Docker, or set CONTAINER_CMD=podman" >&2; exit 1; }
	$(CONTAINER_CMD) build -t $(IMAGE) .

## kubernetes-validate: checks the Kubernetes manifests against the schemas it bundles
## (no cluster, no network), for the deploy tests.
kubernetes-validate:
	@if [ ! -x $(VENV)/bin/kubernetes-validate ]; then \
		$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --quiet kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION); \
	fi

## duckdb-py: Python's DuckDB, for the session-store tests that open a `--output duckdb:FILE` database.
duckdb-py:
	@if ! $(VENV)/bin/python -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$(DUCKDB_PY_VERSION)')" >/dev/null 2>&1; then \
		$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --quiet duckdb==$(DUCKDB_PY_VERSION); \
	fi

## libduckdb: DuckDB's prebuilt shared library (from the npm package of its Node.js
## bindings, which carries it) into .duckdb/lib, for the `duckdb` feature. Compiling
## DuckDB's C++ from source instead took 93 min on a shared 2-core machine.
libduckdb:
	@if [ ! -f "$(DUCKDB_LIB_DIR)/libduckdb.so" ] \
	    || [ "$$(cat "$(DUCKDB_LIB_DIR)/VERSION" 2>/dev/null)" != "$(LIBDUCKDB_NPM_VERSION)" ]; then \
		case "$$(uname -m)" in \
		  x86_64) platform=linux-x64 ;; aarch64) platform=linux-arm64 ;; \
		  *) echo "no prebuilt libduckdb for $$(uname -m); see README, Session store" >&2; exit 1 ;; \
		esac; \
		tmp="$$(mktemp -d)"; \
		echo "== fetching libduckdb $(LIBDUCKDB_NPM_VERSION) ($$platform) into $(DUCKDB_LIB_DIR)"; \
		(cd "$$tmp" && npm pack --silent "@duckdb/node-bindings-$$platform@$(LIBDUCKDB_NPM_VERSION)" >/dev/null \
		  && tar xzf ./*.tgz package/libduckdb.so) \
		&& mkdir -p "$(DUCKDB_LIB_DIR)" && mv "$$tmp/package/libduckdb.so" "$(DUCKDB_LIB_DIR)/" \
		&& echo "$(LIBDUCKDB_NPM_VERSION)" > "$(DUCKDB_LIB_DIR)/VERSION"; \
		status=$$?; rm -rf "$$tmp"; exit $$status; \
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
	rm -rf $(VENV) .duckdb
