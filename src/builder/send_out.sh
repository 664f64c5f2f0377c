
# send_out.sh, the end of the script: with STREAM_OUT=1 (the Docker builder), OUT goes to
# release-oci as a tar on stdout (fd 3; the log is on stderr), entries relative to OUT. The
# builder unpacks it as it arrives, while the container is still running: no copying out of a
# stopped container afterwards, and the release in OUT may be hard links into the build cache.
#
# With the build cache, only what changed goes (src/builder/kept.rs has the protocol): the host
# keeps the tree it last received under a token, and passes it (OUT_HAVE) with the token of this
# build's (OUT_TOKEN). CACHE/sent keeps the listing of what was last sent (GNU find: path, type,
# mode, size, mtime, inode, link target of every file; compared with awk) and its token. When
# OUT_HAVE is that token, the tar holds every directory, the files whose line changed and
# .release-oci-delta: "base TOKEN", then the files that are gone. Otherwise, the whole of OUT.
nl=$(printf '\nx') nl=${nl%x} tab=$(printf '\t')
# The listing of OUT in $1, in one pass of GNU find: a line for every entry but the directories
# (path, type, mode, size, mtime, inode, link target), the directories in $1.dirs. Fails when a
# name has a tab or a newline (a line could not hold it): then the whole tree goes, and no record.
send_listing() {
  (cd "$OUT" && find . \( -type d -fprint "$1.dirs" \) -o \( -printf '%p\t%y %m %s %T@ %i %l\n' \) , \
    \( \( -name "*$tab*" -o -name "*$nl*" -o -lname "*$nl*" \) -fprint "$1.odd" \)) >"$1" 2>/dev/null &&
    [ ! -s "$1.odd" ] && return 0
  rm -f "$1" "$1.dirs" "$1.odd"
  return 1
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
    rm -f "$sent/token"
    # One awk for the comparison: the files whose line is new or changed (sent/changed), and the
    # description: "base TOKEN", then the files the last listing has and this one does not.
    : >"$sent/changed"
    counts=$(LC_ALL=C awk -F "$tab" -v base="$OUT_HAVE" -v delta="$OUT/.release-oci-delta" -v changed="$sent/changed" '
      NR == FNR { had[$1] = $0; next }
      { all++; if (!($1 in had) || had[$1] != $0) { print $1 > changed; n++ }; delete had[$1] }
      END { print "base " base > delta; for (p in had) print p > delta; close(delta); close(changed); print n + 0, all + 0 }
    ' "$sent/list" "$sent/list.new") && { cat "$sent/list.new.dirs" "$sent/changed" && printf './.release-oci-delta\n'; } >"$sent/send" ||
      die "cannot list what changed in $OUT"
    say "output: ${counts% *} of ${counts#* } files changed since the last build, only those sent"
    tar --no-recursion -cf - -C "$OUT" -T "$sent/send" >&3 || die "cannot send what changed in $OUT to release-oci"
    rm -f "$OUT/.release-oci-delta" "$sent/changed" "$sent/send"
  else
    rm -f "$sent/token"
    tar -cf - -C "$OUT" . >&3 || die "cannot send $OUT to release-oci (tar failed: the builder image needs tar)"
  fi
  rm -f "$sent/list.new.dirs" "$sent/list.new.odd"
  mv "$sent/list.new" "$sent/list" && printf '%s\n' "$OUT_TOKEN" >"$sent/token" || die "cannot write $sent"
}
# Moves the releases assemble_mix.exs lent to OUT back into the release cache (RELEASE_CACHE/.lent:
# "OUT-PATH<TAB>CACHED-PATH" lines), once OUT is sent or the build ends. One that cannot be moved
# back is not in the cache: the next build assembles it in full.
return_lent() {
  lent=${RELEASE_CACHE:-}/.lent
  [ -n "${RELEASE_CACHE:-}" ] && [ -f "$lent" ] || return 0
  while IFS=$tab read -r lent_from lent_to; do
    if [ -n "$lent_from" ] && [ -n "$lent_to" ] && [ ! -e "$lent_to" ]; then mv "$lent_from" "$lent_to" || true; fi
  done <"$lent"
  rm -f "$lent"
}
# Removes the earlier outputs assemble.sh moved aside (and any a stopped build left), in the
# background, holding none of the build's descriptors: its output, the build cache's lock.
sweep_old_outputs() {
  [ -e "$1" ] || return 0
  (rm -rf "$@" </dev/null >/dev/null 2>&1 3>&- 4>&- 9>&- &)
}
if [ "${STREAM_OUT:-}" = 1 ]; then
  trap return_lent EXIT
  send_out
  return_lent
  trap - EXIT
  if [ -n "${CACHE:-}" ] && [ -n "${use_cache:-}" ]; then sweep_old_outputs "$CACHE"/out.old.*; fi
fi
