
# send_out.sh, the end of the script: with STREAM_OUT=1 (the Docker builder), OUT goes to
# release-oci as a tar on stdout (fd 3; the log is on stderr), entries relative to OUT. The
# builder unpacks it as it arrives, while the container is still running: no copying out of a
# stopped container afterwards, and the release in OUT may be hard links into the build cache.
#
# With the build cache, only what changed goes (src/builder/kept.rs has the protocol): the host
# keeps the tree it last received under a token, and passes it (OUT_HAVE) with the token of this
# build's (OUT_TOKEN). CACHE/sent keeps the listing of what was last sent (GNU find: path, type,
# mode, size, mtime, inode, link target of every file) and its token. When OUT_HAVE is that token,
# the tar holds every directory, the files whose line changed and .release-oci-delta: "base
# TOKEN", then the files that are gone. Otherwise, the whole of OUT.
send_listing() {
  (cd "$OUT" && find . ! -type d -printf '%p\t%y %m %s %T@ %i %l\n') >"$1" 2>/dev/null || return 1
  # Names with a tab or a newline would not parse: the whole tree then, and no record.
  nl=$(printf '\nx') nl=${nl%x} tab=$(printf '\t')
  [ -z "$(cd "$OUT" && find . \( -name "*$tab*" -o -name "*$nl*" -o -lname "*$nl*" \) -print | head -n 1)" ] || return 1
  LC_ALL=C sort -o "$1" "$1"
}
send_out() {
  sent=${CACHE:-}/sent
  if [ -z "${use_cache:-}" ] || [ -z "${OUT_TOKEN:-}" ] || [ "$OUT" != "$CACHE/out" ] ||
    ! tar --no-recursion -cf /dev/null -T /dev/null 2>/dev/null || ! mkdir -p "$sent" ||
    ! send_listing "$sent/list.new"; then
    # The record, if any, still names what the host kept (this build keeps nothing).
    tar -cf - -C "$OUT" . >&3 || die "cannot send $OUT to release-oci (tar failed: the builder image needs tar)"
    return 0
  fi
  if [ -n "${OUT_HAVE:-}" ] && [ -s "$sent/list" ] && [ "$(cat "$sent/token" 2>/dev/null)" = "$OUT_HAVE" ]; then
    cut -f1 "$sent/list" | LC_ALL=C sort >"$sent/had"
    cut -f1 "$sent/list.new" | LC_ALL=C sort >"$sent/has"
    { printf 'base %s\n' "$OUT_HAVE" && LC_ALL=C comm -23 "$sent/had" "$sent/has"; } >"$OUT/.release-oci-delta"
    LC_ALL=C comm -13 "$sent/list" "$sent/list.new" | cut -f1 >"$sent/changed" &&
      { (cd "$OUT" && find . -type d -print) && cat "$sent/changed" && printf './.release-oci-delta\n'; } >"$sent/send" ||
      die "cannot list what changed in $OUT"
    rm -f "$sent/token"
    say "output: $(wc -l <"$sent/changed") of $(wc -l <"$sent/list.new") files changed since the last build, only those sent"
    tar --no-recursion -cf - -C "$OUT" -T "$sent/send" >&3 || die "cannot send what changed in $OUT to release-oci"
    rm -f "$OUT/.release-oci-delta" "$sent/had" "$sent/has" "$sent/changed" "$sent/send"
  else
    rm -f "$sent/token"
    tar -cf - -C "$OUT" . >&3 || die "cannot send $OUT to release-oci (tar failed: the builder image needs tar)"
  fi
  mv "$sent/list.new" "$sent/list" && printf '%s\n' "$OUT_TOKEN" >"$sent/token" || die "cannot write $sent"
}
# Removes the earlier outputs assemble.sh moved aside (and any a stopped build left), in the
# background, holding none of the build's descriptors: its output, the build cache's lock.
sweep_old_outputs() {
  [ -e "$1" ] || return 0
  (rm -rf "$@" </dev/null >/dev/null 2>&1 3>&- 4>&- 9>&- &)
}
if [ "${STREAM_OUT:-}" = 1 ]; then
  send_out
  if [ -n "${CACHE:-}" ] && [ -n "${use_cache:-}" ]; then sweep_old_outputs "$CACHE"/out.old.*; fi
fi
