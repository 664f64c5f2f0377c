# exec.sh: one build in a warm builder (docs/warm-builder.md), run as root by `docker exec`; $1
# is the build script (ASSEMBLE_SH), $2 this script. REQ is this build's directory, STAGE its
# scratch directory in the tmpfs, OUT its output (or the cache volume's, as in a cold build). As
# root (which has no capability but CHOWN, SETUID and SETGID: it cannot write BUILD_USER's files)
# it waits for the container's set-up (idle.sh's WARM_DIR/ready; it made WARM_REQS, BUILD_USER's)
# and runs itself again as BUILD_USER ($3: as-user), which unpacks SRC_BYTES of stdin (a tar of
# the sources' tar SRC_TAR and what goes with it, into REQ; its last entry SRC_SEAL says it
# arrived whole), runs the build holding WARM_DIR/busy shared (the container does not end
# meanwhile), then removes REQ and STAGE. Its exit code is the build's. Nothing here writes to
# stdout: it carries OUT (send_out.sh).
set -eu
if [ "${3:-}" != as-user ]; then
  n=0
  while [ ! -e "$WARM_DIR/ready" ]; do
    n=$((n + 1))
    if [ "$n" -gt 1200 ]; then printf 'error: the warm builder did not finish its set-up\n' >&2; exit 1; fi
    sleep 0.05
  done
  # The log's pipe (the engine made it, root's): the Mix server writes this build's log into it.
  # No redirection on this line: dash would make it this shell's own fd 2 meanwhile.
  if [ -p "/proc/$$/fd/2" ]; then chown "$BUILD_USER" "/proc/$$/fd/2" || true; fi
  HOME=$BUILD_HOME MIX_HOME=$BUILD_HOME/.mix HEX_HOME=$BUILD_HOME/.hex
  export HOME MIX_HOME HEX_HOME
  # build_user.sh added the CA to the bundle when the container started; a build needs the variables.
  if [ -n "${RELEASE_OCI_CA:-}" ]; then
    bundle=/etc/ssl/certs/ca-certificates.crt
    SSL_CERT_FILE=$bundle HEX_CACERTS_PATH=$bundle GIT_SSL_CAINFO=$bundle CURL_CA_BUNDLE=$bundle
    NODE_EXTRA_CA_CERTS=$RELEASE_OCI_CA
    export SSL_CERT_FILE HEX_CACERTS_PATH GIT_SSL_CAINFO CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS
  fi
  exec setpriv --reuid="${BUILD_USER%%:*}" --regid="${BUILD_USER#*:}" --clear-groups /bin/sh -c "$2" exec.sh "$1" "$2" as-user
fi
touch "$WARM_DIR/last"
mkdir -p "$STAGE"
# SRC_BYTES of it, not up to its end: an engine reached through ssh (dial-stdio) may never pass
# the end of the exec's input on.
if ! head -c "$SRC_BYTES" | tar -xf - -C / || [ ! -e "$SRC_SEAL" ]; then
  rm -rf "$REQ" "$STAGE"
  printf 'error: the sources did not arrive whole in %s\n' "$REQ" >&2
  exit 1
fi
exec </dev/null
# The Mix server's directory (assemble.sh, mix_server.exs): one VM with the project loaded serves the builds.
WARM_MIX=$WARM_DIR/mix
export WARM_MIX
status=0
flock -s "$WARM_DIR/busy" /bin/sh -c "$1" assemble.sh || status=$?
rm -rf "$REQ" "$STAGE"
touch "$WARM_DIR/last"
exit "$status"
