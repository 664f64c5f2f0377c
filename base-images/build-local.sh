#!/usr/bin/env bash
# Builds the local builder and runtime images from Debian packages (debootstrap + docker import),
# for machines that cannot pull from a registry. Idempotent: an image built from the same recipe
# (package list) is left alone; a changed recipe rebuilds it.
#
#   base-images/build-local.sh            # both images
#   FORCE=1 base-images/build-local.sh    # rebuild even if present
#   ARCH=arm64 base-images/build-local.sh # the aarch64 images (needs mmdebstrap and qemu-aarch64 in
#                                         # binfmt_misc, set up by scripts/setup-emulation.sh), tags
#                                         # ...-arm64; the rootfs comes from arm64-rootfs.sh
#
# Images (x86_64-unknown-linux-gnu, Debian bookworm):
#   release-oci/builder:debian-bookworm   Elixir, Erlang/OTP (+ headers), rebar3, git, gcc/make, static tini
#                                         and static busybox
#   release-oci/runtime:debian-bookworm   minimal Debian with the libraries ERTS links (libssl3, libstdc++, ...)
set -euo pipefail

SUITE=${SUITE:-bookworm}
# ARCH: Debian architecture of the images. A foreign one (arm64 on an amd64 host) is unpacked and
# set up on the host by arm64-rootfs.sh (mmdebstrap; nothing but ldconfig and pam-auth-update runs
# under qemu-user) and gets its own tag (suffix -$ARCH): without the containerd image store the
# engine keeps one platform per name, so two platforms need two tags.
HOST_ARCH=$(dpkg --print-architecture)
ARCH=${ARCH:-$HOST_ARCH}
if [ "$ARCH" = amd64 ]; then TAG_SUFFIX=; else TAG_SUFFIX=-$ARCH; fi
BUILDER_TAG=${BUILDER_TAG:-release-oci/builder:debian-$SUITE$TAG_SUFFIX}
RUNTIME_TAG=${RUNTIME_TAG:-release-oci/runtime:debian-$SUITE$TAG_SUFFIX}
WORK=${WORK:-/var/cache/release-oci/rootfs$TAG_SUFFIX}

log() { printf '[base-images] %s\n' "$*" >&2; }
# shellcheck source=base-images/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "debootstrap needs root: run this script as root"; exit 1
  fi
}

die_with_log() { tail -n 30 "$1" >&2; log "$2 (full log: $1)"; exit 1; }

# An image is up to date when it exists and carries the recipe label of this script's recipe for
# it: a changed package list (or recipe version) rebuilds the image, an unchanged one is kept.
RECIPE_VERSION=2
# Foreign architectures: 4 = arm64-rootfs.sh, the builder with Debian's own (JIT) beam.smp, run
# under qemu-user 10 (scripts/setup-emulation.sh); 3 was the same rootfs whose builder then got an
# interpreter beam.smp (arm64-interp-erts.sh, gone), 2 debootstrap and apt-get upgrade under
# qemu-user. Bump it when arm64-rootfs.sh makes a different rootfs.
FOREIGN_RECIPE_VERSION=4
# amd64 keeps its historical recipe (no architecture in it), so existing images stay valid.
recipe_of() {
  local arch='' version=$RECIPE_VERSION
  [ "$ARCH" = amd64 ] || arch=" $ARCH"
  [ "$ARCH" = "$HOST_ARCH" ] || version=$FOREIGN_RECIPE_VERSION
  printf '%s %s%s %s\n' "$version" "$SUITE" "$arch" "$*" | sha256sum | cut -c1-16
}
have_image() {
  local tag=$1 recipe=$2 found
  [ -z "${FORCE:-}" ] || return 1
  found=$(docker image inspect -f '{{ index .Config.Labels "org.release-oci.recipe" }}' "$tag" 2>/dev/null) || return 1
  [ "$found" = "$recipe" ]
}

# bootstrap ROOTFS INCLUDES: a minbase rootfs with extra packages from apt's default archive,
# brought up to date from the same archive's -updates and -security suites. The host's
# architecture with debootstrap and apt-get upgrade in the chroot; a foreign one with
# arm64-rootfs.sh, which runs neither dpkg nor apt under emulation.
bootstrap() {
  local dir=$1 include=$2
  rm -rf "$dir" "$dir.log"
  mkdir -p "$(dirname "$dir")"
  if [ "$ARCH" != "$HOST_ARCH" ]; then
    log "arm64-rootfs.sh: $ARCH $SUITE into $dir (+ $include)"
    SUITE=$SUITE bash "$HERE/arm64-rootfs.sh" "$dir" "$include" >"$dir.log" 2>&1 ||
      die_with_log "$dir.log" "arm64-rootfs.sh failed"
  else
    debootstrap_upgrade "$dir" "$include"
  fi

  trim_rootfs "$dir"
}

