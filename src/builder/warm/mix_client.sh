# mix_client.sh: the build's side of the warm builder's Mix server, put before assemble.sh in
# the build script (it uses its say and die). POSIX sh, as assemble.sh.
# The Mix server of a warm builder (WARM_MIX: its directory; warm/mix_server.exs has the
# protocol, docs/warm-builder.md the design): started by the first build that finds none, with
# the arguments of elixir ($@), then sent each build. Sets mix_status to the build's exit code,
# or to `unserved` when no server took the build: it is then built in a VM of its own.
mix_server_alive() {
  # Builtins where they do (the server writes its pid without a newline; a process each took
  # 2 ms of every build).
  pid=
  [ -f "$WARM_MIX/pid" ] && { IFS= read -r pid 2>/dev/null <"$WARM_MIX/pid" || [ -n "$pid" ]; } || return 1
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  [ -f "/proc/$pid/stat" ] && IFS= read -r state 2>/dev/null <"/proc/$pid/stat" || return 1
  state=${state##*) }
  case $state in Z* | X* | '') return 1 ;; esac
  grep -aq release_oci.serve "/proc/$pid/cmdline" 2>/dev/null
}
mix_server_start() {
  if [ -f "$WARM_MIX/server.log" ]; then mv "$WARM_MIX/server.log" "$WARM_MIX/server.log.old"; fi
  rm -rf "$WARM_MIX/queue" "$WARM_MIX/pid" && mkdir -p "$WARM_MIX/queue" || return 1
  cat /proc/self/environ >"$WARM_MIX/start.env" || return 1
  say "warm builder: starting its Mix server"
  # With none of this build's descriptors: its output (3), the build cache's lock (9), the log.
  WARM_MIX_DIR=$WARM_MIX elixir "$@" -S mix release_oci.serve </dev/null >"$WARM_MIX/server.log" 2>&1 \
    3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  started=$! n=0
  until [ -e "$WARM_MIX/pid" ]; do
    n=$((n + 1))
    if ! kill -0 "$started" 2>/dev/null || [ "$n" -gt 3000 ]; then
      kill "$started" 2>/dev/null || true
      say "warm builder: its Mix server did not start:"
      tail -n 20 "$WARM_MIX/server.log" || true
      return 1
    fi
    sleep 0.02
  done
}
mix_server() {
  if [ -e "$WARM_MIX/unusable" ]; then return 0; fi
  # Without arguments (the caller found it running): none is started.
  if ! mix_server_alive && { [ "$#" = 0 ] || ! { mix_server_start "$@" && mix_server_alive; }; }; then
    say "warm builder: building in a VM of its own"
    return 0
  fi
  req=${STAGE:-$WARM_MIX}/mix-request.$$
  rm -rf "$req" && mkdir -p "$req" && cat /proc/self/environ >"$req/env" || die "cannot write $req/env"
  # The server writes the log into fd 4, a copy of 2 that stays the log: dash points its own fd 2
  # elsewhere while a builtin with 2>... runs, so /proc/$$/fd/2 is not always the log.
  exec 4>&2
  # The server sends SIGUSR1 once the status is written, which cuts the wait short; meanwhile
  # this checks every 0.2 s that it still runs (three processes: checked every 10 ms, they took
  # CPU from the build on a small machine).
  trap : USR1
  printf '%s %s\n' "$$" "$req" >"$WARM_MIX/queue/.$$" && mv "$WARM_MIX/queue/.$$" "$WARM_MIX/queue/$$" ||
    die "cannot queue the build for the warm builder's Mix server"
  kill -USR2 "$pid" 2>/dev/null || true
  n=0
  until [ -e "$req/status" ]; do
    n=$((n + 1))
    if [ $((n % 4)) = 0 ] && ! mix_server_alive && [ ! -e "$req/status" ]; then
      rm -f "$WARM_MIX/queue/$$"
      exec 4>&-
      say "warm builder: its Mix server ended during the build; building again in a VM of its own"
      return 0
    fi
    sleep 0.05 </dev/null >/dev/null 2>&1 3>&- 4>&- 9>&- &
    wait $! || true
    kill $! 2>/dev/null || true
  done
  # The trap stays: the signal may come just after the status was seen (the default action
  # would end the script: exit code 138).
  exec 4>&-
  mix_status=$(cat "$req/status")
  rm -rf "$req"
  if [ "$mix_status" = unserved ]; then
    say "warm builder: its Mix server cannot write this build's log; building in a VM of its own (and so the next builds)"
    : >"$WARM_MIX/unusable"
  fi
}
