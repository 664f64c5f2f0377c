#!/usr/bin/env bash
# Rebuild benchmark (`make bench-rebuild`): release-oci against the Dockerfile `mix phx.gen.release
# --docker` generates (bench/Dockerfile.phoenix-style, `docker build`), from the same local builder
# and runtime images, on examples/hello_web and on a generated project (bench/gen_project.py:
# ~600 modules, 4 path deps, ~50 MB release) and on a second small app (bench/small_app.py: a
# runtime.exs, :crypto, its own TCP listener). Measured (method: docs/benchmarks.md):
#   cold / change / nochange   build times: empty caches; after a one-line change; no change
#   change with --warm-builder release-oci's one-line change in a warm builder (docs/warm-builder.md),
#                              started by an untimed build of another fresh edit before it
#   push bytes                 registry storage growth when the image after a one-line change is
#                              pushed over the one before it (release-oci build --push / docker push)
#   start / stop               docker run to the first HTTP 200; docker stop to exit
#   layering                   release directory → OCI layout (build --from-release) against
#                              tar | gzip -6 and umoci insert, on one core and on two
# Medians of RUNS_BIG (3) / RUNS_HELLO (5) runs; BENCH_QUICK=1: one run each; RELEASE_OCI_BIN: the
# binary to measure (default: cargo build --release). Results:
# BENCHMARKS.md and bench/results/rebuild.md (bench/rebuild_report.py writes them from the raw data).
# Needs: cargo, docker (base images from `make setup`), docker-registry, umoci, curl, python3, mix;
# pigz for the two-core floor (optional).
set -euo pipefail
shopt -s inherit_errexit
# One compound command: bash reads it whole before running it, so editing this file does not
# disturb a run in progress.
{

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${BENCH_QUICK:-0}" = 1 ]; then RUNS_BIG=${RUNS_BIG:-1} RUNS_HELLO=${RUNS_HELLO:-1}; fi
RUNS_BIG=${RUNS_BIG:-3}
RUNS_HELLO=${RUNS_HELLO:-5}
BUILDER=${BUILDER:-release-oci/builder:debian-bookworm}
RUNTIME=${RUNTIME:-release-oci/runtime:debian-bookworm}
# release-oci's base: the same runtime image as the Dockerfile's runner stage.
RO_BASE=${BENCH_RO_BASE:-$RUNTIME}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
OUT_COPY=${OUT_COPY:-$ROOT/bench/results/rebuild.md}
WORK=$(mktemp -d /tmp/release-oci-bench-rebuild.XXXXXX)
RAW=$WORK/raw.tsv
REG_PID=
CONTAINERS=()
cleanup() {
  stop_registry
  for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  docker image ls -q --filter "reference=release-oci-bench/*:rb-$$-*" | xargs -r docker image rm -f >/dev/null 2>&1 || true
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "^127.0.0.1:.*rb-$$" | xargs -r docker image rm -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[bench/rebuild] %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
require_tools_and_images docker docker-registry umoci curl python3 cargo taskset tar gzip

# The binary measured (RELEASE_OCI_BIN, else a fresh release build), copied.
bench_binary
pick_docker_builder
log "docker build: $DOCKER_BUILD_DESC"

# Emptying release-oci's caches: a fresh blob cache dir, and `cache prune` of the benchmark's
# project when the tool has it (other projects' build caches are left alone).
HAS_CACHE_CMD=0
CACHE_PRUNE=()
if "$BIN" cache prune --help >/dev/null 2>&1; then
  HAS_CACHE_CMD=1
  CACHE_PRUNE=("$BIN" -q cache prune)
fi
# ro_cold_state PROJECT_DIR
ro_cold_state() {
  rm -rf "$RELEASE_OCI_CACHE"
  mkdir -p "$RELEASE_OCI_CACHE"
  if [ "$HAS_CACHE_CMD" = 1 ]; then "${CACHE_PRUNE[@]}" --project "$1" >/dev/null; fi
}
export RELEASE_OCI_CACHE=$WORK/ro-cache

# Runs a command with its output in a file, shown only when it fails.
quietly() {
  if ! "$@" >"$WORK/quietly.log" 2>&1; then
    tail -n 40 "$WORK/quietly.log" >&2
    log "failed: $*"
    return 1
  fi
}
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }
# measure PROJECT CASE TOOL COMMAND...: records the seconds COMMAND takes (its failure is fatal).
measure() {
  local t
  t=$(timed "${@:4}")
  record "$1" "$2" "$3" "$t"
}

# The one-line change: the string GET / answers with (VARIANT 0 = the original line). The changed
# line holds this run's pid and time, so no build cache (BuildKit's outlives the run) has seen it.
NONCE=$$-$(date +%s)
set_variant() {
  local p=$1 v=$2
  case $p in
    hello_web) sed -i -E "s/hello( again [0-9-]+)? from hello_web/hello$([ "$v" = 0 ] || echo " again $NONCE-$v") from hello_web/" \
                 "$WORK/$p/lib/hello_web/router.ex" ;;
    bigapp) sed -i -E "s/\"hello from bigapp[^\"]*\"/\"hello from bigapp$([ "$v" = 0 ] || echo ", change $NONCE-$v")\"/" \
              "$WORK/$p/lib/bigapp/router.ex" ;;
    tally) sed -i -E "s/@greeting \"tally says hello[^\"]*\"/@greeting \"tally says hello$([ "$v" = 0 ] || echo " again $NONCE-$v")\"/" \
             "$WORK/$p/lib/tally/listener.ex" ;;
  esac
  local file=$WORK/$p/lib/$p/router.ex
  if [ "$p" = tally ]; then file=$WORK/$p/lib/tally/listener.ex; fi
  if [ "$v" != 0 ] && ! grep -q -- "$NONCE-$v" "$file"; then
    log "the one-line change did not apply to $p"
    return 1
  fi
}

