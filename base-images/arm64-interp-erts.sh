#!/usr/bin/env bash
# Puts an interpreter (non-JIT) `beam.smp` into the arm64 builder image, so the BEAM runs under
# qemu-user on an x86_64 machine (see docs/multi-platform.md: bookworm's arm64 OTP 25 is the JIT
# build, which crashes under qemu 7.2, and OTP 25 has no +JMsingle).
#
#   base-images/arm64-interp-erts.sh          # called by scripts/setup-emulation.sh
#   FORCE=1 base-images/arm64-interp-erts.sh  # rebuild even if the image has the label
#
# The emulator of the SAME Erlang/OTP (Debian's source of the version installed in the image) is
# cross-compiled with Debian's gcc-aarch64-linux-gnu (native, fast) and --disable-jit; only
# erts-*/bin/beam.smp is replaced (erlexec, erl_child_setup, epmd, inet_gethost are plain C, not
# JIT-dependent). The image keeps its tag, architecture and recipe label and gets
# org.release-oci.erts-flavor=emu and org.release-oci.erts-recipe; with both it is left alone.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${TAG:-release-oci/builder:debian-bookworm-arm64}
WORK=${WORK:-/var/cache/release-oci/arm64-erts}
JOBS=${JOBS:-$(nproc)}
RECIPE_VERSION=1

log() { printf '[arm64-erts] %s\n' "$*" >&2; }
# shellcheck source=base-images/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
die() { log "ERROR: $*"; exit 1; }
RUN_LOGS=$WORK/logs

[ "$(id -u)" = 0 ] || die "run as root (installs packages)"
docker image inspect "$TAG" >/dev/null 2>&1 || die "$TAG is missing: run ARCH=arm64 base-images/build-local.sh"
label() { docker image inspect -f "{{ index .Config.Labels \"$1\" }}" "$TAG"; }

mkdir -p "$WORK/logs"
exec 9>"$WORK/.lock"
flock 9

