#!/usr/bin/env bash
# The demo behind `make demo`: builds examples/hello_web into an image with release-oci, loads
# it into Docker, runs it, asks it over HTTP, stops it and shows what it logged.
# Expects scripts/setup.sh and `cargo build --release` to have run (make demo does both).
#
#   DEMO_PORT=4000   host port to publish the app on
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${RELEASE_OCI:-$ROOT/target/release/release-oci}
IMAGE=hello_web:demo
NAME=hello_web_demo
PORT=${DEMO_PORT:-4000}

step() { printf '\n==> %s\n' "$*" >&2; }

[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release" >&2; exit 1; }

step "release-oci build examples/hello_web --load --tag $IMAGE"
"$BIN" build "$ROOT/examples/hello_web" --load --tag "$IMAGE"

docker rm -f "$NAME" >/dev/null 2>&1 || true
step "docker run --rm -d -p $PORT:4000 --name $NAME $IMAGE"
docker run --rm -d -p "$PORT:4000" --name "$NAME" "$IMAGE" >/dev/null
# --rm removes the container when it stops: follow its logs from now on to keep them.
logs=$(mktemp)
code=$(mktemp)
docker logs -f "$NAME" >"$logs" 2>&1 &
follower=$!
docker wait "$NAME" >"$code" 2>/dev/null &
waiter=$!
trap 'docker rm -f "$NAME" >/dev/null 2>&1 || true; rm -f "$logs" "$code"' EXIT

step "curl http://127.0.0.1:$PORT/"
answer=
for _ in $(seq 60); do
  answer=$(curl -fsS "http://127.0.0.1:$PORT/" 2>/dev/null) && break
  sleep 0.5
done
if [ -z "$answer" ]; then
  cat "$logs" >&2
  echo "hello_web did not answer on port $PORT" >&2
  exit 1
fi
printf '%s\n' "$answer"

step "docker stop $NAME"
docker stop "$NAME" >/dev/null
wait "$follower" "$waiter" || true
echo "exit code: $(cat "$code")"

step "docker logs $NAME"
cat "$logs"
