
# send_out.sh, the end of the script: with STREAM_OUT=1 (the Docker builder), OUT goes to
# release-oci as a tar on stdout (fd 3; the log is on stderr), entries relative to OUT. The
# builder unpacks it as it arrives, while the container is still running: no copying out of a
# stopped container afterwards, and the release in OUT may be hard links into the build cache.
if [ "${STREAM_OUT:-}" = 1 ]; then
  tar -cf - -C "$OUT" . >&3 || die "cannot send $OUT to release-oci (tar failed: the builder image needs tar)"
fi
