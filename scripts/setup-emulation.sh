#!/usr/bin/env bash
# Prepares a Debian amd64 machine, as root, for building and running aarch64 images:
#   1. installs qemu-user 10 or newer (bookworm has 7.2, whose emulation crashes the BEAM's JIT):
#      from the machine's own suite when it has one that new, else from its -backports suite
#      (bookworm-backports: qemu-user 10.0), added as /etc/apt/sources.list.d/release-oci-backports.list
#      with the archive of this machine's apt sources; and mmdebstrap. Fails when qemu-aarch64 is
#      older than 10 afterwards;
#   2. mounts binfmt_misc when it is not mounted;
#   3. registers qemu-aarch64 in binfmt_misc from the package's own binfmt.d entry, with the F
#      (fix-binary) flag: the kernel opens the interpreter at registration, so it works inside
#      containers and chroots. An older registration (qemu-user-static 7.2's, or one made before
#      the binary changed) is replaced: with F the kernel keeps running the file it opened then;
#   4. builds the arm64 base images (ARCH=arm64 base-images/build-local.sh, which unpacks and sets
#      up the arm64 packages on the host with base-images/arm64-rootfs.sh: about 2 minutes for
#      both; skipped when their recipe label matches). The builder keeps Debian's own arm64
#      Erlang/OTP, whose beam.smp is the JIT build; build-local.sh checks that it runs under the
#      emulation and reports `jit`.
# Idempotent and non-interactive. Run after scripts/setup.sh (it needs the Docker engine).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BINFMT=/proc/sys/fs/binfmt_misc
ENTRY=$BINFMT/qemu-aarch64
QEMU=/usr/bin/qemu-aarch64
QEMU_MIN_MAJOR=10
BACKPORTS_LIST=/etc/apt/sources.list.d/release-oci-backports.list
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# What the registration was made from: boot id and the interpreter's SHA-256 (see step 3).
BINFMT_STAMP=/var/lib/release-oci/binfmt-qemu-aarch64
# The interpreter ERTS of the old recipe (base-images/arm64-interp-erts.sh, gone): its build tree.
OLD_ERTS_WORK=/var/cache/release-oci/arm64-erts

step() { printf '[setup-emulation] %s\n' "$*" >&2; }
die() { printf '[setup-emulation] ERROR: %s\n' "$*" >&2; exit 1; }

# Runs a command quietly; shows its output only when it fails.
quiet() {
  local out rc=0
  out=$(mktemp)
  "$@" >"$out" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    tail -n 40 "$out" >&2
    rm -f "$out"
    die "failed ($rc): $*"
  fi
  rm -f "$out"
}

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# The major version of $QEMU (0 when it is missing or does not say).
qemu_major() {
  local v
  v=$("$QEMU" --version 2>/dev/null | sed -n 's/^qemu-aarch64 version \([0-9][0-9]*\)\..*/\1/p' | head -n 1)
  printf '%s\n' "${v:-0}"
}

[ "$(id -u)" = 0 ] || die "run as root (installs packages, registers binfmt_misc handlers)"
# shellcheck source=scripts/debian-archive.sh
source "$ROOT/scripts/debian-archive.sh"
export DEBIAN_FRONTEND=noninteractive

# --- 1. packages --------------------------------------------------------------------------------
if ! installed mmdebstrap; then
  step "packages: installing mmdebstrap"
  quiet apt-get update -q
  quiet apt-get install -y -q --no-install-recommends mmdebstrap
fi

if [ "$(qemu_major)" -ge "$QEMU_MIN_MAJOR" ]; then
  step "qemu-user: $("$QEMU" --version | head -n 1) present"
