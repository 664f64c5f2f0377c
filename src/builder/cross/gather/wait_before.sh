# --- wait_before.sh: the start of the gathering script (src/builder/cross/gather/mod.rs) ---
# The container may start before the release is there (gather::start): the log of what runs
# until then goes to a file and is shown once the release is there (wait_after.sh), or when the
# script stops before that (the trap), so that it does not mix with the log of the compile.
: "${GO:?GO must name the file that lets the gathering go on}"
gather_dir=${GO%/*}
exec 4>&1 >"$gather_dir/early.log" 2>&1
trap 'cat "$gather_dir/early.log" >&4' EXIT
