# Set-up and checks of the aries image service. Every target installs the
# Debian packages it needs through apt-get when they are missing.

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL = $(SUDO) apt-get update -qq && \
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

# Packages to run the test suite: the MariaDB server it starts, promtool
# (in Debian's prometheus package) to check the metrics format, and Python
# with venv for schemathesis, which is installed from PyPI.
TEST_PACKAGES := mariadb-server mariadb-client prometheus python3 python3-venv

.PHONY: run test build deps test-deps openapi clean-data fuzz

## Build and start the service on the embedded SQLite database.
run: deps
	$(CARGO) run --locked

## Build the service (debug).
build: deps
	$(CARGO) build --locked

## Check formatting and lints, run every test on SQLite and MariaDB, run
## schemathesis against the service, then each fuzz target briefly.
test: deps test-deps
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path tests/fuzz/Cargo.toml
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) clippy --locked --manifest-path tests/fuzz/Cargo.toml --target-dir target \
		-- -D warnings
	ARIES_TEST_REQUIRE_TOOLS=1 tests/with-mariadb.sh $(CARGO) test --locked
	tests/schemathesis.sh target/debug/aries-image
	$(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

## Regenerate the committed OpenAPI document from the code.
openapi: deps
	$(CARGO) run --locked --quiet -- openapi > openapi/openapi.json

# cargo-fuzz drives libFuzzer with unstable rustc flags; RUSTC_BOOTSTRAP
# lets the stable toolchain accept them. It is installed under target/.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TARGETS := image_id conditional authorization
FUZZ_SECONDS ?= 60
# Seconds per fuzz target in `make test`.
TEST_FUZZ_SECONDS ?= 10

## Build the fuzz targets and run each one for FUZZ_SECONDS seconds.
fuzz: deps
	@test -x target/tools/bin/cargo-fuzz || $(CARGO) install --locked \
		--version $(CARGO_FUZZ_VERSION) --root target/tools cargo-fuzz
	for target in $(FUZZ_TARGETS); do \
		PATH="$(CURDIR)/target/tools/bin:$$PATH" RUSTC_BOOTSTRAP=1 \
		$(CARGO) fuzz run --fuzz-dir tests/fuzz --target-dir target/fuzz \
			$$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## Delete the embedded database; the next start recreates it with samples.
clean-data:
	rm -rf data

# Build dependencies: a C compiler for the bundled SQLite, and the MySQL
# client library that diesel's mysql backend links, found by pkg-config.
deps:
	@missing=""; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	pkg-config --exists mysqlclient 2>/dev/null || missing="$$missing pkg-config libmariadb-dev libmariadb-dev-compat"; \
	if [ -n "$$missing" ]; then \
		echo "Installing build dependencies with apt-get:$$missing"; \
		$(APT_INSTALL) $$missing; \
	fi

# Installing mariadb-server or prometheus normally starts their system
# services; a temporary policy-rc.d (see invoke-rc.d(8)) blocks those
# starts, because the tests run their own servers on loopback.
test-deps:
	@if ! command -v promtool >/dev/null 2>&1 || \
		! python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || \
		{ ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; }; then \
		echo "Installing the test dependencies with apt-get: $(TEST_PACKAGES)"; \
		guard=""; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
			$(SUDO) chmod 755 /usr/sbin/policy-rc.d; guard=1; \
		fi; \
		status=0; $(APT_INSTALL) $(TEST_PACKAGES) || status=$$?; \
		if [ -n "$$guard" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; \
		exit $$status; \
	fi

# Programs of the benchmark, as COMMAND:PACKAGE pairs: the load generator,
# nginx and sysbench for the reference runs, the MariaDB server it starts,
# gnuplot for the plot and curl for single requests.
BENCH_TOOLS := wrk:wrk nginx:nginx-light sysbench:sysbench gnuplot:gnuplot-nox \
	curl:curl mariadbd:mariadb-server mariadb:mariadb-client

.PHONY: bench bench-deps profile

## Build in release mode, run the benchmark and write docs/benchmarks.md.
bench: deps bench-deps
	$(CARGO) build --release --locked
	tests/bench/run.sh

## Count the instructions of the cache-hit and the cache-disabled request
## paths with valgrind's callgrind; reports go to target/profile.
profile: deps bench-deps
	@command -v valgrind >/dev/null 2>&1 || $(APT_INSTALL) valgrind
	$(CARGO) build --profile profiling --locked
	tests/bench/profile.sh hit
	tests/with-mariadb.sh tests/bench/profile.sh nocache

# Installing nginx-light or mariadb-server normally starts their system
# services, and nginx's default site listens on port 80 of every interface.
# When the machine has no policy-rc.d, a temporary one (see invoke-rc.d(8))
# blocks those starts. The benchmark runs its own servers on loopback.
bench-deps:
	@missing=""; \
	for pair in $(BENCH_TOOLS); do \
		tool=$${pair%%:*}; package=$${pair#*:}; \
		if ! command -v $$tool >/dev/null 2>&1 && [ ! -x /usr/sbin/$$tool ]; then \
			missing="$$missing $$package"; \
		fi; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing the benchmark dependencies with apt-get:$$missing"; \
		guard=""; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
			$(SUDO) chmod 755 /usr/sbin/policy-rc.d; guard=1; \
		fi; \
		status=0; $(APT_INSTALL) $$missing || status=$$?; \
		if [ -n "$$guard" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; \
		exit $$status; \
	fi