else
  codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release: cannot choose a suite for qemu-user $QEMU_MIN_MAJOR"
  quiet apt-get update -q
  candidate=$(apt-cache policy qemu-user | awk '/Candidate:/ { print $2 }')
  target=()
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] &&
     dpkg --compare-versions "$candidate" ge "1:$QEMU_MIN_MAJOR"; then
    step "qemu-user: installing $candidate from $codename"
  else
    # The machine's suite is too old (bookworm: 7.2): its backports suite, from the same archive.
    uri=$(debian_archive_uri) || die "no Debian archive in /etc/apt/sources.list{,.d/}: cannot add $codename-backports for qemu-user $QEMU_MIN_MAJOR"
    [ -f "$KEYRING" ] || die "$KEYRING is missing (package debian-archive-keyring): cannot check $codename-backports' signature"
    line="deb [signed-by=$KEYRING] $uri $codename-backports main"
    if [ "$(cat "$BACKPORTS_LIST" 2>/dev/null)" != "$line" ]; then
      step "apt: adding $codename-backports ($BACKPORTS_LIST, the archive of this machine's sources)"
      printf '%s\n' "$line" >"$BACKPORTS_LIST"
      quiet apt-get update -q
    fi
    target=(-t "$codename-backports")
    step "qemu-user: installing from $codename-backports"
  fi
  # qemu-user-static is a transitional package from 9.1 on (links to qemu-user's binaries); naming
  # it upgrades bookworm's 7.2, which qemu-user breaks.
  quiet apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${target[@]}" \
    qemu-user qemu-user-static
  major=$(qemu_major)
  [ "$major" -ge "$QEMU_MIN_MAJOR" ] ||
    die "qemu-user $QEMU_MIN_MAJOR or newer could not be installed: $QEMU reports major version $major ($(dpkg-query -W -f='${Version}' qemu-user 2>/dev/null || echo 'not installed')); the BEAM's JIT crashes under older qemu"
  step "qemu-user: $("$QEMU" --version | head -n 1) installed"
fi

# --- 2. binfmt_misc -----------------------------------------------------------------------------
if [ ! -e "$BINFMT/register" ]; then
  step "binfmt_misc: mounting $BINFMT"
  mount -t binfmt_misc binfmt_misc "$BINFMT" || die "cannot mount binfmt_misc on $BINFMT"
fi

# --- 3. qemu-aarch64 with the F flag ------------------------------------------------------------
# The package's entry (magic, mask, interpreter, flags), as systemd-binfmt would register it.
conf=
for f in /usr/lib/binfmt.d/qemu-aarch64.conf /usr/share/qemu/binfmt.d/qemu-aarch64.conf; do
  if [ -f "$f" ]; then conf=$f; break; fi
done
[ -n "$conf" ] || die "no qemu-aarch64.conf in /usr/lib/binfmt.d or /usr/share/qemu/binfmt.d (package qemu-user)"
registration=$(grep -m 1 '^:qemu-aarch64:' "$conf") || die "$conf has no :qemu-aarch64: line"
interpreter=$(printf '%s' "$registration" | awk -F: '{ print $(NF-1) }')
flags=$(printf '%s' "$registration" | awk -F: '{ print $NF }')
[[ "$flags" == *F* ]] || { flags=${flags}F; registration=${registration%:*}:$flags; }
real=$(readlink -f "$interpreter")
[ -x "$real" ] || die "the interpreter $interpreter of $conf is missing"
want_stamp="$(cat /proc/sys/kernel/random/boot_id) $(sha256sum "$real" | cut -d' ' -f1)"

registered_ok() {
  grep -qx enabled "$ENTRY" 2>/dev/null && grep -qx "interpreter $interpreter" "$ENTRY" &&
    grep -qx 'flags: .*F.*' "$ENTRY" && [ "$(cat "$BINFMT_STAMP" 2>/dev/null)" = "$want_stamp" ]
}
if registered_ok; then
  step "binfmt_misc: qemu-aarch64 registered ($interpreter, $(grep '^flags:' "$ENTRY"))"
else
  step "binfmt_misc: registering qemu-aarch64 ($interpreter -> $real, flags $flags)"
  if [ -e "$ENTRY" ]; then echo -1 >"$ENTRY"; fi
  printf '%s' "$registration" >"$BINFMT/register"
  mkdir -p "$(dirname "$BINFMT_STAMP")"
  printf '%s\n' "$want_stamp" >"$BINFMT_STAMP"
  registered_ok || die "qemu-aarch64 is not registered with the F flag in $ENTRY: $(tr '\n' ' ' <"$ENTRY" 2>/dev/null)"
fi

# --- 4. the arm64 images ------------------------------------------------------------------------
if [ -d "$OLD_ERTS_WORK" ]; then
  step "removing $OLD_ERTS_WORK (the interpreter ERTS build of the old recipe)"
  rm -rf "$OLD_ERTS_WORK"
fi
step "arm64 base images: ARCH=arm64 base-images/build-local.sh"
start=$SECONDS
ARCH=arm64 bash "$ROOT/base-images/build-local.sh"
step "arm64 base images: ready ($((SECONDS - start))s)"
