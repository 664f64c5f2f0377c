# restore.sh: put before assemble.sh in the build script (it uses its say, die and use_cache).
# A new cache volume's first contents (RELEASE_OCI_RESTORE: --cache-repo's artifacts, sent with
# the sources; builder/restore.rs): unpacked under the volume's lock, and only into a volume that
# holds no build yet (another build of the project may have used it meanwhile). Their files are
# the build user's (this runs as that user); `built` is the second by which the restored compile
# had ended (settle_mtimes). A failure leaves the volume as new as it was.
restore_volume() {
  r=${RELEASE_OCI_RESTORE:-}
  [ -n "$r" ] || return 0
  [ -d "$r" ] || die "the build cache to restore did not arrive ($r is missing)"
  if [ -z "$use_cache" ]; then
    say "build cache: not restored (the volume is in use)"
    return 0
  fi
  if [ -e "$CACHE/src" ]; then
    say "build cache: the volume holds a build already: nothing restored"
    return 0
  fi
  restored=
  for f in deps app rel; do
    [ -f "$r/$f.tar.gz" ] || continue
    if ! tar -xzof "$r/$f.tar.gz" -C "$CACHE"; then
      rm -rf "$CACHE/src" "$CACHE/hex" "$CACHE/mix" "$CACHE/release" "$CACHE/task" "$CACHE/.built"
      say "build cache: could not unpack $r/$f.tar.gz into $CACHE: building from nothing"
      return 0
    fi
    restored="$restored $f"
  done
  if [ -f "$r/src.tar" ]; then
    tar -xof "$r/src.tar" -C "$CACHE" || die "cannot unpack the restored sources ($r/src.tar) into $CACHE"
  fi
  if [ -f "$r/built" ]; then cat "$r/built" >"$CACHE/.built" || die "cannot write $CACHE/.built"; fi
  say "build cache: restored into the new volume:$restored"
}
