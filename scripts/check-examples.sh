#!/usr/bin/env bash
# Checks the example projects against the local base images, without release-oci itself:
# builds each release in the builder image, runs it in the runtime image under tini as
# PID 1, asks it over HTTP, stops it with `docker stop` and checks the exit code and
# the application's stop line in `docker logs`.
#
#   scripts/check-examples.sh                 # every example
#   scripts/check-examples.sh hello_web       # some of them
#
# Needs a Docker engine and the images made by base-images/build-local.sh (scripts/setup.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILDER=${BUILDER:-release-oci/builder:debian-bookworm}
RUNTIME=${RUNTIME:-release-oci/runtime:debian-bookworm}

log() { printf '[check-examples] %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

work=$(mktemp -d)
cid=
cleanup() {
  if [ -n "$cid" ]; then docker rm -f "$cid" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

check() {
  local app=$1 rel=$work/$1 port body logs code
  [ -f "$ROOT/examples/$app/mix.exs" ] || fail "no example $app"
  mkdir -p "$rel"

  log "$app: mix release in $BUILDER"
  docker run --rm -v "$ROOT/examples/$app:/src:ro" -v "$rel:/out" "$BUILDER" sh -euc "
    cp -r /src /tmp/src && cd /tmp/src && rm -rf _build deps
    MIX_ENV=prod mix release --quiet >/tmp/release.log 2>&1 || { cat /tmp/release.log; exit 1; }
    cp -a _build/prod/rel/$app/. /out/ && cp /usr/bin/tini-static /out/tini" >&2 ||
    fail "$app: mix release failed"

  log "$app: run in $RUNTIME under tini"
  cid=$(docker run -d -e PORT=4100 -p 127.0.0.1::4100 -v "$rel:/app:ro" "$RUNTIME" \
    /app/tini -- "/app/bin/$app" start)
  port=$(docker port "$cid" 4100/tcp | head -n 1)
  port=${port##*:}
  body=
  for _ in $(seq 60); do
    body=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null) && break
    sleep 0.5
  done
  [ -n "$body" ] || { docker logs "$cid" >&2; fail "$app: no HTTP answer on port $port"; }
  log "$app: GET / -> $body"
  [ "$(curl -fsS "http://127.0.0.1:$port/health")" = ok ] || fail "$app: /health is not ok"

  docker stop "$cid" >/dev/null
  code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
  logs=$(docker logs "$cid" 2>&1)
  docker rm "$cid" >/dev/null
  cid=
  printf '%s\n' "$logs" | sed "s/^/[$app] /" >&2
  [ "$code" = 0 ] || fail "$app: exit code $code after docker stop"
  grep -q "$app: application stopped" <<<"$logs" || fail "$app: stop line missing from docker logs"
  log "$app: ok (exit code 0, stop line logged)"
}

command -v curl >/dev/null || fail "curl is missing"
docker image inspect "$BUILDER" "$RUNTIME" >/dev/null 2>&1 ||
  fail "missing $BUILDER or $RUNTIME: run scripts/setup.sh"

if [ $# -eq 0 ]; then set -- hello_web path_deps; fi
for app in "$@"; do check "$app"; done
