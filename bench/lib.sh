# Helpers shared by the benchmark scripts (sourced; the caller has `set -euo pipefail`, sets WORK
# and defines log()).

# The docker client for `docker build`, and whether BuildKit is used (BUILDKIT=1/0). Debian's
# docker.io client (/usr/bin/docker, 20.10) has BuildKit built in: DOCKER_BUILDKIT=1 works without
# buildx. A newer client earlier in PATH wants the buildx plugin for BuildKit, which Debian bookworm
# does not package; then the legacy builder is what is there. BENCH_DOCKER_BUILDER=legacy forces it.
pick_docker_builder() {
  local probe=$WORK/buildkit-probe candidate
  mkdir -p "$probe"
  printf 'FROM %s\nLABEL org.release-oci.bench.probe=1\n' "$RUNTIME" >"$probe/Dockerfile"
  DOCKER_BUILD=docker
  BUILDKIT=0
  if [ "${BENCH_DOCKER_BUILDER:-buildkit}" != legacy ]; then
    for candidate in docker /usr/bin/docker; do
      command -v "$candidate" >/dev/null || continue
      if DOCKER_BUILDKIT=1 "$candidate" build -q --pull=false -t release-oci-bench/probe:1 "$probe" >/dev/null 2>&1; then
        DOCKER_BUILD=$candidate
        BUILDKIT=1
        break
      fi
    done
  fi
  docker image rm -f release-oci-bench/probe:1 >/dev/null 2>&1 || true
  DOCKER_BUILD_DESC="$("$DOCKER_BUILD" version --format 'client {{.Client.Version}}'), $([ "$BUILDKIT" = 1 ] && echo "BuildKit (DOCKER_BUILDKIT=1; no buildx)" || echo "legacy builder (DOCKER_BUILDKIT=0)")"
}

# docker build of the Phoenix-style Dockerfile: docker_build CONTEXT APP TAG [docker build flags]
docker_build() {
  local ctx=$1 app=$2 tag=$3
  shift 3
  DOCKER_BUILDKIT=$BUILDKIT "$DOCKER_BUILD" build -q --pull=false "$@" \
    --build-arg "BUILDER_IMAGE=$BUILDER" --build-arg "RUNNER_IMAGE=$RUNTIME" --build-arg "APP=$app" \
    -f "$ROOT/bench/Dockerfile.phoenix-style" -t "$tag" "$ctx" >/dev/null
}

# What `mix phx.gen.release --docker` adds to a project, so bench/Dockerfile.phoenix-style builds it:
# rel/overlays/bin/server and .dockerignore; plus the files the Dockerfile copies when the project
# has none (empty config/*.exs, an empty libs/). phx_gen_release DIR APP
phx_gen_release() {
  local dir=$1 app=$2 f
  mkdir -p "$dir/rel/overlays/bin" "$dir/config" "$dir/libs"
  cat >"$dir/rel/overlays/bin/server" <<EOF
#!/bin/sh
set -eu

cd -P -- "\$(dirname -- "\$0")"
PHX_SERVER=true exec ./$app start
EOF
  chmod 755 "$dir/rel/overlays/bin/server"
  for f in config prod runtime; do
    [ -e "$dir/config/$f.exs" ] || printf 'import Config\n' >"$dir/config/$f.exs"
  done
  printf '.dockerignore\n.git\n.gitignore\n_build/\ndeps/\n**/_build/\n**/deps/\ntest/\n' >"$dir/.dockerignore"
}

# Now, in nanoseconds.
now_ns() { date +%s%N; }
# Seconds (3 decimals) between two now_ns values.
secs() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", (e - s) / 1e9 }'; }
# Seconds a command takes; its output is discarded, its failure is fatal (with its stderr shown).
timed() {
  local start end err=$WORK/timed.err
  start=$(now_ns)
  if ! "$@" >/dev/null 2>"$err"; then
    tail -n 40 "$err" >&2
    log "failed: $*"
    return 1
  fi
  end=$(now_ns)
  secs "$start" "$end"
}

# A docker-registry on 127.0.0.1 with its storage in $WORK/registry (emptied): sets REG, REG_PID.
start_registry() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REG=127.0.0.1:$port
  rm -rf "$WORK/registry"
  mkdir -p "$WORK/registry"
  cat >"$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REG
YAML
  docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  log "docker-registry did not listen on $REG: $(cat "$WORK/registry.log")"
  return 1
}
stop_registry() {
  if [ -n "${REG_PID:-}" ]; then
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  fi
  REG_PID=
}
# Bytes of blobs the registry stores (layers, configs, manifests).
registry_bytes() {
  local d=$WORK/registry/docker/registry/v2/blobs
  if [ -d "$d" ]; then du -sb "$d" | cut -f1; else echo 0; fi
}

# The binary measured: RELEASE_OCI_BIN, else a fresh `cargo build --release`; copied to
# $WORK/bin, so a build of the tree during the run does not change it. Sets BIN.
bench_binary() {
  if [ -n "${RELEASE_OCI_BIN:-}" ]; then
    log "release-oci: $RELEASE_OCI_BIN"
  else
    log "building release-oci (release profile)"
    (cd "$ROOT" && cargo build --release --quiet)
    RELEASE_OCI_BIN=$ROOT/target/release/release-oci
  fi
  BIN=$WORK/bin/release-oci
  mkdir -p "$WORK/bin"
  cp "$RELEASE_OCI_BIN" "$BIN"
}

# Fails unless the tools ($@) are on PATH and the $BUILDER and $RUNTIME images are present.
require_tools_and_images() {
  local tool img
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { log "missing $tool (run make setup)"; exit 1; }
  done
  for img in "$BUILDER" "$RUNTIME"; do
    docker image inspect "$img" >/dev/null 2>&1 || { log "missing image $img (run make setup)"; exit 1; }
  done
}
