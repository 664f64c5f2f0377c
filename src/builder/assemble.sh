# assemble.sh: assembles the release(s) of the project in $SRC into $OUT: `mix release` for mix
# projects, `rebar3 as PROFILE release` (relx) for rebar3 ones. release-oci runs it with `sh -c`
# in the builder container (SRC=/build/src OUT=/build/out) and on the host (in a temporary copy
# of the sources), so it must stay POSIX sh.
#
# Environment:
#   SRC           the project sources; _build and deps are created in there
#   OUT           created (with STREAM_OUT and the build cache: CACHE/out instead); receives
#                   rel/       the release when one was assembled; rel/NAME/ for each when several
#                   apps       lines "own APP" / "dep APP": the project's own applications (the app,
#                              the umbrella's apps, rebar3's project apps) and its dependencies
#                              (mix's deps_paths, rebar3's _build libs and rebar.lock)
#                   releases   mix: lines "NAME configured|inferred APP,APP...", the releases chosen
#                   licenses   lines "APP<TAB>LICENCE<TAB>...": the licences each dependency declares
#                              (Hex metadata: deps/NAME/hex_metadata.config; rebar3 also the
#                              `licenses` of its .app), for the SBOM (src/supply/builder_out.rs)
#                   tini       a static tini
#   PROJECT_KIND  mix or rebar3 (default: mix when there is a mix.exs, else rebar3)
#   MIX_ENV       the Mix environment (default: prod)
#   PROFILE       the rebar3 profile (default: prod)
#   RELEASE_NAME  the release to assemble, or `all` (default: the project's default release)
#   TINI          the tini binary to copy (default: the first of the usual places that exists)
#   CACHE         a directory kept between builds (the Docker builder's cache volume): the
#                 sources are synced into CACHE/src and built there, beside the _build and deps
#                 of earlier builds; unset: the build starts from SRC alone
#   STREAM_OUT    1: the log goes to stderr, and OUT is written to stdout as a tar at the end
#   SRC_TAR       the sources as a tar file, to unpack into SRC (or STAGE/src) first
#   STAGE         a scratch directory (tmpfs) for the sources that the build cache copies from
#   SRC_TOKEN     (a warm build) unpack the sources into CACHE/src.base, kept under this token
#   SRC_DELTA     with SRC_TOKEN: SRC_TAR holds only the changes (source_base.sh)
#   RELEASE_OCI_RESTORE  with CACHE: a directory of --cache-repo's artifacts for a new volume
#                 (deps/app/rel.tar.gz, src.tar, built), unpacked into it first (restore_volume)
#   OUT_HAVE, OUT_TOKEN  what the host kept of the last output, and this one's (send_out.sh)
#   RELEASE_OCI_INPUTS, RELEASE_OCI_SECRETS, RELEASE_OCI_SECRET_ENV, RELEASE_OCI_HEX_REPOS,
#   RELEASE_OCI_ASSETS  the builder's inputs (docs/builder-inputs.md, src/builder/input_files.rs)
set -eu
# One output stream for the log, and nothing may ever wait for input (mix asks before installing
# Hex). STREAM_OUT=1 (the Docker builder): the log goes to stderr, and stdout (fd 3 here) carries
# nothing but OUT as a tar, sent at the very end (send_out.sh) and read while the container runs.
if [ "${STREAM_OUT:-}" = 1 ]; then exec 3>&1 1>&2 </dev/null; else exec 2>&1 </dev/null; fi

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*"; exit 1; }

: "${SRC:?SRC must name the project source directory}"
: "${OUT:?OUT must name the output directory}"
MIX_ENV=${MIX_ENV:-prod}
PROFILE=${PROFILE:-prod}
RELEASE_NAME=${RELEASE_NAME:-}
LANG=C.UTF-8
export MIX_ENV LANG PROFILE RELEASE_NAME OUT

