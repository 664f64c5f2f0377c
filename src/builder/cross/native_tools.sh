# --- native_tools.sh: the start of the gathering script (src/builder/cross/native_tools.rs) ---
# With NATIVE_BUSYBOX (a static busybox of the machine the engine runs on, uploaded beside the
# release's ELF files), the shell tools minimal_base.sh starts by the hundred run natively instead
# of under emulation (0.1-0.2 s each there): their applets come first on PATH (and this shell is
# that busybox's when it runs here: gather.rs). What must be the target's stays the target's: its
# loader (ldd), its busybox (the applets listed for the image), perl and dpkg-query. When that
# busybox cannot run here, or lacks an applet, the target's tools are used, as without it.
if [ -n "${NATIVE_BUSYBOX:-}" ]; then
  nt_bin=${NATIVE_BUSYBOX%/*}/bin
  nt_err=${NATIVE_BUSYBOX%/*}/cp.err
  # shellcheck disable=SC2016
  if "$NATIVE_BUSYBOX" sh -c '
      bb=$1 dir=$2
      shift 2
      have=$("$bb" --list) || exit 1
      "$bb" mkdir -p "$dir" || exit 1
      for a in "$@"; do
        case "
$have
" in
          *"
$a
"*) "$bb" ln -s "$bb" "$dir/$a" || exit 1 ;;
        esac
      done' native-tools "$NATIVE_BUSYBOX" "$nt_bin" \
    awk basename cat cp cut du find grep head ln mkdir od paste readlink rm sed sha256sum sort tr wc xargs 2>/dev/null; then
    PATH=$nt_bin:$PATH
    NATIVE_TOOLS_ON=1
    export PATH
    if [ -L "$nt_bin/cp" ]; then
      # busybox cp -p says it cannot keep a file's owner, which an unprivileged copy never can
      # (GNU cp -p is silent about it): that line is left out, everything else it says is kept.
      cp() {
        "$nt_bin/cp" "$@" 2>"$nt_err" && nt_rc=0 || nt_rc=$?
        grep -v "^cp: can't preserve ownership of " "$nt_err" >&2 || :
        return "$nt_rc"
      }
    fi
    say "minimal base: the shell tools run natively ($(find "$nt_bin" -type l | wc -l | tr -d ' ') busybox applets of this engine's machine); the target's loader, busybox, perl and dpkg-query under emulation"
  else
    say "minimal base: the native busybox does not run here; the target's own tools are used"
  fi
fi
