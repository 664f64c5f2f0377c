# assemble.sh: assembles the Mix release of the project in $SRC into $OUT. release-oci runs it
# with `sh -c` in the builder container (SRC=/build/src OUT=/build/out) and on the host (in a
# temporary copy of the sources), so it must stay POSIX sh.
#
# Environment:
#   SRC           the project sources; _build and deps are created in there
#   OUT           created; receives rel/ (the release), apps (lines "own APP" / "dep APP": the
#                 project's own applications and its dependencies) and tini (a static tini)
#   MIX_ENV       the Mix environment (default: prod)
#   RELEASE_NAME  the release to assemble (default: the project's default release)
#   TINI          the tini binary to copy (default: the first of the usual places that exists)
set -eu
# One output stream, and nothing may ever wait for input (mix asks before installing Hex).
exec 2>&1 </dev/null

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*"; exit 1; }

: "${SRC:?SRC must name the project source directory}"
: "${OUT:?OUT must name the output directory}"
MIX_ENV=${MIX_ENV:-prod}
RELEASE_NAME=${RELEASE_NAME:-}
LANG=C.UTF-8
export MIX_ENV LANG

command -v mix >/dev/null 2>&1 || die "mix is not installed here (PATH=$PATH): the builder needs Elixir"
cd "$SRC" || die "cannot enter $SRC"
[ -f mix.exs ] || die "no mix.exs in $SRC"
mkdir -p "$OUT"
rm -rf "$OUT/rel" "$OUT/apps" "$OUT/tini"

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

# Hex and rebar3 are needed only by locked Hex packages and rebar3 dependencies.
if [ -f mix.lock ] && grep -q '{:hex,' mix.lock; then
  say "mix local.hex --if-missing"
  mix local.hex --force --if-missing || die "cannot install Hex (needed by the Hex packages in mix.lock): the builder needs network access to repo.hex.pm, or Hex installed in MIX_HOME"
fi
if [ -f mix.lock ] && grep -q ':rebar3' mix.lock && [ -z "${MIX_REBAR3:-}" ]; then
  if command -v rebar3 >/dev/null 2>&1; then
    say "mix local.rebar rebar3 $(command -v rebar3)"
    mix local.rebar rebar3 "$(command -v rebar3)" --force || die "cannot install rebar3"
  else
    say "mix local.rebar --if-missing"
    mix local.rebar --force --if-missing || die "cannot install rebar3 (needed by dependencies in mix.lock): the builder needs network access, rebar3 on PATH or MIX_REBAR3 set"
  fi
fi

# Cheap and offline when there are no dependencies or only path dependencies.
say "mix deps.get --only $MIX_ENV"
mix deps.get --only "$MIX_ENV"

# --path: straight into $OUT, wherever the project's release config would put it.
say "mix release ${RELEASE_NAME:-(default release)} (MIX_ENV=$MIX_ENV)"
if [ -n "$RELEASE_NAME" ]; then
  mix release "$RELEASE_NAME" --overwrite --path "$OUT/rel"
else
  mix release --overwrite --path "$OUT/rel"
fi
[ -f "$OUT/rel/releases/start_erl.data" ] || die "mix release made no release in $OUT/rel"
# A :tar step leaves the tarball in the release directory: it is no part of the release.
rm -f "$OUT"/rel/*.tar.gz

say "listing the applications"
APPS_FILE="$OUT/apps" mix run --no-start --no-compile --no-deps-check -e '
own =
  if Mix.Project.umbrella?(),
    do: Map.keys(Mix.Project.apps_paths() || %{}),
    else: [Mix.Project.config()[:app]]
deps = Map.keys(Mix.Project.deps_paths()) -- own
lines = Enum.map(own, &"own #{&1}\n") ++ Enum.map(deps, &"dep #{&1}\n")
File.write!(System.fetch_env!("APPS_FILE"), lines)
'
[ -s "$OUT/apps" ] || die "could not list the applications of the project"
say "done"