ro_build() { "$BIN" -q build "$WORK/$1" --base "$RO_BASE" --pull never --load --tag "$2" "${@:3}"; }
TAG_RO() { echo "release-oci-bench/$1:rb-$$-ro"; }
TAG_DF() { echo "release-oci-bench/$1:rb-$$-df"; }

# cold, change, nochange for both tools, RUNS times; which tool goes first alternates.
bench_builds() {
  local p=$1 runs=$2 i order tool
  for i in $(seq "$runs"); do
    set_variant "$p" 0
    if [ $((i % 2)) = 1 ]; then order="ro df"; else order="df ro"; fi
    for tool in $order; do
      if [ "$tool" = ro ]; then
        ro_cold_state "$WORK/$p"
        measure "$p" cold ro ro_build "$p" "$(TAG_RO "$p")"
      else
        docker image rm -f "$(TAG_DF "$p")" >/dev/null 2>&1 || true
        measure "$p" cold df docker_build "$WORK/$p" "$p" "$(TAG_DF "$p")" --no-cache
      fi
    done
    # The warm builder: started by a build of one fresh edit (untimed), then the timed one-line
    # change in it (another fresh edit, so no result cache answers either). A second between
    # them, as between a developer's edits: a build that follows the last compile within its
    # second waits for the next one (docs/warm-builder.md, "Same-size edits within a second").
    set_variant "$p" "$((100 + i))"
    quietly ro_build "$p" "$(TAG_RO "$p")" --warm-builder
    sleep 1
    set_variant "$p" "$((200 + i))"
    measure "$p" change rw ro_build "$p" "$(TAG_RO "$p")" --warm-builder
    quietly "$BIN" -q builder stop --project "$WORK/$p"
    set_variant "$p" "$i"
    for tool in $order; do
      if [ "$tool" = ro ]; then measure "$p" change ro ro_build "$p" "$(TAG_RO "$p")"
      else measure "$p" change df docker_build "$WORK/$p" "$p" "$(TAG_DF "$p")"; fi
    done
    for tool in $order; do
      if [ "$tool" = ro ]; then measure "$p" nochange ro ro_build "$p" "$(TAG_RO "$p")"
      else measure "$p" nochange df docker_build "$WORK/$p" "$p" "$(TAG_DF "$p")"; fi
    done
    log "$p: build run $i/$runs done"
  done
}

# Bytes a push uploads after a one-line change: push the image, change one line, rebuild, push
# again; the registry's blob storage growth over the second push. A fresh registry per tool.
bench_push_bytes() {
  local p=$1 before after repo
  set_variant "$p" 0
  start_registry
  repo=$REG/bench/$p-ro
  quietly ro_build "$p" "$(TAG_RO "$p")" --push "$repo:1"
  before=$(registry_bytes)
  set_variant "$p" 100
  quietly ro_build "$p" "$(TAG_RO "$p")" --push "$repo:2"
  after=$(registry_bytes)
  record "$p" push_bytes ro $((after - before))
  record "$p" image_bytes ro "$before"
  stop_registry

  set_variant "$p" 0
  start_registry
  repo=$REG/bench/$p-df
  docker_build "$WORK/$p" "$p" "$repo:rb-$$-1"
  quietly docker push "$repo:rb-$$-1"
  before=$(registry_bytes)
  set_variant "$p" 100
  docker_build "$WORK/$p" "$p" "$repo:rb-$$-2"
  quietly docker push "$repo:rb-$$-2"
  after=$(registry_bytes)
  record "$p" push_bytes df $((after - before))
  record "$p" image_bytes df "$before"
  docker image rm -f "$repo:rb-$$-1" "$repo:rb-$$-2" >/dev/null 2>&1 || true
  stop_registry
  set_variant "$p" 0
}

