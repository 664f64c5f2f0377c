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
    gone=$(sed 1d "$SRC_DELTA" | wc -l)
    say "sources: $(tar -tvf "$SRC_TAR" | grep -vc '^d') changed files received, $((gone + 0)) gone"
  else
    rm -f "$base.token"
    rm -rf "$base" && mkdir -p "$base" && tar -xof "$SRC_TAR" -C "$base" ||
      die "cannot unpack the sources ($SRC_TAR) into $base"
  fi
  printf '%s\n' "$SRC_TOKEN" >"$base.token" || die "cannot write $base.token"
}
