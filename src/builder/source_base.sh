# source_base.sh: the sources a warm builder last received, kept in the build cache volume
# (src/builder/source_delta.rs has the protocol, docs/build-cache.md the design), put before
# assemble.sh (it uses its say). POSIX sh.
# unpack_base BASE: SRC_TAR is the whole source tar, or (SRC_DELTA names its description: "base
# TOKEN", then the paths gone) the changes to the sources BASE holds under TOKEN (BASE.token).
# Either way BASE then holds the sources, under SRC_TOKEN. Changes to other sources exit 75.
unpack_base() {
  base=$1
  if [ -n "${SRC_DELTA:-}" ]; then
    want=$(sed -n '1s/^base //p' "$SRC_DELTA")
    if [ -z "$want" ] || [ "$(cat "$base.token" 2>/dev/null)" != "$want" ]; then
      say "sources: this builder does not have the sources the changes sent apply to"
      exit 75
    fi
    rm -f "$base.token"
    # Gone first (a file may have become a directory), then the directories left empty (a
    # directory may have become a file), then what changed.
    if ! (cd "$base" && sed 1d "$SRC_DELTA" | tr '\n' '\0' | xargs -0 rm -rf) ||
      ! find "$base" -mindepth 1 -depth -type d -empty -delete ||
      ! tar -xof "$SRC_TAR" -C "$base"; then
      rm -rf "$base"
      say "sources: cannot apply the changes sent to $base"
      exit 75
    fi
    tar -tf "$SRC_TAR" | sed 's|^|./|' >"$base.sent" || rm -f "$base.sent"
    gone=$(($(wc -l <"$SRC_DELTA") - 1))
    say "sources: $(tar -tvf "$SRC_TAR" | grep -vc '^d') changed files received, $((gone + 0)) gone"
  else
    rm -f "$base.token" "$base.sent"
    rm -rf "$base" && mkdir -p "$base" && tar -xof "$SRC_TAR" -C "$base" ||
      die "cannot unpack the sources ($SRC_TAR) into $base"
  fi
  printf '%s\n' "$SRC_TOKEN" >"$base.token" || die "cannot write $base.token"
}

# How a file is when it is neither read nor written: size, inode, mtime and ctime (ns), type and
# mode. Any write changes the ctime.
SYNC_STAT='%n\t%s %i %.9Y %.9Z %f\n'

# record_sync TO LIST: after a warm build's sync (SRC_TOKEN) into TO, how each source file there
# is (LIST.stat: "base TOKEN", then SYNC_STAT lines of LIST.wanted). Anything that fails leaves
# none, or fewer lines: never a line that does not hold.
record_sync() {
  rm -f "$2.stat"
  [ -n "${SRC_TOKEN:-}" ] && [ -s "$2.wanted" ] || return 0
  if { printf 'base %s\n' "$SRC_TOKEN" &&
    (cd "$1" && tr '\n' '\0' <"$2.wanted" | xargs -0 stat --printf "$SYNC_STAT" | LC_ALL=C sort); } \
    >"$2.stat.new" 2>/dev/null; then
    mv "$2.stat.new" "$2.stat"
  else
    rm -f "$2.stat.new"
  fi
}

# unchanged_copies TO LIST: whether the last sync's record (LIST.stat) is of the sources this
# build's changes apply to (SRC_DELTA's base); then LIST.same: the files of LIST.check that are
# in TO as that sync left them and that the changes did not touch (base.sent): their contents
# are the same.
unchanged_copies() {
  [ -n "${SRC_DELTA:-}" ] && [ -f "${base:-}.sent" ] && [ -s "$2.stat" ] || return 1
  recorded= sent_base=
  IFS= read -r recorded <"$2.stat" && IFS= read -r sent_base <"$SRC_DELTA" && [ "$recorded" = "$sent_base" ] || return 1
  (cd "$1" && tr '\n' '\0' <"$2.check" | xargs -0 stat --printf "$SYNC_STAT" 2>/dev/null | LC_ALL=C sort) >"$2.stat.now"
  sed 1d "$2.stat" | LC_ALL=C comm -12 - "$2.stat.now" | cut -f1 | LC_ALL=C sort >"$2.kept" || return 1
  LC_ALL=C sort "$base.sent" | LC_ALL=C comm -23 "$2.kept" - >"$2.same"
}