# Makes $2 a copy of the tree $1 in which unchanged files keep their old mtime: a file is copied
# (new mtime) only when it is new or its content, link target or exec bit differs, so mix and
# rebar3 recompile just what changed. Files $1 does not have are removed, and then empty
# directories, except in the build outputs (_build and deps next to a mix.exs, _build next to a
# rebar.config), which are the point of the cache. $3: a scratch file prefix.
sync_tree() {
  from=$1 to=$2 list=$3 copy_started=
  mkdir -p "$to"
  (cd "$from" && find . ! -type d -print) >"$list.want"
  # A fixed number of processes, not a few per file (a loop of cmp and cp took seconds for a
  # 600-file project): shell builtins sort the files into "copy" (new, or another type or exec
  # bit) and "check" (a regular file on both sides), one md5sum per tree compares the contents of
  # the latter, and one tar pipe copies (extracted with new mtimes, like cp).
  : >"$list.copy"
  : >"$list.check"
  while IFS= read -r f; do
    s=$from/${f#./} d=$to/${f#./}
    if [ -L "$s" ]; then
      if [ -L "$d" ] && [ "$(readlink "$s")" = "$(readlink "$d")" ]; then continue; fi
      printf '%s\n' "$f" >>"$list.copy"
    elif [ -f "$d" ] && [ ! -L "$d" ] && { [ -x "$s" ] && [ -x "$d" ] || { [ ! -x "$s" ] && [ ! -x "$d" ]; }; }; then
      printf '%s\n' "$f" >>"$list.check"
    else
      printf '%s\n' "$f" >>"$list.copy"
    fi
  done <"$list.want"
  # A warm build's files that the last sync left as they are and the host did not send this time
  # are the same: not read again (source_base.sh). The record is this sync's to write.
  if [ -s "$list.check" ] && unchanged_copies "$to" "$list"; then
    LC_ALL=C sort "$list.check" | LC_ALL=C comm -23 - "$list.same" >"$list.check.new"
    mv "$list.check.new" "$list.check"
    say "build cache: $(wc -l <"$list.same") files as the last build left them and not sent again: not compared"
  fi
  rm -f "$list.stat" "$list.stat.now" "$list.kept" "$list.same"
  if [ -s "$list.check" ]; then
    (cd "$from" && tr '\n' '\0' <"$list.check" | xargs -0 md5sum) | LC_ALL=C sort >"$list.sum.from"
    (cd "$to" && tr '\n' '\0' <"$list.check" | xargs -0 md5sum) | LC_ALL=C sort >"$list.sum.to"
    if grep -q '^\\' "$list.sum.from" "$list.sum.to"; then
      # md5sum escapes names with a backslash or a newline: copy every file rather than parse them.
      cat "$list.check" >>"$list.copy"
    else
      LC_ALL=C comm -23 "$list.sum.from" "$list.sum.to" | sed 's/^[^ ]*  //' >>"$list.copy"
    fi
  fi
  changed=0
  if [ -s "$list.copy" ]; then
    (cd "$to" && tr '\n' '\0' <"$list.copy" | xargs -0 rm -rf)
    # One pipe, no archive written in between ($list.fail: the archiving side failed).
    rm -f "$list.fail"
    copy_started=$(date +%s)
    { (cd "$from" && tar cf - -T "$list.copy") || : >"$list.fail"; } | (cd "$to" && tar xmf -) ||
      die "cannot copy the changed sources into $to"
    [ ! -e "$list.fail" ] || die "cannot archive the changed sources"
    changed=$(wc -l <"$list.copy")
    changed=$((changed + 0))
  fi
  # The build outputs to keep, as find arguments: -path ./_build -prune -o ...
  (cd "$to" && find . -type d \( -name _build -o -name deps \) -prune -print) >"$list.outputs"
  set --
  while IFS= read -r c; do
    parent=$to/${c#./}
    parent=${parent%/*}
    if [ -f "$parent/mix.exs" ] || { [ "${c##*/}" = _build ] && [ -f "$parent/rebar.config" ]; }; then
      set -- "$@" -path "$c" -prune -o
    fi
  done <"$list.outputs"
  (cd "$to" && find . "$@" ! -type d -print) | LC_ALL=C sort >"$list.have"
  LC_ALL=C sort "$list.want" >"$list.sorted"
  removed=0
  LC_ALL=C comm -23 "$list.have" "$list.sorted" >"$list.gone"
  # One rm and one rmdir for all (a process per file or directory took a tenth of a second).
  removed=$(wc -l <"$list.gone")
  removed=$((removed + 0))
  (cd "$to" && tr '\n' '\0' <"$list.gone" | xargs -0 rm -f) || die "cannot remove the sources gone from $to"
  # Deepest first; a directory that still holds something stays (rmdir fails on it, goes on).
  (cd "$to" && find . "$@" -type d ! -name . -print | LC_ALL=C sort -r | tr '\n' '\0' | xargs -0 rmdir 2>/dev/null) ||
    true
  mv "$list.copy" "$list.copied"
  mv "$list.sorted" "$list.wanted"
  rm -f "$list.want" "$list.outputs" "$list.have" "$list.gone" "$list.check" \
    "$list.sum.from" "$list.sum.to" "$list.fail"
  say "build cache: $changed changed or new files copied into $to, $removed removed"
}

# Mix and rebar3 take a source for changed when its mtime is after their last compile's start,
# in whole seconds (Mix: or its size differs): a same-size edit copied within the second of the
# last compile would go unseen. CACHE/.built holds the second by which the last build's compile
# had ended (not a number while a build runs: then the second this build took the cache is the
# bound). A file's mtime comes from the kernel's coarse clock, a few milliseconds behind `date`:
# a copy in the first milliseconds of the next second may still carry the last one (seen in 6 of
# 40 tries). So when the copy ($2: the files, relative to $1) started within that second or the
# next, this waits until `date` is past it and sets the copied files' mtime to that second.
settle_mtimes() {
  [ -s "$2" ] && [ -n "$copy_started" ] && [ -d "$1/_build" ] || return 0
  last=$(cat "$CACHE/.built" 2>/dev/null) || last=
  case $last in '' | *[!0-9]*) last=$locked_at ;; esac
  [ "$copy_started" -le $((last + 1)) ] || return 0
  now=$(date +%s)
  while [ "$now" -le "$last" ]; do
    sleep 0.02
    now=$(date +%s)
  done
  (cd "$1" && tr '\n' '\0' <"$2" | xargs -0 touch -c -h -d "@$now") || die "cannot touch the copied sources in $1"
  say "build cache: copied within the second of the last compile: mtimes set to the next one"
}

# The build cache: one build at a time uses it (a lock held until this script ends); another
# build of the same project meanwhile builds without it, from SRC.
use_cache=
if [ -n "${CACHE:-}" ]; then
  mkdir -p "$CACHE"
  if ! command -v flock >/dev/null 2>&1; then
    say "build cache: no flock in the builder image, building without the cache"
  elif exec 9>"$CACHE/lock" && flock -n 9; then
    use_cache=1 locked_at=$(date +%s)
  else
    say "build cache: in use by another build of this project, building without it"
  fi
fi

# A new cache volume's first contents (restore.sh).
restore_volume

# The sources as one tar file (the Docker builder): unpacked by tar here, which is much faster
# than the engine unpacking many small files into the container. With the build cache they are
# only read, by sync_tree: then into STAGE (a tmpfs) when there is one.
# A warm build (SRC_TOKEN) keeps them in the volume, and may have been sent only what changed
# (source_base.sh).
if [ -n "${SRC_TAR:-}" ]; then
  if [ -n "$use_cache" ] && [ -n "${SRC_TOKEN:-}" ]; then
    SRC=$CACHE/src.base
    unpack_base "$SRC"
  else
    if [ -n "$use_cache" ] && [ -n "${STAGE:-}" ]; then SRC=$STAGE/src; fi
    # With the time of unpacking (-m), not the tar's (0, for its digest): Mix's Erlang compiler
    # takes an .erl file whose mtime is not after its manifest's (none: 0) for compiled, and left
    # every Erlang module of a Mix project out of a build without the cache volume.
    mkdir -p "$SRC" && tar -xmof "$SRC_TAR" -C "$SRC" || die "cannot unpack the sources ($SRC_TAR) into $SRC"
  fi
  rm -f "$SRC_TAR"
elif [ -n "${SRC_DELTA:-}" ]; then
  die "changes to the sources came without the sources' tar"
fi
cd "$SRC" || die "cannot enter $SRC"
if [ -z "${PROJECT_KIND:-}" ]; then
  if [ -f mix.exs ]; then PROJECT_KIND=mix; else PROJECT_KIND=rebar3; fi
fi

if [ -n "$use_cache" ]; then
  sync_tree "$SRC" "$CACHE/src" "$CACHE/.sync"
  settle_mtimes "$CACHE/src" "$CACHE/.sync.copied"
  record_sync "$CACHE/src" "$CACHE/.sync"
  SRC=$CACHE/src
  # OUT in the volume, beside the release cache, so the releases are hard-linked into it rather
  # than copied (assemble_mix.exs). What an earlier build left there goes first.
  if [ "${STREAM_OUT:-}" = 1 ]; then
    OUT=$CACHE/out
    # Moved aside (removing its thousands of files took a tenth of a second) and removed in the
    # background once this build's output is sent (send_out.sh).
    if [ -e "$OUT" ]; then
      old=$(mktemp -d "$CACHE/out.old.XXXXXX") && mv "$OUT" "$old/" || die "cannot move $OUT aside"
    fi
  fi
  cd "$SRC" || die "cannot enter $SRC"
  say "build cache: building in $SRC"
fi

# The builder's inputs (docs/builder-inputs.md). --secret ...,build_env=NAME: NAME holds the
# secret's value for this build (read from its file: the value is in no configuration).
for pair in ${RELEASE_OCI_SECRET_ENV:-}; do
  name=${pair%%=*} id=${pair#*=}
  [ -r "${RELEASE_OCI_SECRETS:-}/$id" ] || die "the secret $id is not readable in ${RELEASE_OCI_SECRETS:-(no secrets directory)}"
  value=$(cat "$RELEASE_OCI_SECRETS/$id")
  export "$name=$value"
done
unset pair name id value
# With the build cache, fetched Hex packages and registry data (HEX_CACHE_HOME) and mix archives
# such as Hex itself (MIX_ARCHIVES, seeded with the image's) are kept in the volume, beside deps/:
# a rebuild with the same mix.lock needs no repository.
if [ -n "$use_cache" ]; then
  HEX_CACHE_HOME=$CACHE/hex MIX_ARCHIVES=$CACHE/mix/archives
  mkdir -p "$HEX_CACHE_HOME" "$MIX_ARCHIVES"
  for a in "${MIX_HOME:-$HOME/.mix}"/archives/*; do
    if [ -e "$a" ] && [ ! -e "$MIX_ARCHIVES/${a##*/}" ]; then cp -R "$a" "$MIX_ARCHIVES/"; fi
  done
  export HEX_CACHE_HOME MIX_ARCHIVES
fi

mkdir -p "$OUT"
rm -rf "$OUT/rel" "$OUT/apps" "$OUT/tini" "$OUT/releases" "$OUT/relx" "$OUT/licenses"

# tini first: fail before a long build when there is none.
TINI_CANDIDATES="/sbin/tini-static /usr/bin/tini-static /usr/local/bin/tini-static /sbin/tini /usr/bin/tini /usr/local/bin/tini"
if [ -n "${TINI:-}" ]; then
  [ -f "$TINI" ] || die "TINI=$TINI does not exist"
  tini=$TINI
else
  tini=
  for candidate in $TINI_CANDIDATES; do
    if [ -f "$candidate" ]; then tini=$candidate; break; fi
  done
  [ -n "$tini" ] || die "no tini found (looked for $TINI_CANDIDATES): install a static tini in the builder (Debian: apt-get install tini, Alpine: apk add tini-static) or set TINI"
fi
say "tini: $tini"
cp "$tini" "$OUT/tini"
chmod 0755 "$OUT/tini"

# Hex: the builder image's or the cache volume's (MIX_ARCHIVES), else the archive given with
# --hex-client (RELEASE_OCI_INPUTS/archives), else `mix local.hex` (which honours HEX_BUILDS_URL
# and HEX_MIRROR); installed into MIX_ARCHIVES, in the cache volume when there is one.
ensure_hex() {
  archives=${MIX_ARCHIVES:-${MIX_HOME:-$HOME/.mix}/archives}
  for a in "$archives"/hex-*; do
    if [ -e "$a" ]; then say "hex: ${a##*/}"; return 0; fi
  done
  for client in "${RELEASE_OCI_INPUTS:-/nonexistent}"/archives/hex-*.ez; do
    if [ -f "$client" ]; then
      say "mix archive.install ${client##*/}"
      mix archive.install "$client" --force || die "cannot install the Hex client ${client##*/} (--hex-client)"
      return 0
    fi
  done
  say "mix local.hex --if-missing"
  mix local.hex --force --if-missing || die "cannot install Hex (needed by the Hex packages in mix.lock): give the builder a Hex client with --hex-client FILE (or [hex] client in release-oci.toml), reach Hex's builds (--build-env HEX_BUILDS_URL=URL or HEX_MIRROR=URL; a TLS-intercepting proxy's CA with --build-ca), or use a builder image with Hex installed"
}

# The Mix task as a file ($task), and how elixir loads it: `$task_load "$task_arg"` (-r FILE; with
# the build cache, -pa of its compiled modules, kept in the cache once per version of the task,
# or -e of the code that compiles them there first, in the VM that then runs it: loading the
# compiled module is faster).
mix_task() {
  task=$(mktemp "${TMPDIR:-/tmp}/release_oci_assemble.XXXXXX") || die "cannot create a temporary file"
  printf '%s' "$MIX_TASK" >"$task"
  task_load=-r task_arg=$task beams=
  [ -n "$RELEASE_CACHE" ] || return 0
  beams=$CACHE/task/$(md5sum <"$task" | cut -c1-16)
  if [ -d "$beams" ]; then
    task_load=-pa task_arg=$beams
    return 0
  fi
  say "build cache: compiling the Mix task of this release-oci (kept in the volume)"
  rm -rf "$beams.new" && mkdir -p "$beams.new" || die "cannot create $beams.new"
  TASK_FILE=$task TASK_BEAMS=$beams.new
  export TASK_FILE TASK_BEAMS
  task_load=-e task_arg='dir = System.fetch_env!("TASK_BEAMS")
    for {m, b} <- Code.compile_file(System.fetch_env!("TASK_FILE")), do: File.write!(Path.join(dir, "#{m}.beam"), b)
    File.rename!(dir, String.replace_suffix(dir, ".new", ""))'
}

assemble_mix() {
  command -v mix >/dev/null 2>&1 || die "mix is not installed here (PATH=$PATH): the builder needs Elixir"
  [ -f mix.exs ] || die "no mix.exs in $SRC"
  # Hex and rebar3 are needed only by locked Hex packages and rebar3 dependencies.
  if [ -f mix.lock ] && grep -q '{:hex,' mix.lock; then ensure_hex; fi
  if [ -f mix.lock ] && grep -q ':rebar3' mix.lock && [ -z "${MIX_REBAR3:-}" ]; then
    if command -v rebar3 >/dev/null 2>&1; then
      # The image's rebar3, named to Mix rather than copied into MIX_HOME by `mix local.rebar`
      # (a VM of its own: 0.8 s of every build of a project with rebar3 dependencies).
      MIX_REBAR3=$(command -v rebar3)
      export MIX_REBAR3
      say "rebar3: $MIX_REBAR3 (MIX_REBAR3)"
    else
      say "mix local.rebar --if-missing"
      mix local.rebar --force --if-missing || die "cannot install rebar3 (needed by dependencies in mix.lock): the builder needs network access, rebar3 on PATH or MIX_REBAR3 set"
    fi
  fi

  # deps.get, choosing the releases and `mix release` in one VM: MIX_TASK (assemble_mix.exs, put
  # before this script) as a mix task. With the build cache, releases are kept in
  # $CACHE/release between builds.
  RELEASE_CACHE=
  if [ -n "${CACHE:-}" ] && [ "$SRC" = "$CACHE/src" ]; then
    RELEASE_CACHE=$CACHE/release
    # Releases an earlier build lent to its OUT and did not get back (send_out.sh): gone.
    rm -f "$RELEASE_CACHE/.lent"
  fi
  export RELEASE_CACHE
  mix_status=unserved task=
  if [ -n "${WARM_MIX:-}" ] && [ -n "$RELEASE_CACHE" ]; then
    # A running Mix server has the task loaded: no task file for it (four processes a build).
    if mix_server_alive; then
      mix_server
    else
      mix_task
      set -- $task_load "$task_arg"
      mix_server "$@"
    fi
  fi
  if [ "$mix_status" = unserved ]; then
    [ -n "$task" ] || mix_task
    # The Mix server may have compiled the task by now.
    if [ -n "$RELEASE_CACHE" ] && [ -d "$beams" ]; then task_load=-pa task_arg=$beams; fi
    set -- $task_load "$task_arg"
    mix_status=0
    elixir "$@" -S mix release_oci.assemble </dev/null || mix_status=$?
  fi
  status=$mix_status
  compiled
  [ -z "$task" ] || rm -f "$task"
  [ "$status" -eq 0 ] || die "mix failed (exit code $status)"
  [ -s "$OUT/apps" ] && [ -s "$OUT/releases" ] || die "could not list the releases and applications of the project"
}

# The project's own applications (.app.src of rebar3's project app directories) and its
# dependencies (what rebar3 built besides them, and rebar.lock).
REBAR3_APPS='
Profile = os:getenv("PROFILE", "prod"),
Out = os:getenv("OUT"),
AppName = fun(F) -> case file:consult(F) of {ok, [{application, N, _} | _]} -> [N]; _ -> [] end end,
Own = lists:usort(lists:append([AppName(F) || P <- ["src/*.app.src", "apps/*/src/*.app.src", "lib/*/src/*.app.src"], F <- filelib:wildcard(P)])),
Built = [list_to_atom(filename:basename(D)) || P <- ["_build/" ++ Profile ++ "/lib/*", "_build/default/lib/*", "_build/" ++ Profile ++ "/checkouts/*", "_checkouts/*"], D <- filelib:wildcard(P), filelib:is_dir(D), hd(filename:basename(D)) =/= $.],
Locked = case file:consult("rebar.lock") of
    {ok, [{_, L} | _]} when is_list(L) -> [binary_to_atom(element(1, E)) || E <- L];
    {ok, [L | _]} when is_list(L) -> [binary_to_atom(element(1, E)) || E <- L];
    _ -> []
end,
Deps = lists:usort(Built ++ Locked) -- Own,
Lines = [io_lib:format("own ~s~n", [A]) || A <- Own] ++ [io_lib:format("dep ~s~n", [A]) || A <- Deps],
ok = file:write_file(filename:join(Out, "apps"), Lines),
Consult = fun(F) -> case file:consult(F) of {ok, T} -> T; _ -> [] end end,
Licenses = fun(Dir) ->
    Name = filename:basename(Dir),
    Meta = proplists:get_value(<<"licenses">>, Consult(filename:join(Dir, "hex_metadata.config")), []),
    App = case Consult(filename:join([Dir, "ebin", Name ++ ".app"])) of [{application, _, P} | _] -> proplists:get_value(licenses, P, []); _ -> [] end,
    Ls = [string:trim(re:replace(X, "[\t\r\n]+", " ", [global, unicode, {return, binary}])) || X <- case Meta of [] -> App; _ -> Meta end, is_list(X) orelse is_binary(X)],
    [L || L <- Ls, L =/= <<>>]
end,
LicDirs = [D || P <- ["_build/" ++ Profile ++ "/lib/*", "_build/default/lib/*"], D <- filelib:wildcard(P), filelib:is_dir(D), lists:member(list_to_atom(filename:basename(D)), Deps)],
LicNames = lists:usort([filename:basename(D) || D <- LicDirs]),
_ = try
    LicLines = [[N, [[<<"\t">>, L] || L <- Ls], <<"\n">>] || N <- LicNames, D <- [hd([X || X <- LicDirs, filename:basename(X) =:= N])], Ls <- [Licenses(D)], Ls =/= []],
    ok = file:write_file(filename:join(Out, "licenses"), unicode:characters_to_binary(LicLines))
catch _:_ -> io:format("==> licences of the dependencies: not listed~n")
end,
halt().
'

assemble_rebar3() {
  command -v rebar3 >/dev/null 2>&1 || die "rebar3 is not installed here (PATH=$PATH): the builder needs rebar3 for rebar3 projects"
  [ -f rebar.config ] || die "no rebar.config in $SRC"
  case "$RELEASE_NAME" in
    "") set -- ;;
    all) set -- --all ;;
    *) set -- --relname "$RELEASE_NAME" ;;
  esac
  say "rebar3 as $PROFILE release $*"
  status=0
  REBAR_COLOR=none rebar3 as "$PROFILE" release --output-dir "$OUT/relx" "$@" || status=$?
  compiled
  [ "$status" -eq 0 ] || die "rebar3 as $PROFILE release failed"
  made=
  count=0
  for dir in "$OUT"/relx/*/; do
    if [ -f "$dir/releases/start_erl.data" ]; then made="$made $(basename "$dir")"; count=$((count + 1)); fi
  done
  [ "$count" -gt 0 ] || die "rebar3 release made no release in $OUT/relx (is there a relx section in rebar.config?)"
  say "releases:$made"
  if [ "$count" -eq 1 ]; then
    mv "$OUT/relx/${made# }" "$OUT/rel"
    rm -rf "$OUT/relx"
  else
    mv "$OUT/relx" "$OUT/rel"
  fi
  say "listing the applications"
  erl -noshell -eval "$REBAR3_APPS" || die "could not list the applications of the project"
}

# Not a number while the build compiles; the second it was done by afterwards (settle_mtimes).
if [ -n "$use_cache" ]; then printf 'building\n' >"$CACHE/.built"; fi
compiled() {
  if [ -n "$use_cache" ]; then date +%s >"$CACHE/.built"; fi
}
case "$PROJECT_KIND" in
  mix) assemble_mix ;;
  rebar3) assemble_rebar3 ;;
  *) die "unknown PROJECT_KIND=$PROJECT_KIND (mix or rebar3)" ;;
esac
[ -s "$OUT/apps" ] || die "could not list the applications of the project"
say "done"
