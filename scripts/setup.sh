#!/usr/bin/env bash
# Prepares a Debian (bookworm) machine, as root, for building and testing release-oci:
#   1. installs the Debian packages that are missing (Docker engine, debootstrap, OCI tools,
#      Erlang/Elixir for the examples, tini, git, PostgreSQL for the Phoenix migration tests),
#   2. starts dockerd in the background when no engine answers,
#   3. builds the local base images (base-images/build-local.sh skips those that exist),
#   4. installs kubernetes-validate (PyPI) for the Kubernetes manifest tests.
# Idempotent and non-interactive: on a machine that is already set up it only checks.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES=(docker.io debootstrap skopeo umoci docker-registry erlang-nox erlang-dev elixir
          tini git ca-certificates curl apache2-utils openssl python3-venv busybox-static zlib1g-dev pigz
          openssh-server openssh-client postgresql)
# qemu-user (10 or newer, from bookworm-backports) is scripts/setup-emulation.sh's (make setup-arm64).
DOCKERD_LOG=/var/log/release-oci-dockerd.log
DOCKERD_WAIT=${DOCKERD_WAIT:-60}

step() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Runs a command quietly; shows its output only when it fails.
quiet() {
  local out rc=0
  out=$(mktemp)
  "$@" >"$out" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    tail -n 40 "$out" >&2
    rm -f "$out"
    die "failed ($rc): $*"
  fi
  rm -f "$out"
}

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

[ "$(id -u)" = 0 ] || die "run as root (installs packages, starts dockerd, runs debootstrap)"
command -v dpkg-query >/dev/null || die "this script needs a Debian-based system (dpkg, apt-get)"

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -eq 0 ]; then
  step "packages: all present"
else
  step "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update -q
  quiet apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if engine_answers; then
  step "docker: engine answers ($(docker version --format '{{.Server.Version}}'))"
else
  command -v dockerd >/dev/null || die "dockerd is missing (package docker.io)"
  step "docker: starting dockerd (log: $DOCKERD_LOG)"
  # A stale pid file from an engine that died stops a new one from starting.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  # setsid: its own session, so a Ctrl-C in the calling terminal or make does not stop it.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  dockerd_pid=$!
  for ((i = 0; i < DOCKERD_WAIT; i++)); do
    engine_answers && break
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
      tail -n 30 "$DOCKERD_LOG" >&2
      die "dockerd exited (full log: $DOCKERD_LOG)"
    fi
    sleep 1
  done
  if ! engine_answers; then
    tail -n 30 "$DOCKERD_LOG" >&2
    die "dockerd did not answer within ${DOCKERD_WAIT}s (full log: $DOCKERD_LOG)"
  fi
  step "docker: engine answers after ${i}s (pid $dockerd_pid)"
fi

# kubernetes-validate (PyPI; ships the official Kubernetes JSON schemas) checks the manifests of
# `release-oci k8s` offline, strictly. In its own venv on Debian's python3, linked into PATH.
K8S_VALIDATE_VERSION=1.37.0
K8S_VALIDATE_VENV=/opt/release-oci/kubernetes-validate
if [ "$(kubernetes-validate --version 2>/dev/null)" = "$K8S_VALIDATE_VERSION" ]; then
  step "kubernetes-validate: $K8S_VALIDATE_VERSION present"
else
  step "kubernetes-validate: installing $K8S_VALIDATE_VERSION into $K8S_VALIDATE_VENV"
  rm -rf "$K8S_VALIDATE_VENV"
  quiet /usr/bin/python3 -m venv "$K8S_VALIDATE_VENV"
  quiet "$K8S_VALIDATE_VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$K8S_VALIDATE_VERSION"
  ln -sf "$K8S_VALIDATE_VENV/bin/kubernetes-validate" /usr/local/bin/kubernetes-validate
fi

# rebar3 for rebar3 projects built with --builder host: only Debian's escript (the package's
# dependencies pull in wx and GTK), as base-images/build-local.sh puts it in the builder image.
if command -v rebar3 >/dev/null 2>&1; then
  step "rebar3: present ($(command -v rebar3))"
else
  step "rebar3: installing Debian's escript into /usr/local/bin"
  rebar3_tmp=$(mktemp -d)
  quiet apt-get update -q
  (cd "$rebar3_tmp" && quiet apt-get download -q rebar3 && quiet dpkg-deb -x rebar3_*.deb pkg)
  install -m 0755 "$rebar3_tmp/pkg/usr/bin/rebar3" /usr/local/bin/rebar3
  rm -rf "$rebar3_tmp"
fi

step "base images: base-images/build-local.sh"
start=$SECONDS
bash "$ROOT/base-images/build-local.sh"
step "base images: ready ($((SECONDS - start))s)"

# A second builder with a newer toolchain (Debian trixie: Elixir 1.18, Erlang/OTP 27) and its
# runtime, for projects that pin one (docs/toolchain.md).
step "base images: SUITE=trixie base-images/build-local.sh"
start=$SECONDS
SUITE=trixie bash "$ROOT/base-images/build-local.sh"
step "base images (trixie): ready ($((SECONDS - start))s)"

step "supply chain: scripts/setup-supply-chain.sh (cosign, pyspdxtools, sbomcheck)"
bash "$ROOT/scripts/setup-supply-chain.sh"
