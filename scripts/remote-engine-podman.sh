#!/usr/bin/env bash
# Podman's Docker-compatible API on this machine, for building through it (docs/builder.md,
# "Podman") and for tests/integration/remote_builders.rs. As root.
#
#   scripts/remote-engine-podman.sh start SOCKET_DIR   serve SOCKET_DIR/podman.sock
#   scripts/remote-engine-podman.sh load SOCKET IMAGE... copy images from this machine's engine
#   scripts/remote-engine-podman.sh stop               stop it; nothing of it is left running
#
# Podman 5 is Debian trixie's (bookworm's 4.3 starts no container here: setrlimit fails). Its
# package needs trixie's libc, so it runs in a container of its own, made once from the trixie
# builder image (`make setup`) with trixie's podman and runc installed from this machine's Debian
# archive (the URI apt's sources name; no archive host is written here): the image
# release-oci/podman:trixie. The container has every capability this machine allows (not
# CAP_SYS_RESOURCE, which it does not have to give), its storage in /var/lib/release-oci-podman
# (kept between runs), and runs `podman system service --time=0` on a socket in SOCKET_DIR, which
# is this machine's: clients use DOCKER_HOST=unix://SOCKET_DIR/podman.sock. Podman runs its
# containers with runc (crun refuses the hybrid cgroup layout of this machine) and, by default,
# without a network (nested, netavark would need the host's firewall).
set -euo pipefail

IMAGE=release-oci/podman:trixie
BASE=release-oci/builder:debian-trixie
NAME=release-oci-podman
STORAGE=/var/lib/release-oci-podman
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
WAIT=${PODMAN_WAIT:-60}

step() { printf '[remote-engine-podman] %s\n' "$*" >&2; }
die() { printf '[remote-engine-podman] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/debian-archive.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian-archive.sh"

# release-oci/podman:trixie, built once.
image() {
  docker image inspect "$IMAGE" >/dev/null 2>&1 && return 0
  docker image inspect "$BASE" >/dev/null 2>&1 || die "$BASE is missing: make setup builds it"
  local uri
  uri=$(debian_archive_uri) || die "no Debian archive in /etc/apt/sources.list{,.d/}: cannot install podman"
  step "building $IMAGE (trixie's podman and runc, from $uri)"
  local log
  log=$(mktemp)
  docker build -q -t "$IMAGE" --build-arg "ARCHIVE=$uri" - >"$log" 2>&1 <<EOF || { tail -n 30 "$log" >&2; rm -f "$log"; die "building $IMAGE failed"; }
FROM $BASE
ARG ARCHIVE
USER 0:0
RUN rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && \\
    printf 'deb [signed-by=$KEYRING] %s trixie main\\n' "\$ARCHIVE" > /etc/apt/sources.list.d/trixie.list && \\
    apt-get update -q && \\
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman runc conmon netavark \\
      uidmap ca-certificates && \\
    rm -rf /var/lib/apt/lists/* && \\
    mkdir -p /etc/containers && \\
    printf '[containers]\\nnetns = "none"\\n[engine]\\nruntime = "runc"\\ncgroup_manager = "cgroupfs"\\n' \\
      > /etc/containers/containers.conf
ENV PODMAN_IGNORE_CGROUPSV1_WARNING=1
ENTRYPOINT []
EOF
  rm -f "$log"
}

stop() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
}

start() {
  local dir=$1 i
  [ "$(id -u)" = 0 ] || die "run as root"
  image
  stop
  mkdir -p "$dir" "$STORAGE"
  rm -f "$dir/podman.sock"
  step "starting podman system service (socket $dir/podman.sock, storage $STORAGE)"
  docker run -d --name "$NAME" --label org.release-oci.role=podman-service \
    --cap-add ALL --cap-drop SYS_RESOURCE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup \
    -v "$dir:/run/psock" -v "$STORAGE:/var/lib/containers" \
    "$IMAGE" podman system service --time=0 unix:///run/psock/podman.sock >/dev/null
  for i in $(seq 1 $((WAIT * 5))); do
    if DOCKER_HOST="unix://$dir/podman.sock" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      step "podman $(DOCKER_HOST="unix://$dir/podman.sock" docker version --format '{{.Server.Version}}') answers"
      return 0
    fi
    [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ] || break
    sleep 0.2
  done
  docker logs --tail 20 "$NAME" >&2 || true
  stop
  die "podman system service did not answer within ${WAIT}s"
}

# Copies each image from this machine's engine, unless podman has it with the same id.
load() {
  local sock=$1 image local_id remote_id
  shift
  for image in "$@"; do
    local_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) ||
      die "$image is not in this machine's engine: make setup builds it"
    remote_id=$(DOCKER_HOST="unix://$sock" docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    [ "$local_id" = "$remote_id" ] && continue
    step "loading $image"
    docker save "$image" | DOCKER_HOST="unix://$sock" docker load -q >/dev/null
  done
}

case "${1:-}" in
  start) [ $# = 2 ] || die "usage: $0 start SOCKET_DIR"; start "$2" ;;
  load) [ $# -ge 2 ] || die "usage: $0 load SOCKET IMAGE..."; shift; load "$@" ;;
  stop) stop ;;
  *) die "usage: $0 start SOCKET_DIR | load SOCKET IMAGE... | stop" ;;
esac
