# --- wait_after.sh: after the native tools (src/builder/cross/gather/mod.rs) ---
# What does not depend on the release: the image's installed packages (dpkg-query under
# emulation costs 0.1-0.2 s), for minimal_base.sh (DPKG_INSTALLED). Then the wait for the
# release's ELF files: the host uploads them with $GO last.
DPKG_INSTALLED=
if [ "${MINIMAL_BASE:-}" = 1 ] && [ -d /var/lib/dpkg/info ] && command -v dpkg-query >/dev/null 2>&1; then
  if dpkg-query -W -f '${binary:Package}\t${Version}\t${Architecture}\n' >"$gather_dir/installed"; then
    DPKG_INSTALLED=$gather_dir/installed
  fi
fi
while [ ! -e "$GO" ]; do sleep 0.05; done
trap - EXIT
exec 1>&4 2>&4 4>&-
cat "$gather_dir/early.log"
