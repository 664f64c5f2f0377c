# shellcheck shell=bash
# base-images/lib.sh: what the image recipes share; sourced (bash) by build-local.sh and
# musl/build.sh. The caller defines `log MESSAGE...` (its prefix) and,
# for `run`, sets RUN_LOGS to the directory of the steps' logs.

# run NAME CMD...: one step of a recipe. CMD (a program or a function of the caller) runs in a
# subshell with errexit and pipefail on, its output in $RUN_LOGS/NAME.log; the first failing
# command ends the step, and the recipe stops with the step's name, its exit code and the log's
# tail. Lines of the log that start with `note: ` are repeated after the step.
#
# Not `"$@" || die`, nor `if ! "$@"`: bash ignores errexit inside anything that runs left of
# `||`/`&&` or as an `if`/`while` condition, functions and subshells included, so a failed `cd`
# inside such a step went on in the wrong directory. Here the subshell is a plain command with
# errexit toggled around it. Do not call `run` itself as a condition or left of `||` either.
run() {
  local name=$1 start=$SECONDS rc had_e=; shift
  local file=${RUN_LOGS:?run needs RUN_LOGS}/$name.log
  [[ $- == *e* ]] && had_e=1
  log "$name ..."
  set +e
  (set -eo pipefail; "$@") >"$file" 2>&1
  rc=$?
  [ -z "$had_e" ] || set -e
  if [ "$rc" != 0 ]; then
    tail -n 30 "$file" >&2
    log "$name failed (exit $rc; full log: $file)"
    exit 1
  fi
  local line
  while IFS= read -r line; do log "$name: ${line#note: }"; done < <(grep '^note: ' "$file" || true)
  log "$name: $((SECONDS - start))s"
}

# private_apt DIR: an apt state of its own in DIR, with this machine's Debian archives as `deb`
# and `deb-src` entries (copied and rewritten with sed, so no archive is named here), for
# `apt-get source` and `apt-get download` without touching the system's apt. Sets the array APT
# to the apt-get command that uses it; `"${APT[@]}" update` is the caller's.
private_apt() {
  local dir=${1:?private_apt needs a directory} f
  rm -rf "$dir"
  mkdir -p "$dir/parts" "$dir/lists/partial" "$dir/cache/archives/partial"
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    cp "$f" "$dir/parts/"
    sed 's/^Types: deb$/Types: deb-src/' "$f" >"$dir/parts/src-$(basename "$f")"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    grep '^deb ' "$f" >"$dir/parts/bin-$(basename "$f")" || true
    sed -n 's/^deb /deb-src /p' "$f" >"$dir/parts/src-$(basename "$f")"
  done
  shopt -u nullglob
  if ! grep -qs '^Types: deb-src$\|^deb-src ' "$dir"/parts/src-*; then
    echo "no Debian archive in /etc/apt/sources.list{,.d/} to derive deb-src lines from" >&2
    return 1
  fi
  APT=(apt-get -q -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$dir/parts"
       -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
}

# fetch_source SUITE PKG...: downloads each Debian source package PKG into the current directory
# with "${APT[@]}". When the newest version cannot be had (an update whose index names files the
# archive does not serve: a 404 from the security archive), its partial files are removed and
# SUITE's own version is downloaded instead. Each PKG ends in a `note:` line with the version
# used and where it came from; a PKG with no version at all fails.
fetch_source() {
  local suite=${1:?fetch_source needs a suite} pkg from version; shift
  for pkg in "$@"; do
    from=newest
    if ! "${APT[@]}" source --download-only "$pkg"; then
      echo "$pkg: the newest source could not be downloaded; trying $suite's own version"
      rm -f "${pkg}"_*
      "${APT[@]}" source --download-only "$pkg/$suite"
      from="$suite's own, the newest could not be downloaded"
    fi
    version=$(sed -n 's/^Version: //p' "${pkg}"_*.dsc | head -n 1)
    [ -n "$version" ] || { echo "$pkg: no ${pkg}_*.dsc after the download"; return 1; }
    echo "note: source $pkg $version ($from)"
  done
}

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
