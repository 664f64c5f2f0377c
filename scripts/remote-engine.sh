#!/usr/bin/env bash
# A second Docker engine on this machine, for trying builders "elsewhere" (docs/builder.md,
# "Builders on other machines") and for tests/integration/remote_builders.rs. As root.
#
#   scripts/remote-engine.sh start CERT_DIR TLS_PORT   start it (stopping a stale one first)
#   scripts/remote-engine.sh load IMAGE...             copy images from this machine's engine
#   scripts/remote-engine.sh stop                      stop it; none of its processes is left
#   scripts/remote-engine.sh env                       print DOCKER_HOST for its socket
#
# It has its own data root (kept between runs, so loaded images stay), exec root, pid file and
# socket, its own bridge (BRIDGE, made here on a subnet of its own, removed by `stop`; not
# `--bridge=none`, with which dockerd deletes the first engine's docker0) and no iptables rules:
# it cannot clash with the first engine's network, and its containers reach nothing beyond this
# machine (no masquerading), which builds of projects without dependencies to fetch do not need.
# It has its own cgroup parent. Besides its unix socket, it listens on tcp://127.0.0.1:TLS_PORT with TLS,
# and only takes clients with a certificate of its own CA: `start` makes the CA, the server's
# certificate (for IP 127.0.0.1) and a client's in CERT_DIR, the client's files as the docker CLI
# wants them in DOCKER_CERT_PATH (CERT_DIR/client: ca.pem, cert.pem, key.pem).
set -euo pipefail

NAME=release-oci-remote-engine
DATA_ROOT=${REMOTE_ENGINE_DATA_ROOT:-/var/lib/$NAME}
EXEC_ROOT=/run/$NAME
PIDFILE=/run/$NAME.pid
SOCKET=/run/$NAME.sock
LOG=/var/log/$NAME.log
BRIDGE=roci-remote0
BRIDGE_CIDR=${REMOTE_ENGINE_BRIDGE_CIDR:-10.213.213.1/24}
WAIT=${REMOTE_ENGINE_WAIT:-60}

step() { printf '[remote-engine] %s\n' "$*" >&2; }
die() { printf '[remote-engine] ERROR: %s\n' "$*" >&2; exit 1; }

remote() { docker -H "unix://$SOCKET" "$@"; }

# Stops the engine of the pid file (SIGTERM, then SIGKILL) and waits until neither it nor its
# containerd runs.
stop() {
  local pid i
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null && grep -qa "$NAME" "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
      done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
  fi
  # Its containerd (and shims) run under EXEC_ROOT: gone with dockerd, else ended here.
  for i in $(seq 1 50); do
    pids=$(pgrep -f -- "$EXEC_ROOT/" || true)
    [ -z "$pids" ] && break
    [ "$i" = 25 ] && kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  done
  rm -f "$SOCKET"
  ip link del "$BRIDGE" 2>/dev/null || true
}

# CERT_DIR/{ca,server}.pem and CERT_DIR/client/{ca,cert,key}.pem (kept when present).
certs() {
  local dir=$1 c=$1/client
  [ -f "$c/key.pem" ] && [ -f "$dir/server-key.pem" ] && return 0
  mkdir -p "$c"
  local ossl=(openssl)
  "${ossl[@]}" req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$NAME test CA" \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
  "${ossl[@]}" req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server-key.pem" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' >"$dir/server.ext"
  "${ossl[@]}" x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server-cert.pem" 2>/dev/null
  "${ossl[@]}" req -newkey rsa:2048 -nodes -subj "/CN=release-oci client" \
    -keyout "$c/key.pem" -out "$dir/client.csr" 2>/dev/null
  printf 'extendedKeyUsage = clientAuth\n' >"$dir/client.ext"
  "${ossl[@]}" x509 -req -in "$dir/client.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
    -days 2 -extfile "$dir/client.ext" -out "$c/cert.pem" 2>/dev/null
  cp "$dir/ca.pem" "$c/ca.pem"
  chmod 0600 "$dir/ca-key.pem" "$dir/server-key.pem" "$c/key.pem"
}

start() {
  local dir=$1 port=$2 pid i
  [ "$(id -u)" = 0 ] || die "run as root (it starts dockerd)"
  command -v dockerd >/dev/null || die "dockerd is missing (package docker.io)"
  command -v openssl >/dev/null || die "openssl is missing (package openssl)"
  stop
  local had_docker0=
  ip link show docker0 >/dev/null 2>&1 && had_docker0=1
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$dir"
  certs "$dir"
  ip link add "$BRIDGE" type bridge
  ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  step "starting dockerd (data root $DATA_ROOT, socket $SOCKET, tcp://127.0.0.1:$port with TLS; log: $LOG)"
  setsid dockerd \
    --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
    -H "unix://$SOCKET" -H "tcp://127.0.0.1:$port" \
    --tlsverify --tlscacert "$dir/ca.pem" --tlscert "$dir/server-cert.pem" --tlskey "$dir/server-key.pem" \
    --bridge="$BRIDGE" --iptables=false --ip-masq=false --ip-forward=false \
    --cgroup-parent=/$NAME \
    >>"$LOG" 2>&1 </dev/null &
  pid=$!
  for i in $(seq 1 $((WAIT * 5))); do
    if remote version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      if [ -n "$had_docker0" ] && ! ip link show docker0 >/dev/null 2>&1; then
        stop
        die "the first engine's bridge docker0 is gone since this engine started: restart the first dockerd"
      fi
      step "engine answers (pid $pid)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOG" >&2
      die "dockerd exited (full log: $LOG)"
    fi
    sleep 0.2
  done
  tail -n 20 "$LOG" >&2
  stop
  die "dockerd did not answer within ${WAIT}s (full log: $LOG)"
}

# Copies each image from this machine's engine, unless the second one has it with the same id.
load() {
  local image local_id remote_id
  for image in "$@"; do
    local_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) ||
      die "$image is not in this machine's engine: make setup (make setup-arm64 for the arm64 images) builds it"
    remote_id=$(remote image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    if [ "$local_id" = "$remote_id" ]; then
      continue
    fi
    step "loading $image"
    docker save "$image" | remote load -q >/dev/null
  done
}

case "${1:-}" in
  start) [ $# = 3 ] || die "usage: $0 start CERT_DIR TLS_PORT"; start "$2" "$3" ;;
  load) shift; load "$@" ;;
  stop) stop ;;
  env) printf 'DOCKER_HOST=unix://%s\n' "$SOCKET" ;;
  *) die "usage: $0 start CERT_DIR TLS_PORT | load IMAGE... | stop | env" ;;
esac
