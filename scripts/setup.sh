#!/usr/bin/env bash
# Prepares a Debian (bookworm) machine, as root, for building and testing release-oci:
#   1. installs the Debian packages that are missing (Docker engine, debootstrap, OCI tools,
#      Erlang/Elixir for the examples, tini, git),
#   2. starts dockerd in the background when no engine answers,
#   3. builds the local base images (base-images/build-local.sh skips those that exist).
# Idempotent and non-interactive: on a machine that is already set up it only checks.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES=(docker.io debootstrap skopeo umoci docker-registry erlang-nox erlang-dev elixir
          tini git ca-certificates curl)
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

step "base images: base-images/build-local.sh"
start=$SECONDS
bash "$ROOT/base-images/build-local.sh"
step "base images: ready ($((SECONDS - start))s)"
