#!/usr/bin/env bash
# Installs, as root, the verifiers the supply-chain tests run (docs/supply-chain.md):
#   - cosign 2.5, from Debian trixie's package (it depends only on libc6): the .deb is downloaded
#     with apt-get from this machine's own Debian archive (its URI read from apt's sources, the
#     suite set to trixie, in a private apt state), unpacked with dpkg-deb, and
#     usr/bin/cosign copied to /usr/local/bin;
#   - pyspdxtools (PyPI spdx-tools) and sbomcheck (PyPI ntia-conformance-checker) in a venv under
#     /opt/release-oci, from pip's configured index, linked into /usr/local/bin.
# Idempotent: tools at the wanted versions are left alone. Fails loudly on any error.
set -euo pipefail

COSIGN_SUITE=trixie
COSIGN_MAJOR_MINOR=2.5
SPDX_TOOLS_VERSION=0.8.5
NTIA_CHECKER_VERSION=6.0.0
VENV=/opt/release-oci/supply-chain
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

step() { printf '[setup-supply-chain] %s\n' "$*" >&2; }
die() { printf '[setup-supply-chain] ERROR: %s\n' "$*" >&2; exit 1; }

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

[ "$(id -u)" = 0 ] || die "run as root (writes /usr/local/bin and /opt/release-oci)"
command -v apt-get >/dev/null || die "this script needs a Debian-based system (apt-get, dpkg-deb)"

# debian_archive_uri: the URI of this machine's main Debian archive (no archive host is named here).
# shellcheck source=scripts/debian-archive.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian-archive.sh"

# Debian builds cosign without a version stamp (`cosign version` says "devel"), so the package
# version and the binary's SHA-256 are recorded next to the venv when it is installed.
COSIGN_STAMP=/opt/release-oci/cosign.installed

cosign_present() {
  [ -x /usr/local/bin/cosign ] && [ -f "$COSIGN_STAMP" ] || return 1
  local version sum
  read -r version sum <"$COSIGN_STAMP" || return 1
  [[ "$version" == "$COSIGN_MAJOR_MINOR".* ]] || return 1
  [ "$(sha256sum /usr/local/bin/cosign | cut -d' ' -f1)" = "$sum" ] || return 1
  /usr/local/bin/cosign version >/dev/null 2>&1 || return 1
  printf '%s\n' "$version"
}

install_cosign() {
  local found uri work deb version
  if found=$(cosign_present); then
    step "cosign: $found present"
    return 0
  fi
  uri=$(debian_archive_uri) || die "no Debian archive in /etc/apt/sources.list{,.d/}: cannot download cosign"
  [ -f "$KEYRING" ] || die "$KEYRING is missing (package debian-archive-keyring): cannot check $COSIGN_SUITE's signature"
  step "cosign: downloading Debian $COSIGN_SUITE's package from the archive in apt's sources"
  work=$(mktemp -d)
  # A private apt state: the system's sources and lists stay as they are.
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$uri" "$COSIGN_SUITE" >"$work/sources.list"
  local apt=(apt-get -q -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
  quiet "${apt[@]}" update
  (cd "$work" && quiet "${apt[@]}" download cosign)
  deb=$(find "$work" -maxdepth 1 -name 'cosign_*.deb' | head -n 1)
  [ -n "$deb" ] || die "apt-get download cosign left no cosign_*.deb in $work"
  version=$(dpkg-deb -f "$deb" Version)
  [[ "$version" == "$COSIGN_MAJOR_MINOR".* ]] || die "$COSIGN_SUITE's cosign is $version, not $COSIGN_MAJOR_MINOR.x"
  quiet dpkg-deb -x "$deb" "$work/pkg"
  [ -x "$work/pkg/usr/bin/cosign" ] || die "$deb has no usr/bin/cosign"
  install -m 0755 "$work/pkg/usr/bin/cosign" /usr/local/bin/cosign
  rm -rf "$work"
  quiet /usr/local/bin/cosign version
  mkdir -p "$(dirname "$COSIGN_STAMP")"
  printf '%s %s\n' "$version" "$(sha256sum /usr/local/bin/cosign | cut -d' ' -f1)" >"$COSIGN_STAMP"
  step "cosign: $version installed in /usr/local/bin"
}

install_python_tools() {
  local have_spdx have_ntia
  have_spdx=$("$VENV/bin/pip" show spdx-tools 2>/dev/null | awk '/^Version:/ { print $2 }' || true)
  have_ntia=$("$VENV/bin/pip" show ntia-conformance-checker 2>/dev/null | awk '/^Version:/ { print $2 }' || true)
  if [ "$have_spdx" = "$SPDX_TOOLS_VERSION" ] && [ "$have_ntia" = "$NTIA_CHECKER_VERSION" ] &&
    [ -x /usr/local/bin/pyspdxtools ] && [ -x /usr/local/bin/sbomcheck ]; then
    step "spdx-tools $have_spdx and ntia-conformance-checker $have_ntia: present"
    return 0
  fi
  step "spdx-tools $SPDX_TOOLS_VERSION, ntia-conformance-checker $NTIA_CHECKER_VERSION: installing into $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  quiet /usr/bin/python3 -m venv "$VENV"
  quiet "$VENV/bin/pip" install -q --disable-pip-version-check \
    "spdx-tools==$SPDX_TOOLS_VERSION" "ntia-conformance-checker==$NTIA_CHECKER_VERSION"
  local tool
  for tool in pyspdxtools sbomcheck; do
    [ -x "$VENV/bin/$tool" ] || die "$VENV/bin/$tool is missing after the install"
    ln -sf "$VENV/bin/$tool" "/usr/local/bin/$tool"
  done
  quiet /usr/local/bin/pyspdxtools --help
  quiet /usr/local/bin/sbomcheck --help
  step "pyspdxtools and sbomcheck: linked into /usr/local/bin"
}

install_cosign
install_python_tools
