#!/usr/bin/env bash
# Prepares a Debian amd64 machine, as root, for building and running aarch64 images:
#   1. installs qemu-user-static, binfmt-support and mmdebstrap when missing,
#   2. mounts binfmt_misc when it is not mounted,
#   3. makes sure qemu-aarch64 is registered and enabled with the F (fix-binary) flag, so the
#      interpreter is opened once at registration and works inside containers and chroots,
#   4. builds the arm64 base images (ARCH=arm64 base-images/build-local.sh, which unpacks and sets
#      up the arm64 packages on the host with base-images/arm64-rootfs.sh: about 2 minutes for
#      both; skipped when their recipe label matches),
#   5. puts an interpreter (non-JIT) beam.smp into the arm64 builder (base-images/arm64-interp-erts.sh;
#      skipped when its label says so).
# Idempotent and non-interactive. Run after scripts/setup.sh (it needs the Docker engine).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BINFMT=/proc/sys/fs/binfmt_misc
ENTRY=$BINFMT/qemu-aarch64
QEMU=/usr/bin/qemu-aarch64-static

step() { printf '[setup-emulation] %s\n' "$*" >&2; }
die() { printf '[setup-emulation] ERROR: %s\n' "$*" >&2; exit 1; }

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

[ "$(id -u)" = 0 ] || die "run as root (installs packages, registers binfmt_misc handlers)"

missing=()
for p in qemu-user-static binfmt-support mmdebstrap; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -eq 0 ]; then
  step "packages: all present"
else
  step "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x "$QEMU" ] || die "$QEMU is missing (package qemu-user-static)"

if [ ! -e "$BINFMT/register" ]; then
  step "binfmt_misc: mounting $BINFMT"
  mount -t binfmt_misc binfmt_misc "$BINFMT" || die "cannot mount binfmt_misc on $BINFMT"
fi

has_fix_binary() { grep -qx enabled "$ENTRY" 2>/dev/null && grep -qx 'flags: .*F.*' "$ENTRY"; }

if ! has_fix_binary; then
  # The package's registration (update-binfmts) carries the F flag; enable it.
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
if ! has_fix_binary; then
  # Registered without F (or not at all): register it directly, as the package would.
  step "binfmt_misc: registering qemu-aarch64 with flags F,P"
  [ -e "$ENTRY" ] && echo -1 >"$ENTRY"
  printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$QEMU"':FP' \
    >"$BINFMT/register"
fi
has_fix_binary || die "qemu-aarch64 is not registered with the F flag in $ENTRY"
step "binfmt_misc: qemu-aarch64 enabled ($(grep '^flags:' "$ENTRY"))"

step "arm64 base images: ARCH=arm64 base-images/build-local.sh"
start=$SECONDS
ARCH=arm64 bash "$ROOT/base-images/build-local.sh"
step "arm64 base images: ready ($((SECONDS - start))s)"

# bookworm's arm64 beam.smp is the JIT build, which crashes under qemu-user 7.2: the builder gets
# an interpreter beam.smp of the same Erlang/OTP (skipped when the image's label says it has it).
step "arm64 builder: interpreter ERTS (base-images/arm64-interp-erts.sh)"
start=$SECONDS
bash "$ROOT/base-images/arm64-interp-erts.sh"
step "arm64 builder: interpreter ERTS ready ($((SECONDS - start))s)"
