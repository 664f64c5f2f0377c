#!/usr/bin/env bash
# Builds the local builder and runtime images from Debian packages (debootstrap + docker import),
# for machines that cannot pull from a registry. Idempotent: an image that exists is left alone.
#
#   base-images/build-local.sh            # both images
#   FORCE=1 base-images/build-local.sh    # rebuild even if present
#
# Images (x86_64-unknown-linux-gnu, Debian bookworm):
#   release-oci/builder:debian-bookworm   Elixir, Erlang/OTP (+ headers), git, gcc/make, static tini
#   release-oci/runtime:debian-bookworm   minimal Debian with the libraries ERTS links (libssl3, libstdc++, ...)
set -euo pipefail

SUITE=${SUITE:-bookworm}
BUILDER_TAG=${BUILDER_TAG:-release-oci/builder:debian-$SUITE}
RUNTIME_TAG=${RUNTIME_TAG:-release-oci/runtime:debian-$SUITE}
WORK=${WORK:-/var/cache/release-oci/rootfs}

log() { printf '[base-images] %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "debootstrap needs root: run this script as root"; exit 1
  fi
}

die_with_log() { tail -n 30 "$1" >&2; log "$2 (full log: $1)"; exit 1; }

have_image() { [ -z "${FORCE:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

# debootstrap ROOTFS INCLUDES: a minbase rootfs with extra packages from apt's default archive,
# then brought up to date from the same archive's -updates and -security suites.
bootstrap() {
  local dir=$1 include=$2 url
  rm -rf "$dir" "$dir.log"
  mkdir -p "$(dirname "$dir")"
  log "debootstrap $SUITE into $dir (+ $include)"
  debootstrap --variant=minbase --include="$include" "$SUITE" "$dir" >"$dir.log" 2>&1 ||
    die_with_log "$dir.log" "debootstrap failed"

  # debootstrap writes one line for the default archive; derive the updates and security
  # suites from it (the security archive lives beside it, at the same host, as ...-security).
  url=$(awk '$1 == "deb" { print $2; exit }' "$dir/etc/apt/sources.list")
  [ -n "$url" ] || die_with_log "$dir.log" "no archive in $dir/etc/apt/sources.list"
  case $SUITE in
    sid|unstable|experimental) ;;
    *) printf 'deb %s %s-updates main\ndeb %s-security %s-security main\n' \
         "$url" "$SUITE" "${url%/}" "$SUITE" >>"$dir/etc/apt/sources.list" ;;
  esac
  log "apt-get upgrade in $dir"
  { chroot "$dir" apt-get update -q &&
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade &&
    chroot "$dir" apt-get clean; } >>"$dir.log" 2>&1 || die_with_log "$dir.log" "apt-get upgrade failed"

  # Trim what an image never needs; keep dpkg status so scanners can read the package list.
  # debootstrap copies the host's resolv.conf and hostname in: the engine provides both.
  rm -rf "${dir:?}"/var/cache/apt/archives/*.deb "${dir:?}"/var/cache/apt/*.bin \
         "${dir:?}"/var/lib/apt/lists/* "${dir:?}"/usr/share/doc/* "${dir:?}"/usr/share/man/* \
         "${dir:?}"/usr/share/info/* "${dir:?}"/var/log/* "${dir:?}"/tmp/* "${dir:?}"/dev/* \
         "${dir:?}"/debootstrap
  : >"$dir/etc/resolv.conf"
  echo localhost >"$dir/etc/hostname"
  chmod 1777 "$dir/tmp"
}

import() {
  local dir=$1 tag=$2; shift 2
  log "docker import $tag"
  tar --numeric-owner --sort=name -C "$dir" -c . | docker import "$@" - "$tag" >/dev/null
  rm -rf "$dir" "$dir.log"
}

need_root
command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
docker version >/dev/null 2>&1 || { log "no Docker engine answers: run scripts/setup.sh first"; exit 1; }

if have_image "$RUNTIME_TAG"; then
  log "$RUNTIME_TAG exists"
else
  bootstrap "$WORK/runtime" "libssl3,libstdc++6,zlib1g,libtinfo6,ca-certificates"
  import "$WORK/runtime" "$RUNTIME_TAG" \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/sh"]'
fi

if have_image "$BUILDER_TAG"; then
  log "$BUILDER_TAG exists"
else
  bootstrap "$WORK/builder" "elixir,erlang-nox,erlang-dev,erlang-src,git,gcc,g++,libc6-dev,make,tini,ca-certificates,libssl-dev"
  test -x "$WORK/builder/usr/bin/tini-static" || { log "tini-static missing from the builder"; exit 1; }
  import "$WORK/builder" "$BUILDER_TAG" \
    -c 'ENV LANG=C.UTF-8' -c 'ENV MIX_HOME=/root/.mix' \
    -c 'WORKDIR /build' -c 'CMD ["/bin/sh"]'
fi
log "done: $BUILDER_TAG $RUNTIME_TAG"
