#!/usr/bin/env bash
# Image size benchmark: examples/hello_web on release-oci's minimal base against the same release
# on the Debian runtime image, built the way Phoenix's generated Dockerfile does it (a build stage
# FROM the builder image running `mix release`, a runner stage FROM the runtime image that copies
# the release in), with `docker build`, in the same run.
#
# Sizes, for each image:
#   uncompressed  the sum of its layers as tars (what `docker image inspect` calls Size)
#   compressed    the sum of its gzip layer blobs after `skopeo copy docker-daemon:... oci:...`
#                 (the same compressor for both images; release-oci's own layout is listed too)
# Goal: the minimal-base image is at most a third of the Dockerfile image. Results:
# bench/results/minimal-base.md. Needs: cargo, docker (the builder/runtime images from
# `make setup`), skopeo, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/results/minimal-base.md}
BUILDER=${BUILDER:-release-oci/builder:debian-bookworm}
RUNTIME=${RUNTIME:-release-oci/runtime:debian-bookworm}
WORK=$(mktemp -d /tmp/release-oci-bench-minimal.XXXXXX)
TAG_MINIMAL=release-oci-bench/hello_web:minimal-$$
TAG_DOCKERFILE=release-oci-bench/hello_web:dockerfile-$$
cleanup() {
  docker image rm -f "$TAG_MINIMAL" "$TAG_DOCKERFILE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[bench/minimal-base] %s\n' "$*" >&2; }
for tool in docker skopeo cargo python3; do
  command -v "$tool" >/dev/null || { log "missing $tool (run make setup)"; exit 1; }
done

log "building release-oci (release profile)"
(cd "$ROOT" && cargo build --release --quiet)
BIN=$ROOT/target/release/release-oci
export RELEASE_OCI_CACHE=$WORK/cache

cp -a "$ROOT/examples/hello_web" "$WORK/app"
rm -rf "$WORK/app/_build" "$WORK/app/deps"

log "release-oci build --base minimal"
"$BIN" -q build "$WORK/app" --base minimal --load --tag "$TAG_MINIMAL" --output "oci:$WORK/minimal-layout" >/dev/null

log "docker build of bench/Dockerfile.phoenix-style (FROM $BUILDER AS builder ... FROM $RUNTIME)"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
pick_docker_builder
cp -a "$WORK/app" "$WORK/ctx"
phx_gen_release "$WORK/ctx" hello_web
docker_build "$WORK/ctx" hello_web "$TAG_DOCKERFILE"

# Both images answer the same way before they are measured.
# (release-oci's image has the release as its entrypoint, the Dockerfile's only a CMD.)
EVAL='Application.load(:hello_web); IO.puts(HelloWeb.Router.version())'
for run in "$TAG_MINIMAL eval" "$TAG_DOCKERFILE /app/bin/hello_web eval"; do
  # shellcheck disable=SC2086
  out=$(docker run --rm --read-only --tmpfs /tmp $run "$EVAL")
  [ "$out" = 0.1.0 ] || { log "${run%% *} does not run: $out"; exit 1; }
done

uncompressed() { docker image inspect -f '{{.Size}}' "$1"; }
# Sum of the layer blobs of the only image in an OCI layout.
layout_layers() {
  python3 - "$1" <<'PY'
import json, sys
d = sys.argv[1]
idx = json.load(open(f"{d}/index.json"))
m = json.load(open(f"{d}/blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
print(sum(l["size"] for l in m["layers"]), len(m["layers"]))
PY
}
compressed() {
  skopeo copy -q "docker-daemon:$1" "oci:$WORK/skopeo-$2" >/dev/null
  layout_layers "$WORK/skopeo-$2"
}

log "measuring"
u_min=$(uncompressed "$TAG_MINIMAL")
u_df=$(uncompressed "$TAG_DOCKERFILE")
read -r c_min n_min < <(compressed "$TAG_MINIMAL" minimal)
read -r c_df n_df < <(compressed "$TAG_DOCKERFILE" dockerfile)
read -r c_own _ < <(layout_layers "$WORK/minimal-layout")
u_runtime=$(uncompressed "$RUNTIME")
base_layer=$(python3 - "$WORK/minimal-layout" <<'PY'
import json, sys
d = sys.argv[1]
idx = json.load(open(f"{d}/index.json"))
m = json.load(open(f"{d}/blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
print(m["layers"][0]["size"])
PY
)

mib() { python3 -c "print(f'{$1 / 1048576:.1f} MiB')"; }
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }
verdict() { python3 -c "print('met' if $1 * 3 <= $2 else 'NOT met')"; }

mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<EOF
# Minimal base: image size

\`bench/minimal-base.sh\` (\`make bench-minimal-base\`), $(date -u +%Y-%m-%d), $(uname -m), Docker $(docker version --format '{{.Server.Version}}').
examples/hello_web (Elixir $(docker run --rm --entrypoint elixir "$BUILDER" --short-version 2>/dev/null | tail -n 1), ERTS from $BUILDER),
built in the same run as

- **minimal**: \`release-oci build --base minimal\` (the default): one base layer with the release's
  library closure, busybox, CA certificates, C.UTF-8 locale, terminfo; then tini, ERTS, OTP, app, release.
- **Dockerfile**: bench/Dockerfile.phoenix-style (Phoenix's two-stage Dockerfile) built with \`docker build\`
  ($DOCKER_BUILD_DESC): \`FROM $BUILDER AS builder\` runs \`mix release\`, \`FROM $RUNTIME\` copies the release in.

| image | layers | uncompressed | compressed (gzip, skopeo) |
| --- | ---: | ---: | ---: |
| minimal | $n_min | $(mib "$u_min") ($u_min B) | $(mib "$c_min") ($c_min B) |
| Dockerfile on $RUNTIME | $n_df | $(mib "$u_df") ($u_df B) | $(mib "$c_df") ($c_df B) |
| **minimal / Dockerfile** | | **$(ratio "$u_min" "$u_df")** | **$(ratio "$c_min" "$c_df")** |

Goal (at most a third): uncompressed $(verdict "$u_min" "$u_df"), compressed $(verdict "$c_min" "$c_df").

For reference: the minimal base layer alone is $(mib "$base_layer") compressed; $RUNTIME alone is
$(mib "$u_runtime") uncompressed. release-oci's own OCI layout of the minimal image holds
$(mib "$c_own") of layers (its pinned gzip level 6; skopeo's numbers above recompress both images the same way).
EOF
log "wrote $OUT"
cat "$OUT"