debootstrap_upgrade() {
  local dir=$1 include=$2 url
  log "debootstrap $SUITE into $dir (+ $include)"
  debootstrap --arch="$ARCH" --variant=minbase --include="$include" "$SUITE" "$dir" >"$dir.log" 2>&1 ||
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
}

import() {
  local dir=$1 tag=$2; shift 2
  log "docker import $tag"
  tar --numeric-owner --sort=name -C "$dir" -c . | docker import --platform "linux/$ARCH" "$@" - "$tag" >/dev/null
  rm -rf "$dir" "$dir.log"
  set_arch "$tag"
}

# Engines without experimental features ignore `docker import --platform`: the image config is
# rewritten to $ARCH (a no-op when it already says so).
set_arch() { bash "$(dirname "${BASH_SOURCE[0]}")/set-arch.sh" "$1" "$ARCH"; }

# version_labels TAG: the builder's Erlang/OTP and Elixir versions as the labels
# org.release-oci.otp-version and org.release-oci.elixir-version, which release-oci reads to pick
# a builder for a project's pinned versions. Read from the image's files (OTP_VERSION, the dpkg
# status of elixir) with docker cp, so nothing runs under emulation; an image that has both
# labels is left alone, one without them is committed again with them (same tag).
version_labels() {
  local tag=$1 cid otp elixir old_id
  if [ -n "$(docker image inspect -f '{{ index .Config.Labels "org.release-oci.elixir-version" }}' "$tag")" ]; then
    return 0
  fi
  cid=$(docker create --platform "linux/$ARCH" "$tag")
  otp=$(docker cp "$cid:/usr/lib/erlang/releases" - | tar -xO --wildcards '*/OTP_VERSION' | head -n 1) || otp=
  elixir=$(docker cp "$cid:/var/lib/dpkg/status" - | tar -xO |
    awk '$0 == "Package: elixir" { p = 1 } /^$/ { p = 0 } p && /^Version:/ { print $2 }') || elixir=
  elixir=${elixir#*:}
  elixir=${elixir%%[.+~-][a-z]*}
  elixir=${elixir%%-*}
  if [ -z "$otp" ] || [ -z "$elixir" ]; then
    docker rm "$cid" >/dev/null
    log "cannot read the Erlang/OTP ($otp) or Elixir ($elixir) version of $tag"; exit 1
  fi
  old_id=$(docker image inspect -f '{{.Id}}' "$tag")
  docker commit -c "LABEL org.release-oci.otp-version=$otp" -c "LABEL org.release-oci.elixir-version=$elixir" \
    "$cid" "$tag" >/dev/null
  docker rm "$cid" >/dev/null
  set_arch "$tag"
  [ "$old_id" = "$(docker image inspect -f '{{.Id}}' "$tag")" ] || docker image rm "$old_id" >/dev/null 2>&1 || true
  log "$tag: Erlang/OTP $otp, Elixir $elixir (labels)"
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
need_root
# One run at a time: two runs would share (and delete) the same rootfs directories.
mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock 9
if [ "$ARCH" = "$HOST_ARCH" ]; then
  command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
else
  command -v mmdebstrap >/dev/null || { log "mmdebstrap is missing: run scripts/setup-emulation.sh"; exit 1; }
fi
docker version >/dev/null 2>&1 || { log "no Docker engine answers: run scripts/setup.sh first"; exit 1; }
if [ "$ARCH" != "$HOST_ARCH" ]; then
  [ "$ARCH" = arm64 ] || { log "foreign architecture $ARCH: only arm64 is supported (arm64-rootfs.sh)"; exit 1; }
  qemu=aarch64
  { grep -qx enabled "/proc/sys/fs/binfmt_misc/qemu-$qemu" &&
    grep -qx 'flags: .*F.*' "/proc/sys/fs/binfmt_misc/qemu-$qemu"; } 2>/dev/null ||
    { log "$ARCH binaries do not run here: run scripts/setup-emulation.sh (qemu-$qemu in binfmt_misc, flag F)"; exit 1; }
fi

PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# Package names that differ between suites (trixie's 64-bit time_t transition renamed libraries).
case $SUITE in
  bookworm|bullseye) LIBSSL=libssl3; LIBTINFO=libtinfo6 ;;
  *) LIBSSL=libssl3t64; LIBTINFO=libtinfo6 ;;
