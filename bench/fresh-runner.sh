#!/usr/bin/env bash
# Fresh-runner benchmark (`make bench-fresh-runner`): a CI runner that has the builder and runtime
# images and nothing else (no build cache, no blob store, no cache volume), after another runner
# built and pushed the previous commit. release-oci with `--cache-repo` against the Phoenix-style
# Dockerfile (bench/Dockerfile.phoenix-style) built with BuildKit, `BUILDKIT_INLINE_CACHE=1` and
# `--cache-from` the previous image, both pushing to the same local docker-registry. Before each
# measured build, every runner-local cache is emptied: BuildKit's cache (`docker builder prune
# -af`) and the pushed images' local copies for the Dockerfile; a new RELEASE_OCI_CACHE and the
# project's cache volume (`cache prune --project`) for release-oci.
#   change     a one-line change over the pushed previous build
#   nochange   the same sources as the last pushed build
# Each: build + push seconds, bytes the registry served (GET responses, from its access log) and
# bytes it stored (upload growth). Medians of RUNS (3) runs; BENCH_QUICK=1: one. Writes
# bench/results/fresh-runner.md and its section of BENCHMARKS.md (between the fresh-runner markers).
set -euo pipefail
shopt -s inherit_errexit
# One compound command: editing this file does not disturb a run in progress.
{

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${BENCH_QUICK:-0}" = 1 ]; then RUNS=${RUNS:-1}; fi
RUNS=${RUNS:-3}
BUILDER=${BUILDER:-release-oci/builder:debian-bookworm}
RUNTIME=${RUNTIME:-release-oci/runtime:debian-bookworm}
OUT_MD=$ROOT/bench/results/fresh-runner.md
WORK=$(mktemp -d /tmp/release-oci-bench-fresh.XXXXXX)
RAW=$WORK/raw.tsv
REG_PID=
P=hello_web
cleanup() {
  stop_registry
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "^127.0.0.1:.*/bench/" | xargs -r docker image rm -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[bench/fresh-runner] %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
require_tools_and_images docker docker-registry curl python3 cargo
bench_binary
pick_docker_builder
[ "$BUILDKIT" = 1 ] || { log "BuildKit is needed for --cache-from with inline cache: $DOCKER_BUILD_DESC"; exit 1; }
log "docker build: $DOCKER_BUILD_DESC"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# The project: examples/hello_web as `mix phx.gen.release --docker` leaves it.
cp -r "$ROOT/examples/$P" "$WORK/$P"
rm -rf "$WORK/$P/_build" "$WORK/$P/deps"
phx_gen_release "$WORK/$P" "$P"
NONCE=$$-$(date +%s)
set_variant() {
  sed -i -E "s/hello( again [0-9a-z-]+)? from hello_web/hello again $NONCE-$1 from hello_web/" "$WORK/$P/lib/hello_web/router.ex"
  grep -q -- "$NONCE-$1" "$WORK/$P/lib/hello_web/router.ex" || { log "the one-line change did not apply"; return 1; }
}

# The registry, with its access log (combined format: the response's bytes are field 10).
start_logged_registry() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REG=127.0.0.1:$port
  mkdir -p "$WORK/registry"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$WORK/registry" "$REG" >"$WORK/registry.yml"
  docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  log "docker-registry did not listen on $REG: $(cat "$WORK/registry.log")"
  return 1
}
# Bytes of GET responses the registry logged from line $1 on.
served_since() {
  tail -n +"$1" "$WORK/registry.log" | awk '$6 == "\"GET" && $10 ~ /^[0-9]+$/ { s += $10 } END { print s + 0 }'
}
log_lines() { wc -l <"$WORK/registry.log"; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RAW"; }

# run_measured CASE TOOL COMMAND...: seconds, bytes served, bytes stored.
run_measured() {
  local case=$1 tool=$2 lines before t
  shift 2
  lines=$(($(log_lines) + 1))
  before=$(registry_bytes)
  t=$(timed "$@")
  record "$case" "$tool" "$t" "$(served_since "$lines")" "$(($(registry_bytes) - before))"
}

# release-oci on a runner: RUNNER names its blob store; the project's cache volume is pruned first.
ro_fresh() {
  export RELEASE_OCI_CACHE=$WORK/runner-$1
  rm -rf "$RELEASE_OCI_CACHE"
  mkdir -p "$RELEASE_OCI_CACHE"
  "$BIN" -q cache prune --project "$WORK/$P" >/dev/null
}
ro_build() {
  "$BIN" -q build "$WORK/$P" --base "$RUNTIME" --pull never --cache-repo "$REG/bench/ro-cache" --push "$REG/bench/ro:$1"
}
# The Dockerfile on a runner: no BuildKit cache, no local copy of the pushed images.
df_fresh() {
  docker builder prune -af >/dev/null
  # None yet on the first run: grep finds nothing, which is not a failure here.
  docker image ls --format '{{.Repository}}:{{.Tag}}' | { grep "^$REG/bench/df:" || true; } | xargs -r docker image rm -f >/dev/null
}
df_build() {
  local tag=$REG/bench/df:$1 from=()
  [ -z "${2:-}" ] || from=(--cache-from "$REG/bench/df:$2")
  docker_build "$WORK/$P" "$P" "$tag" --build-arg BUILDKIT_INLINE_CACHE=1 "${from[@]}" &&
    docker push "$tag" >/dev/null
}

start_logged_registry
START=$(now_ns)
for i in $(seq "$RUNS"); do
  # Runner A pushes the previous commit (and its caches).
  set_variant "a$i"
  ro_fresh a
  timed ro_build "a$i" >/dev/null
  df_fresh
  timed df_build "a$i" >/dev/null
  # Another runner: a one-line change.
  set_variant "b$i"
  ro_fresh b
  run_measured change ro ro_build "b$i"
  df_fresh
  run_measured change df df_build "b$i" "a$i"
  # Another runner: no change.
  ro_fresh c
  run_measured nochange ro ro_build "c$i"
  df_fresh
  run_measured nochange df df_build "c$i" "b$i"
  log "run $i/$RUNS done"
done
# Both last images serve the last change.
for tag in "$REG/bench/ro:c$RUNS" "$REG/bench/df:c$RUNS"; do
  c=$(docker run -d -p "127.0.0.1::4000" "$tag")
  port=$(docker port "$c" 4000/tcp | head -1 | sed 's/.*://')
  ok=0
  for _ in $(seq 120); do
    if curl -fsS "http://127.0.0.1:$port/" 2>/dev/null | grep -q "$NONCE-b$RUNS"; then ok=1; break; fi
    sleep 0.5
  done
  docker rm -f "$c" >/dev/null
  [ "$ok" = 1 ] || { log "$tag does not serve the change"; exit 1; }
done

LOAD="load average (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$(dirname "$OUT_MD")"
python3 "$ROOT/bench/fresh_runner_report.py" "$RAW" "$OUT_MD" "$ROOT/BENCHMARKS.md" "$RUNS" "$DOCKER_BUILD_DESC" \
  "$(git -C "$ROOT" rev-parse --short HEAD)" "$LOAD" "$(secs "$START" "$(now_ns)")"
exit 0
}