# docker run → first HTTP 200 on GET /, then docker stop → exited; RUNS times per image.
bench_start_stop() {
  local p=$1 runs=$2 i tool img port cid t0 t1 t2 t3 ok
  for i in $(seq "$runs"); do
    for tool in ro df; do
      if [ "$tool" = ro ]; then img=$(TAG_RO "$p"); else img=$(TAG_DF "$p"); fi
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      t0=$(now_ns)
      cid=$(docker run -d -p "127.0.0.1:$port:4000" "$img")
      CONTAINERS+=("$cid")
      ok=0
      for _ in $(seq 3000); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/" || true)" = 200 ]; then ok=1; break; fi
        sleep 0.02
      done
      t1=$(now_ns)
      [ "$ok" = 1 ] || { docker logs "$cid" >&2; log "$img never answered 200"; return 1; }
      t2=$(now_ns)
      docker stop -t 30 "$cid" >/dev/null
      t3=$(now_ns)
      record "$p" start "$tool" "$(secs "$t0" "$t1")"
      record "$p" stop "$tool" "$(secs "$t2" "$t3")"
      docker rm -f "$cid" >/dev/null
    done
  done
}

# Release directory → image layers: release-oci build --from-release (fresh blob cache each run,
# scratch base, the host's static tini), tar | gzip -6, tar | pigz -6 -p 2, umoci insert.
bench_layering() {
  local p=$1 runs=$2 rel=$WORK/release-$1 i cid o
  cid=$(docker create "$(TAG_DF "$p")")
  CONTAINERS+=("$cid")
  docker cp -q "$cid:/app" "$rel" 2>/dev/null || docker cp "$cid:/app" "$rel" >/dev/null
  docker rm -f "$cid" >/dev/null
  record "$p" release_bytes - "$(du -sb "$rel" | cut -f1)"
  o=$WORK/layering
  ro_layers() {
    rm -rf "$o" "$WORK/lc" && mkdir -p "$o" "$WORK/lc"
    RELEASE_OCI_CACHE=$WORK/lc "$@" "$BIN" -q build --from-release "$rel" --tini /usr/bin/tini-static \
      --base scratch --output "oci:$o/layout"
  }
  umoci_layers() {
    rm -rf "$o" && mkdir -p "$o"
    "$@" sh -c 'umoci init --layout "$1" && umoci new --image "$1:b" && umoci insert --image "$1:b" "$2" /app' \
      sh "$o/layout" "$rel"
  }
  floor() { rm -rf "$o" && mkdir -p "$o" && "$@" sh -c 'tar -C "$1" -cf - . | '"$ZIP"' >"$2"' sh "$rel" "$o/floor.tgz"; }
  for i in $(seq "$runs"); do
    measure "$p" layer_1core ro ro_layers env RAYON_NUM_THREADS=1 taskset -c 0
    measure "$p" layer_2core ro ro_layers env
    ZIP="gzip -6"
    measure "$p" layer_1core gzip floor taskset -c 0
    if command -v pigz >/dev/null; then
      ZIP="pigz -6 -p 2"
      measure "$p" layer_2core pigz floor env
    fi
    measure "$p" layer_1core umoci umoci_layers taskset -c 0
    measure "$p" layer_2core umoci umoci_layers env
    log "$p: layering run $i/$runs done"
  done
}

log "projects: examples/hello_web, a generated one (bench/gen_project.py), a second small app (bench/small_app.py)"
cp -a "$ROOT/examples/hello_web" "$WORK/hello_web"
rm -rf "$WORK/hello_web/_build" "$WORK/hello_web/deps"
python3 "$ROOT/bench/gen_project.py" "$WORK/bigapp"
python3 "$ROOT/bench/small_app.py" "$WORK/tally"
phx_gen_release "$WORK/hello_web" hello_web
phx_gen_release "$WORK/bigapp" bigapp
phx_gen_release "$WORK/tally" tally
: >"$RAW"
record meta - modules "$(find "$WORK/bigapp" -name '*.ex' | wc -l)"
record meta - load_before "$(cut -d' ' -f1-3 /proc/loadavg)"
START=$(now_ns)

for p in ${BENCH_PROJECTS:-hello_web bigapp tally}; do
  if [ "$p" = bigapp ]; then runs=$RUNS_BIG; else runs=$RUNS_HELLO; fi
  log "$p: builds ($runs runs)"
  bench_builds "$p" "$runs"
  log "$p: push bytes after a one-line change"
  bench_push_bytes "$p"
  log "$p: start and stop"
  # The images of the last builds (one line apart from the original): both answer GET /.
  bench_start_stop "$p" "$runs"
done
log "bigapp: layering"
bench_layering bigapp "$RUNS_BIG"
record meta - load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
record meta - total_s "$(secs "$START" "$(now_ns)")"

python3 "$ROOT/bench/rebuild_report.py" "$RAW" \
  --runs-big "$RUNS_BIG" --runs-hello "$RUNS_HELLO" --docker-build "$DOCKER_BUILD_DESC" \
  --ro-base "$RO_BASE" --builder "$BUILDER" --runtime "$RUNTIME" --cache-cmd "$HAS_CACHE_CMD" >"$WORK/report.md"
mkdir -p "$(dirname "$OUT_COPY")"
# The other benchmarks' sections (bench/phoenix.sh's, ...) stay in BENCHMARKS.md, after this one.
python3 "$ROOT/bench/keep_sections.py" "$WORK/report.md" "$OUT"
cp "$WORK/report.md" "$OUT_COPY"
cp "$RAW" "${OUT_COPY%.md}.tsv"
log "wrote $OUT and $OUT_COPY"
cat "$OUT"
exit 0
}
