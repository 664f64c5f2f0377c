# release-oci: the one entry point for setting up, building, testing and the demo.
# `make test` is what CI runs (.ci/run); `make demo` shows the tool on examples/hello_web.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# setup must finish before the rest starts, even under make -j.
.NOTPARALLEL:

CARGO ?= cargo
TEST_THREADS ?= 2
EXAMPLES := hello_web path_deps zlib_nif
# Also tested and formatted with mix (not single-release apps for check-examples.sh).
MIX_EXAMPLES := $(EXAMPLES) umbrella
# Examples' mix builds go outside the tree, so they never end up in a build context.
MIX_BUILD_ROOT ?= $(CURDIR)/target/mix

.PHONY: help setup build demo test test-examples check-examples fmt fmt-check clippy clean bench bench-push bench-minimal-base

help:
	@echo "make setup           install Docker and tools (Debian, root), start dockerd, build the base images"
	@echo "make build           cargo build --release"
	@echo "make demo            setup + build, then build, run, ask and stop examples/hello_web as an image"
	@echo "make test            setup, then the examples' checks and the whole cargo test suite (CI runs this)"
	@echo "make check-examples  build/run the examples in the base images without release-oci"
	@echo "make bench           benchmarks (bench/*.sh), results in bench/results/"
	@echo "make fmt | clippy | clean"

setup:
	bash scripts/setup.sh

build:
	$(CARGO) build --release

demo: setup build
	bash scripts/demo.sh

# The examples first (fast), cargo last: its summary closes the output.
test: setup test-examples check-examples
	$(CARGO) test --all-targets -- --test-threads=$(TEST_THREADS)

test-examples:
	@for ex in $(MIX_EXAMPLES); do \
	  echo "==> mix test (examples/$$ex)"; \
	  (cd examples/$$ex && MIX_BUILD_ROOT=$(MIX_BUILD_ROOT)/$$ex mix test); \
	done

check-examples:
	bash scripts/check-examples.sh $(EXAMPLES)

fmt:
	$(CARGO) fmt --all
	@for ex in $(MIX_EXAMPLES); do (cd examples/$$ex && MIX_BUILD_ROOT=$(MIX_BUILD_ROOT)/$$ex mix format); done

fmt-check:
	$(CARGO) fmt --all -- --check
	@for ex in $(MIX_EXAMPLES); do (cd examples/$$ex && MIX_BUILD_ROOT=$(MIX_BUILD_ROOT)/$$ex mix format --check-formatted); done

# Benchmarks: each part writes bench/results/PART.md; `bench` runs them all.
bench: bench-push bench-minimal-base

bench-push: setup
	bash bench/push.sh

bench-minimal-base: setup
	bash bench/minimal-base.sh

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(MIX_BUILD_ROOT) $(foreach ex,$(EXAMPLES),examples/$(ex)/_build examples/$(ex)/deps) examples/path_deps/libs/*/_build
