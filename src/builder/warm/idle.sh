# idle.sh: what a warm builder runs while it waits for builds (docs/warm-builder.md), started by
# build_user.sh as BUILD_USER once the container is set up (HOME copied, the CA added, /build
# handed over). Builds come as `docker exec`s of exec.sh, never through here. The container ends
# (and the engine removes it: it was made with auto-remove) once no build has started or ended
# for WARM_IDLE seconds (the newest of WARM_DIR/last, which exec.sh touches, and of WARM_REQS,
# where each build's sources arrive) and none holds WARM_DIR/busy (exec.sh holds it shared).
set -eu
: "${WARM_DIR:?}" "${WARM_REQS:?}" "${WARM_IDLE:?}"
if ! command -v setpriv >/dev/null 2>&1 || ! command -v flock >/dev/null 2>&1; then
  printf 'warm builder: the builder image needs setpriv and flock (util-linux)\n' >&2
  exit 3
fi
mkdir -p "$WARM_DIR" "$WARM_REQS"
: >"$WARM_DIR/busy"
touch "$WARM_DIR/last"
: >"$WARM_DIR/ready"
while :; do
  sleep 1
  now=$(date +%s)
  last=$(stat -c %Y "$WARM_DIR/last" "$WARM_REQS" 2>/dev/null | sort -n | tail -n 1)
  if [ $((now - ${last:-0})) -ge "$WARM_IDLE" ] && flock -n -x "$WARM_DIR/busy" true; then
    exit 0
  fi
done
