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
# Also tested and formatted with mix (not for check-examples.sh: umbrella has two releases, counter
# speaks lines over TCP, not HTTP; tests/integration/hot_upgrade.rs runs it).
MIX_EXAMPLES := $(EXAMPLES) umbrella counter
# Examples' mix builds go outside the tree, so they never end up in a build context.
MIX_BUILD_ROOT ?= $(CURDIR)/target/mix

.PHONY: help setup build demo test test-pure test-examples check-examples fmt fmt-check clippy clean bench bench-push bench-minimal-base bench-rebuild bench-phoenix

help:
	@echo "make setup           install Docker and tools (Debian, root), start dockerd, build the base images"
	@echo "make base-musl       build the musl builder/runtime images (Erlang/OTP for musl; slow, once)"
	@echo "make setup-arm64     qemu-user + binfmt_misc for aarch64, and the arm64 builder/runtime images (once)"
	@echo "make build           cargo build --release"
	@echo "make demo            setup + build, then build, run, ask and stop examples/hello_web as an image"
	@echo "make test            setup, then the examples' checks and the whole cargo test suite (CI runs this)"
	@echo "make test-pure       cargo test: just the tests that need no Docker, Elixir, registry or network"
	@echo "make test-arm64      setup-arm64, then just the aarch64 tests (multi_platform, cross_assemble)"
	@echo "make check-examples  build/run the examples in the base images without release-oci"
	@echo "make bench           benchmarks (bench/*.sh), results in bench/results/"
	@echo "make fmt | clippy | clean"

setup:
	bash scripts/setup.sh

# The x86_64-unknown-linux-musl builder and runtime images (Erlang/OTP compiled for musl; the
# slowest set-up step, once per machine: an unchanged recipe is skipped). See docs/musl.md.
.PHONY: base-musl
base-musl: setup
	bash base-images/musl/build.sh

# aarch64 under emulation: qemu-user 10 (bookworm-backports; 7.2 crashes the BEAM's JIT) with
# qemu-aarch64 registered in binfmt_misc (F flag), and the arm64 builder and runtime images from
# Debian's arm64 packages, JIT ERTS included (an unchanged recipe is skipped; to rebuild just
# these: FORCE=1 bash scripts/setup-emulation.sh, since FORCE=1 on make rebuilds every image).
# See docs/multi-platform.md.
.PHONY: setup-arm64
setup-arm64: setup
	bash scripts/setup-emulation.sh

build:
	$(CARGO) build --release

demo: setup build
	bash scripts/demo.sh

# The examples first (fast), cargo last: its summary closes the output. `--features integration`
# adds the tests that need Docker, Elixir, registries, skopeo/umoci and kubernetes-validate: they
# fail, never skip, when something is missing.
# The images the integration tests tag (release-oci-test/*) are removed afterwards, pass or fail.
test: setup base-musl setup-arm64 test-examples check-examples
	status=0; $(CARGO) test --all-targets --features integration -- --test-threads=$(TEST_THREADS) || status=$$?; \
	  bash scripts/clean-test-images.sh; exit $$status

.PHONY: clean-test-images
clean-test-images:
	bash scripts/clean-test-images.sh

# The pure tests only: no set-up, no Docker, Elixir or network (docs/architecture.md, "Tests").
test-pure:
	$(CARGO) test

# Just the aarch64 and multi-platform tests (they are part of `make test` too). See
# docs/multi-platform.md.
.PHONY: test-arm64
test-arm64: setup-arm64
	$(CARGO) test --features integration --test integration multi_platform -- --test-threads=1
	$(CARGO) test --features integration --test integration cross_assemble -- --test-threads=1

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
bench: bench-push bench-minimal-base bench-rebuild bench-phoenix bench-fresh-runner bench-aarch64

# The Phoenix app against its generated Dockerfile (bench/phoenix.sh; needs ../shared/hex).
bench-phoenix: setup
	bash bench/phoenix.sh

bench-push: setup
	bash bench/push.sh

# A fresh CI runner: --cache-repo against BuildKit's --cache-from with inline cache (bench/fresh-runner.sh).
.PHONY: bench-fresh-runner
bench-fresh-runner: setup
	bash bench/fresh-runner.sh

# aarch64 build times, compile-once and fully emulated, against x86_64 (bench/aarch64.sh).
.PHONY: bench-aarch64
bench-aarch64: setup-arm64
	bash bench/aarch64.sh

bench-minimal-base: setup
	bash bench/minimal-base.sh

# Against a Phoenix-style Dockerfile: builds, rebuilds, push bytes, start/stop, layering.
# Writes BENCHMARKS.md too; BENCH_QUICK=1 for one run of each (docs/benchmarks.md).
bench-rebuild: setup
	bash bench/rebuild.sh

# Both tiers: without the feature (the pure build) and with it (the integration tests).
clippy:
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features integration -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(MIX_BUILD_ROOT) $(foreach ex,$(EXAMPLES),examples/$(ex)/_build examples/$(ex)/deps) examples/path_deps/libs/*/_build
