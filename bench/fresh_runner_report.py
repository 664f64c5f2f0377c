"""Writes bench/fresh-runner.sh's report: bench/results/fresh-runner.md and its section of
BENCHMARKS.md (between the fresh-runner markers; the rest of the file is left as it is)."""
import datetime
import os
import statistics
import sys

raw, out_md, bench_md, runs, docker_desc, commit, load, total = sys.argv[1:9]
rows = [line.split('\t') for line in open(raw).read().split('\n') if line]


def med(case, tool, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == case and r[1] == tool)


def mib(n):
    return f'{n / 1048576:.1f} MiB'


lines = [
    '## Fresh CI runner: a registry cache against BuildKit\'s inline cache (examples/hello_web)',
    '',
    f'Written by `bench/fresh-runner.sh` (`make bench-fresh-runner`), {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, '
    f'commit {commit}; {os.cpu_count()} cores, {load}; {total} s in all; docker build: {docker_desc}. Medians of {runs} runs. '
    'A runner has the builder and runtime images only: before each measured build, BuildKit\'s cache is pruned and the '
    'pushed images\' local copies removed (Dockerfile), or the blob store is new and the project\'s cache volume pruned '
    '(release-oci). Runner A built and pushed the previous commit first: release-oci with `--cache-repo`, the Dockerfile '
    'with `BUILDKIT_INLINE_CACHE=1`; the measured build uses `--cache-repo` / `--cache-from` the previous image. Times are '
    'build + push to the same local docker-registry; "served" is what the registry sent (GET responses in its access '
    'log), "stored" what it gained. Ratio = release-oci / Dockerfile (targets: change ≤ 0.3, no change ≤ 0.1).',
    '',
    '| case | release-oci | Dockerfile | ratio | served (ro / df) | stored (ro / df) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
]
for case, name in [('change', 'one-line change'), ('nochange', 'no change')]:
    ro, df = med(case, 'ro', 2), med(case, 'df', 2)
    lines.append(
        f'| {name} | {ro:.2f} s | {df:.2f} s | {ro / df:.3f} | '
        f'{mib(med(case, "ro", 3))} / {mib(med(case, "df", 3))} | {mib(med(case, "ro", 4))} / {mib(med(case, "df", 4))} |'
    )
lines += ['', 'Raw runs (seconds, bytes served, bytes stored):', '']
for r in rows:
    lines.append(f'- {r[0]} / {r[1]}: {r[2]} s, {r[3]} B, {r[4]} B')
text = '\n'.join(lines) + '\n'
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keep_sections import write_section
write_section(bench_md, out_md, 'fresh-runner', 'bench/fresh-runner.sh', text)
print(text)