esac
RUNTIME_PACKAGES="$LIBSSL,libstdc++6,zlib1g,$LIBTINFO,ca-certificates"
RUNTIME_RECIPE=$(recipe_of "$RUNTIME_PACKAGES")
if have_image "$RUNTIME_TAG" "$RUNTIME_RECIPE"; then
  log "$RUNTIME_TAG is up to date"
  set_arch "$RUNTIME_TAG"
else
  bootstrap "$WORK/runtime" "$RUNTIME_PACKAGES"
  import "$WORK/runtime" "$RUNTIME_TAG" \
    -c "$PATH_ENV" -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/sh"]' \
    -c "LABEL org.release-oci.recipe=$RUNTIME_RECIPE"
fi

# busybox-static: the shell and utilities of the minimal runtime base; zlib1g-dev: NIFs that link
# zlib; tzdata: the time zone database the minimal base takes with --tzdata; rebar3: only its
# escript (the package's dependencies pull in wx and GTK); openssh-client: private git
# dependencies over SSH (`release-oci build --ssh`).
BUILDER_PACKAGES="elixir,erlang-nox,erlang-dev,erlang-src,erlang-tools,erlang-eunit,erlang-edoc,git,gcc,g++,libc6-dev,make,tini,ca-certificates,libssl-dev,zlib1g-dev,busybox-static,tzdata,openssh-client"
BUILDER_RECIPE=$(recipe_of "$BUILDER_PACKAGES rebar3-escript")
if have_image "$BUILDER_TAG" "$BUILDER_RECIPE"; then
  log "$BUILDER_TAG is up to date"
  set_arch "$BUILDER_TAG"
else
  bootstrap "$WORK/builder" "$BUILDER_PACKAGES"
  test -x "$WORK/builder/usr/bin/tini-static" || { log "tini-static missing from the builder"; exit 1; }
  # rebar3 is one escript: the host's apt (same suite, set up by scripts/setup.sh) fetches the
  # package and only that file goes in; the package's own dependencies would pull in wx and GTK.
  log "rebar3 escript into $WORK/builder/usr/local/bin"
  pkgdir=$(mktemp -d)
  { (cd "$pkgdir" && apt-get download -q rebar3) &&
    dpkg-deb -x "$pkgdir"/rebar3_*.deb "$pkgdir/x" &&
    install -m 0755 "$pkgdir/x/usr/bin/rebar3" "$WORK/builder/usr/local/bin/rebar3"; } >>"$WORK/builder.log" 2>&1 ||
    die_with_log "$WORK/builder.log" "rebar3 could not be installed"
  rm -rf "$pkgdir"
  import "$WORK/builder" "$BUILDER_TAG" \
    -c "$PATH_ENV" -c 'ENV LANG=C.UTF-8' -c 'ENV MIX_HOME=/root/.mix' \
    -c 'WORKDIR /build' -c 'CMD ["/bin/sh"]' \
    -c "LABEL org.release-oci.recipe=$BUILDER_RECIPE"
fi
if [ "$ARCH" = "$HOST_ARCH" ]; then
  docker run --rm -e HOME=/tmp "$BUILDER_TAG" rebar3 version >/dev/null ||
    { log "rebar3 does not run in $BUILDER_TAG"; exit 1; }
else
  # Debian's arm64 Erlang/OTP is the JIT build: it must start under the emulation (qemu-user 7.2
  # crashed it; scripts/setup-emulation.sh installs 10 or newer) and say so, and rebar3 must run.
  flavor=$(docker run --rm --platform "linux/$ARCH" -e HOME=/tmp "$BUILDER_TAG" sh -c \
    'rebar3 version >/dev/null && erl -noshell -eval "io:format(\"~s\", [erlang:system_info(emu_flavor)]), halt()."') ||
    { log "the BEAM or rebar3 does not run in $BUILDER_TAG under emulation (qemu-aarch64: $(qemu-aarch64 --version 2>/dev/null | head -n 1); scripts/setup-emulation.sh installs qemu-user 10)"; exit 1; }
  [ "$flavor" = jit ] || { log "$BUILDER_TAG: emu_flavor is '$flavor', expected jit (Debian's arm64 beam.smp)"; exit 1; }
  log "$BUILDER_TAG: the BEAM runs under emulation (emu_flavor $flavor)"
fi
version_labels "$BUILDER_TAG"
log "done: $BUILDER_TAG $RUNTIME_TAG"
