#!/usr/bin/env bash
# aarch64 benchmark (`make bench-aarch64`): the build time of an aarch64 image against an x86_64
# one on this x86_64 machine, for examples/hello_web and the generated project
# (bench/gen_project.py), each cold (a fresh blob cache, --no-cache: no build cache volume, the
# minimal base gathered again): x86_64 native, aarch64 compile-once (`--cross-compile auto`, the
# default: compiled on the amd64 builder, ERTS and Erlang/OTP from the arm64 builder image) and
# aarch64 fully under qemu-user (`--cross-compile never`); and a rebuild after a one-line change
# (the build cache volume and the blob cache of a build just before: the minimal base is known, so
# compile-once runs nothing in the arm64 builder). Medians of RUNS (3) runs, the modes
# interleaved; the machine's load average before and after. MODES, PROJECTS: a subset. Writes bench/results/aarch64.md and
# its section of BENCHMARKS.md (between the aarch64 markers). RELEASE_OCI_BIN: the binary to
# measure (default: cargo build --release). Needs `make setup-arm64`. See docs/benchmarks.md.
set -euo pipefail
shopt -s inherit_errexit
{

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
PROJECTS=${PROJECTS:-"hello_web bigapp"}
MODES=${MODES:-"x86_64 aarch64 aarch64-never"}
OUT_MD=${OUT_MD:-$ROOT/bench/results/aarch64.md}
WORK=$(mktemp -d /tmp/release-oci-bench-aarch64.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
log() { printf '[bench/aarch64] %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
for img in release-oci/builder:debian-bookworm release-oci/builder:debian-bookworm-arm64; do
  docker image inspect "$img" >/dev/null 2>&1 || { log "missing image $img (make setup, make setup-arm64)"; exit 1; }
done
if [ -z "${RELEASE_OCI_BIN:-}" ]; then
  log "building release-oci (release profile)"
  (cd "$ROOT" && cargo build --release --quiet)
  RELEASE_OCI_BIN=$ROOT/target/release/release-oci
fi
BIN=$WORK/release-oci
cp "$RELEASE_OCI_BIN" "$BIN"

cp -a "$ROOT/examples/hello_web" "$WORK/hello_web"
rm -rf "$WORK/hello_web/_build" "$WORK/hello_web/deps"
case " $PROJECTS " in *" bigapp "*) python3 "$ROOT/bench/gen_project.py" "$WORK/bigapp" >/dev/null ;; esac
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RAW=$WORK/raw.tsv
: >"$RAW"
# timed CASE PROJECT MODE BUILD-FLAGS...: one build, its time recorded (CASE cold or change).
n=0
timed() {
  local case=$1 p=$2 mode=$3 start end
  shift 3
  n=$((n + 1))
  start=$(now_ns)
  "$BIN" -q build "$WORK/$p" "$@" --output "oci:$WORK/out-$n" >/dev/null 2>"$WORK/log-$n" ||
    { cat "$WORK/log-$n" >&2; exit 1; }
  end=$(now_ns)
  [ "$case" = - ] || printf '%s\t%s\t%s\t%s\n' "$p" "$mode" "$case" "$(secs "$start" "$end")" >>"$RAW"
  [ "$case" = - ] || log "run $run $p $mode $case: $(secs "$start" "$end") s"
  rm -rf "$WORK/out-$n"
}
# A one-line change of the string GET / answers with (a fresh one each time).
change() {
  local p=$1 file
  file=$WORK/$p/lib/$p/router.ex
  sed -i -E "s/hello( again [0-9-]+)? from $p/hello again $$-$n from $p/" "$file"
  grep -q "again $$-$n" "$file" || { log "the one-line change did not apply to $p"; exit 1; }
}
for run in $(seq 1 "$RUNS"); do
  for p in $PROJECTS; do
    for mode in $MODES; do
      case $mode in
        x86_64) args=(--triple x86_64-unknown-linux-gnu) ;;
        aarch64) args=(--triple aarch64-unknown-linux-gnu --cross-compile auto) ;;
        aarch64-never) args=(--triple aarch64-unknown-linux-gnu --cross-compile never) ;;
      esac
      cache=$WORK/cache-$run-$p-$mode
      cold=$WORK/cold-$run-$p-$mode
      timed cold "$p" "$mode" "${args[@]}" --no-cache --cache-dir "$cold"
      rm -rf "$cold"
      # The build cache volume and the blob cache filled, then the change.
      timed - "$p" "$mode" "${args[@]}" --cache-dir "$cache"
      change "$p"
      timed change "$p" "$mode" "${args[@]}" --cache-dir "$cache"
      rm -rf "$cache"
    done
  done
done
"$BIN" -q cache prune --help >/dev/null 2>&1 && "$BIN" -q cache prune >/dev/null 2>&1 || true
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

PYTHONPATH="$ROOT/bench" python3 - "$RAW" "$OUT_MD" "$ROOT/BENCHMARKS.md" "$RUNS" "$(git -C "$ROOT" rev-parse --short HEAD)" \
  "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)" <<'PY'
import os, statistics, sys, time
raw, out_md, bench_md, runs, rev, before, after, cores = sys.argv[1:]
data = {}
for line in open(raw):
    p, mode, case, t = line.split('\t')
    data.setdefault((p, mode, case), []).append(float(t))
med = lambda p, m, c: statistics.median(data[(p, m, c)]) if (p, m, c) in data else float('nan')
names = {'hello_web': 'examples/hello_web', 'bigapp': 'generated project (bench/gen_project.py)'}
lines = [
    '## aarch64 against x86_64 (compile once, assemble per platform)',
    '',
    f'Written by `bench/aarch64.sh` (`make bench-aarch64`), {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, '
    f'commit {rev}; {cores} cores, load average (1/5/15 min) before: {before}, after: {after}. Cold: a fresh '
    'blob cache and `--no-cache` (the minimal base gathered, under emulation for aarch64); change: a rebuild '
    'after a one-line change, with the build cache volume and blob cache of the build before (the minimal base '
    f'known). `-o oci:DIR`; medians of {runs} runs, the modes interleaved. aarch64 runs under qemu-user 10 on '
    'this x86_64 machine. Method: [docs/benchmarks.md](docs/benchmarks.md).',
    '',
    '| project | build | x86_64 | aarch64, compile-once (default) | ratio | target | aarch64, `--cross-compile never` | ratio |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
]
for p in [p for p in names if (p, 'x86_64', 'cold') in data]:
    for c in ['cold', 'change']:
        x, a, e = med(p, 'x86_64', c), med(p, 'aarch64', c), med(p, 'aarch64-never', c)
        target = '≤ 1.5, **met**' if a / x <= 1.5 else '≤ 1.5, not met'
        never = f'{e:.2f} s | {e / x:.2f}×' if e == e else 'not run | —'
        lines.append(f'| {names[p]} | {c} | {x:.2f} s | {a:.2f} s | {a / x:.2f}× | {target} | {never} |')
lines += ['', 'Raw runs (seconds):', '']
for (p, m, c), ts in sorted(data.items()):
    lines.append(f'- {p} / {m} / {c}: ' + ' '.join(f'{t:.2f}' for t in ts))
text = '\n'.join(lines) + '\n'
from keep_sections import write_section
write_section(bench_md, out_md, 'aarch64', 'bench/aarch64.sh', text)
print(text)
PY

}
exit
