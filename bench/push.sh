#!/usr/bin/env bash
# Push benchmark: release-oci push against `skopeo copy` of the same OCI layout to the same local
# registry (Debian's docker-registry on 127.0.0.1, started here with temp storage), for
#   cold    a push to an empty repository,
#   repush  the same image again (nothing to upload),
#   change  the image after a one-line app change (only changed layers + config + manifest).
# Each case runs RUNS times (fresh repositories for `cold`); the median is reported, with the
# ratio skopeo / release-oci (> 1: release-oci is faster). Results: bench/results/push.md.
# Needs: cargo, docker (builder/runtime images from `make setup`), skopeo, docker-registry.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
OUT=${OUT:-$ROOT/bench/results/push.md}
WORK=$(mktemp -d /tmp/release-oci-bench-push.XXXXXX)
REG_PID=
cleanup() {
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[bench/push] %s\n' "$*" >&2; }
for tool in skopeo docker-registry docker cargo python3 awk; do
  command -v "$tool" >/dev/null || { log "missing $tool (run make setup)"; exit 1; }
done

log "building release-oci (release profile)"
(cd "$ROOT" && cargo build --release --quiet)
BIN=$ROOT/target/release/release-oci
export RELEASE_OCI_CACHE=$WORK/cache

log "building examples/hello_web, and a copy with a one-line change, into OCI layouts"
cp -a "$ROOT/examples/hello_web" "$WORK/v1"
cp -a "$ROOT/examples/hello_web" "$WORK/v2"
rm -rf "$WORK"/v{1,2}/{_build,deps}
sed -i 's/hello from hello_web/hello again from hello_web/' "$WORK/v2/lib/hello_web/router.ex"
"$BIN" -q build "$WORK/v1" --output "oci:$WORK/oci-v1" >/dev/null
"$BIN" -q build "$WORK/v2" --output "oci:$WORK/oci-v2" >/dev/null

# One registry per run, shared by both tools: skopeo remembers where it has pushed blobs and
# mounts them from there, which would make its later "cold" pushes warm in a long-lived registry.
# start_registry, stop_registry and timed (a failed command is fatal, not timed): bench/lib.sh.
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
ro() { timed "$BIN" -q push "oci:$WORK/$1" "$REG/$2"; }
sk() { timed skopeo copy --dest-tls-verify=false "oci:$WORK/$1" "docker://$REG/$2"; }

declare -A T
for i in $(seq "$RUNS"); do
  start_registry
  # Alternate which tool goes first.
  if [ $((i % 2)) = 1 ]; then order="ro sk"; else order="sk ro"; fi
  for tool in $order; do
    T[$tool,cold]+="$($tool oci-v1 "bench/$tool:1") "
    T[$tool,repush]+="$($tool oci-v1 "bench/$tool:1") "
    T[$tool,change]+="$($tool oci-v2 "bench/$tool:2") "
  done
  stop_registry
  log "run $i/$RUNS done"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
size=$(du -sb "$WORK/oci-v1/blobs" | cut -f1)
layers=$(python3 -c 'import json,sys; d=sys.argv[1]; i=json.load(open(d+"/index.json")); h=i["manifests"][0]["digest"].split(":")[1]; print(len(json.load(open(d+"/blobs/sha256/"+h))["layers"]))' "$WORK/oci-v1")
{
  echo "# Push benchmark"
  echo
  echo "\`bench/push.sh\` ($(date -u +%Y-%m-%d), $(nproc) cores): examples/hello_web as an OCI layout"
  echo "($((size / 1024 / 1024)) MiB of blobs, $layers layers) pushed to a fresh local docker-registry"
  echo "on 127.0.0.1 per run, over plain HTTP; median of $RUNS runs, seconds;"
  echo "ratio = skopeo / release-oci (above 1: release-oci is faster)."
  echo
  echo "| case | release-oci push | skopeo copy | ratio |"
  echo "| --- | --- | --- | --- |"
  for c in cold repush change; do
    a=$(echo "${T[ro,$c]}" | median)
    b=$(echo "${T[sk,$c]}" | median)
    r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')
    echo "| $c | $a | $b | $r |"
  done
  echo
  echo "cold: an empty repository; repush: the same image again; change: the image after a one-line"
  echo "change in the app (only the changed layers, config and manifest go up). Raw runs (s):"
  echo
  for c in cold repush change; do
    echo "- $c: release-oci ${T[ro,$c]}/ skopeo ${T[sk,$c]}"
  done
} >"$OUT"
cat "$OUT"
