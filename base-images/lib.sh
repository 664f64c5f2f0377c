# shellcheck shell=bash
# base-images/lib.sh: what the image recipes share; sourced (bash) by build-local.sh,
# musl/build.sh and arm64-interp-erts.sh. install_missing needs the caller's `run NAME CMD...`.

# install_missing PKG...: installs those of PKG that are not installed on this machine (apt's
# default archive, non-interactive, waiting for apt's lock), as the step `apt-install`.
install_missing() {
  local p missing=()
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    run apt-install env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
      --no-install-recommends "${missing[@]}"
  fi
}

# trim_rootfs DIR: removes from a root file system what an image never needs (apt's caches and
# lists, documentation, logs, /tmp and /dev contents, debootstrap's leftovers), keeping the dpkg
# status so scanners can read the package list. debootstrap copies the host's resolv.conf and
# hostname in: the engine provides both, so they are emptied and reset.
trim_rootfs() {
  local dir=${1:?trim_rootfs needs a directory}
  rm -rf "${dir:?}"/var/cache/apt/archives/*.deb "${dir:?}"/var/cache/apt/*.bin \
         "${dir:?}"/var/lib/apt/lists/* "${dir:?}"/usr/share/doc/* "${dir:?}"/usr/share/man/* \
         "${dir:?}"/usr/share/info/* "${dir:?}"/var/log/* "${dir:?}"/tmp/* "${dir:?}"/dev/* \
         "${dir:?}"/debootstrap
  : >"$dir/etc/resolv.conf"
  echo localhost >"$dir/etc/hostname"
  chmod 1777 "$dir/tmp"
}