# The Erlang/OTP of the image, from its dpkg status file, copied out with `docker cp` (nothing
# runs under qemu for it; base-images/arm64-rootfs.sh writes the status file from the .debs).
status_of_image() {
  local cid rc=0
  cid=$(docker create --platform linux/arm64 "$TAG")
  docker cp "$cid:/var/lib/dpkg/status" - | tar -xO || rc=$?
  docker rm "$cid" >/dev/null
  return "$rc"
}
DEB_VERSION=$(status_of_image | awk '$0 == "Package: erlang-base" { p = 1 } /^$/ { p = 0 }
  p && /^Version:/ { print $2 }') || die "cannot read /var/lib/dpkg/status of $TAG"
[ -n "$DEB_VERSION" ] || die "no erlang-base in /var/lib/dpkg/status of $TAG"
RECIPE=$(printf '%s %s %s\n' "$RECIPE_VERSION" "$DEB_VERSION" "$(label org.release-oci.recipe)" | sha256sum | cut -c1-16)
if [ -z "${FORCE:-}" ] && [ "$(label org.release-oci.erts-flavor)" = emu ] &&
   [ "$(label org.release-oci.erts-recipe)" = "$RECIPE" ]; then
  log "$TAG already has the interpreter ERTS ($DEB_VERSION)"
  exit 0
fi
TOTAL_START=$SECONDS
SRC_VERSION=${DEB_VERSION#*:} # erlang_25.2.3+dfsg-1+deb12u4.dsc has no epoch

# Host tools: the cross compiler and the arm64 C library, dpkg-source, perl (code generators) and
# a host Erlang/OTP of the same version (escripts and yielding_c_fun of the emulator's build).
install_missing gcc-aarch64-linux-gnu libc6-dev-arm64-cross dpkg-dev make perl xz-utils erlang-base
HOST_OTP=$(erl -noshell -eval 'io:format("~s",[erlang:system_info(otp_release)]),halt().')

# Debian's source of that version: from base-images/musl/build.sh's download when it is the same,
# else with a private apt state whose deb-src lines are derived from this machine's sources.
SRC=$WORK/src
mkdir -p "$SRC"
get_source() {
  local musl=/var/cache/release-oci/musl/build/src
  cd "$SRC"
  if [ -f "$musl/erlang_$SRC_VERSION.dsc" ]; then
    cp "$musl/erlang_$SRC_VERSION".* "$musl"/erlang_"${SRC_VERSION%%-*}".orig.tar.* .
    return
  fi
  private_apt "$WORK/apt"
  "${APT[@]}" update
  "${APT[@]}" source --download-only "erlang=$DEB_VERSION"
}
if [ ! -f "$SRC/erlang_$SRC_VERSION.dsc" ]; then run source get_source; fi

# Configure and build only the emulator, for aarch64-linux-gnu, without the JIT. The erl_xcomp_*
# answers are those of xcomp/erl-xcomp-vars.sh for a glibc Linux (configure cannot run tests).
OTP=$WORK/otp
build() {
  rm -rf "$OTP"
  dpkg-source -x "$SRC/erlang_$SRC_VERSION.dsc" "$OTP"
  cd "$OTP"
  export ERL_TOP=$OTP
  export erl_xcomp_bigendian=no erl_xcomp_linux_nptl=yes erl_xcomp_linux_usable_sigusrx=yes \
    erl_xcomp_linux_usable_sigaltstack=yes erl_xcomp_poll=yes erl_xcomp_putenv_copy=no \
    erl_xcomp_reliable_fpe=no erl_xcomp_getaddrinfo=yes erl_xcomp_gethrvtime_procfs_ioctl=no \
    erl_xcomp_clock_gettime_cpu_time=yes erl_xcomp_after_morecore_hook=no erl_xcomp_dlsym_brk_wrappers=no \
    erl_xcomp_posix_memalign=yes erl_xcomp_double_middle_endian=no
  ./configure --build=x86_64-pc-linux-gnu --host=aarch64-linux-gnu --prefix=/usr \
    CC=aarch64-linux-gnu-gcc CXX=false AR=aarch64-linux-gnu-ar RANLIB=aarch64-linux-gnu-ranlib \
    --disable-jit --without-termcap --without-wx --without-javac --without-ssl --without-odbc \
    --disable-sctp --enable-builtin-zlib
  # erts/emulator only: the rest of erts (etc, epmd) wants parts of lib/ that are not built here.
  make -j"$JOBS" -C erts/emulator TARGET=aarch64-unknown-linux-gnu FLAVOR=emu opt
  echo "$SRC_VERSION" >"$WORK/otp.built"
}
# A finished build of this version is reused (the image may have been rebuilt since).
if [ "$(cat "$WORK/otp.built" 2>/dev/null)" != "$SRC_VERSION" ]; then
  rm -f "$WORK/otp.built"
  run build build
fi

BEAM=$OTP/bin/aarch64-unknown-linux-gnu/beam.smp
[ -f "$BEAM" ] || die "no beam.smp in $OTP/bin/aarch64-unknown-linux-gnu"
OUT=$WORK/beam.smp
aarch64-linux-gnu-strip --strip-unneeded -o "$OUT" "$BEAM"
# ELF, 64-bit, machine 0xb7 (EM_AARCH64).
[ "$(od -An -tx1 -N5 "$OUT" | tr -d ' \n')" = 7f454c4602 ] || die "$OUT is not a 64-bit ELF file"
[ "$(od -An -tx1 -j18 -N2 "$OUT" | tr -d ' \n')" = b700 ] || die "$OUT is not for aarch64"

# A new image from the old one with only beam.smp replaced; config, tag and labels are kept.
# (One `sh` under qemu finds the erts directory.)
ERTS_DIR=$(docker run --rm --platform linux/arm64 --entrypoint sh "$TAG" -c 'echo /usr/lib/erlang/erts-*')
case $ERTS_DIR in */erts-\**|'') die "no /usr/lib/erlang/erts-* in $TAG" ;; esac
old_id=$(docker image inspect -f '{{.Id}}' "$TAG")
cid=$(docker create --platform linux/arm64 "$TAG")
trap 'docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT
chmod 0755 "$OUT"
docker cp "$OUT" "$cid:$ERTS_DIR/bin/beam.smp"
docker commit -c "LABEL org.release-oci.erts-flavor=emu" -c "LABEL org.release-oci.erts-recipe=$RECIPE" \
  "$cid" "$TAG" >/dev/null
docker rm "$cid" >/dev/null
bash "$ROOT/base-images/set-arch.sh" "$TAG" arm64
[ "$old_id" = "$(docker image inspect -f '{{.Id}}' "$TAG")" ] || docker image rm "$old_id" >/dev/null 2>&1 || true

# It must run under emulation, as the interpreter.
flavor=$(docker run --rm --platform linux/arm64 --entrypoint erl "$TAG" -noshell \
  -eval 'io:format("~s ~s",[erlang:system_info(emu_flavor),erlang:system_info(otp_release)]),halt().') ||
  die "erl does not start in $TAG under emulation"
[ "$flavor" = "emu $HOST_OTP" ] || die "erl in $TAG reports '$flavor', expected 'emu $HOST_OTP'"
log "$TAG: interpreter ERTS in $ERTS_DIR ($flavor), $((SECONDS - TOTAL_START))s"
