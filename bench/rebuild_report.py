#!/usr/bin/env python3
"""Markdown report of bench/rebuild.sh from its raw measurements (TSV: project, case, tool, value).

Medians per (project, case, tool); ratios release-oci / Dockerfile (below 1: release-oci is
faster or smaller); each target's verdict is computed from the medians here.
"""

import argparse
import datetime
import os
import statistics
import subprocess
import sys
from collections import defaultdict

# (case, label, target ratio release-oci / Dockerfile, at most)
BUILD_TARGETS = [
    ("cold", "cold build (empty caches)", 1.0),
    ("change", "rebuild after a one-line change", 0.5),
    ("nochange", "rebuild with no change", 0.2),
    ("push_bytes", "bytes pushed after a one-line change", 0.05),
]
PROJECTS = [
    ("bigapp", "generated project"),
    ("hello_web", "examples/hello_web"),
    ("tally", "a second small app (bench/small_app.py: runtime.exs, :crypto, its own TCP listener)"),
]
# The one-line change in a warm builder (`--warm-builder`, tool "rw"): issue 23's targets.
WARM_TARGETS = {"bigapp": 0.15, "hello_web": 0.25, "tally": 0.25}


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        return "?"


def machine():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip()
    mem_kb = int(sh("awk '/MemTotal/ {print $2}' /proc/meminfo") or 0)
    return {
        "nproc": sh("nproc"),
        "cpu": cpu or sh("lscpu | awk -F: '/Model name/ {print $2}'").strip(),
        "ram": f"{mem_kb / 1048576:.1f} GiB",
        "kernel": sh("uname -sr"),
        "docker": sh("docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": sh("git -C '%s' rev-parse --short HEAD" % os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    }


def fmt_s(v):
    return "n/a" if v is None else f"{v:.2f} s"


def fmt_b(v):
    if v is None:
        return "n/a"
    return f"{v / 1048576:.2f} MiB" if v >= 1048576 else f"{v / 1024:.1f} KiB"


def verdict(ok):
    return "**met**" if ok else "**NOT met**"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("raw")
    p.add_argument("--runs-big", type=int, required=True)
    p.add_argument("--runs-hello", type=int, required=True)
    p.add_argument("--docker-build", required=True)
    p.add_argument("--ro-base", required=True)
    p.add_argument("--builder", required=True)
    p.add_argument("--runtime", required=True)
    p.add_argument("--cache-cmd", required=True)
    a = p.parse_args()

    vals = defaultdict(list)
    meta = {}
    with open(a.raw) as f:
        for line in f:
            proj, case, tool, value = line.rstrip("\n").split("\t")
            if proj == "meta":
                meta[tool] = value
            else:
                vals[(proj, case, tool)].append(float(value))

    def med(proj, case, tool):
        v = vals.get((proj, case, tool))
        return statistics.median(v) if v else None

    m = machine()
    out = []
    w = out.append
    w("# Benchmarks: release-oci against a Phoenix-style Dockerfile")
    w("")
    w(f"Written by `bench/rebuild.sh` (`make bench-rebuild`), {m['date']}, commit {m['commit']}. "
      "Method: [docs/benchmarks.md](docs/benchmarks.md).")
    w("")
    w(f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram']} RAM, {m['kernel']}; Docker {m['docker']}. "
      f"`docker build`: {a.docker_build}. Load average (1/5/15 min) before: {meta.get('load_before', '?')}, "
      f"after: {meta.get('load_after', '?')}; the whole benchmark took {float(meta.get('total_s', 0)) / 60:.1f} min.")
    w("")
    w(f"Both tools start from the same local images: builder `{a.builder}`, runtime `{a.runtime}` "
      f"(release-oci: `--base {a.ro_base} --load`; the Dockerfile: `bench/Dockerfile.phoenix-style`). "
      f"Medians of {a.runs_big} runs (generated project) and {a.runs_hello} runs (hello_web, the second small app); "
      "ratio = release-oci / Dockerfile (below 1: release-oci is faster or smaller). "
      f"release-oci's `cache prune`: {'used for the cold state' if a.cache_cmd == '1' else 'not in this build (cold = a fresh, empty RELEASE_OCI_CACHE)'}.")
    w("")
    gen = meta.get("modules", "?")
    rel = med("bigapp", "release_bytes", "-")
    w(f"Generated project (`bench/gen_project.py`): {gen} `.ex` files (own app and 4 path deps), release "
      f"{fmt_b(rel)} on disk.")
    w("")

    summary = []
    for proj, label in PROJECTS:
        if not any(k[0] == proj for k in vals):
            continue
        w(f"## {label}")
        w("")
        w("| measure | release-oci | Dockerfile | ratio | target | |")
        w("| --- | ---: | ---: | ---: | ---: | --- |")
        for case, clabel, target in BUILD_TARGETS:
            ro, df = med(proj, case, "ro"), med(proj, case, "df")
            fmt = fmt_b if case == "push_bytes" else fmt_s
            if ro is None or df is None or df == 0:
                w(f"| {clabel} | {fmt(ro)} | {fmt(df)} | n/a | ≤ {target} | |")
                continue
            r = ro / df
            ok = r <= target
            summary.append((label, clabel, r, target, ok))
            w(f"| {clabel} | {fmt(ro)} | {fmt(df)} | {r:.3f} | ≤ {target} | {verdict(ok)} |")
        rw, df, target = med(proj, "change", "rw"), med(proj, "change", "df"), WARM_TARGETS[proj]
        wlabel = "rebuild after a one-line change, `--warm-builder`"
        if rw is not None and df:
            ok = rw / df <= target
            summary.append((label, wlabel, rw / df, target, ok))
            w(f"| {wlabel} | {fmt_s(rw)} | {fmt_s(df)} | {rw / df:.3f} | ≤ {target} | {verdict(ok)} |")
        for case, clabel in (("start", "`docker run` to first HTTP 200"), ("stop", "`docker stop` to exit")):
            ro, df = med(proj, case, "ro"), med(proj, case, "df")
            r = f"{ro / df:.2f}" if ro is not None and df else "n/a"
            w(f"| {clabel} | {fmt_s(ro)} | {fmt_s(df)} | {r} | | |")
        ib_ro, ib_df = med(proj, "image_bytes", "ro"), med(proj, "image_bytes", "df")
        w("")
        w(f"Whole first push (registry storage after it): release-oci {fmt_b(ib_ro)}, Dockerfile {fmt_b(ib_df)}.")
        w("")

    w("## Layering: release directory → image layers (generated project)")
    w("")
    w(f"The generated project's release ({fmt_b(rel)}) copied out of the Dockerfile image; "
      "compressed output written to disk; one core = `taskset -c 0` (and `RAYON_NUM_THREADS=1` for release-oci).")
    w("")
    w("| tool | one core | two cores |")
    w("| --- | ---: | ---: |")
    rows = [
        ("`release-oci build --from-release DIR --base scratch --output oci:`", "ro", "ro"),
        ("`tar c \\| gzip -6` (the floor)", "gzip", None),
        ("`tar c \\| pigz -6 -p 2`", None, "pigz"),
        ("`umoci init/new/insert` (one layer)", "umoci", "umoci"),
    ]
    for label, t1, t2 in rows:
        v1 = med("bigapp", "layer_1core", t1) if t1 else None
        v2 = med("bigapp", "layer_2core", t2) if t2 else None
        w(f"| {label} | {fmt_s(v1) if t1 else '—'} | {fmt_s(v2) if t2 else '—'} |")
    ro1, ro2, floor = (med("bigapp", "layer_1core", "ro"), med("bigapp", "layer_2core", "ro"),
                       med("bigapp", "layer_1core", "gzip"))
    w("")
    if ro1 and ro2 and floor:
        ok1, ok2 = ro1 <= 1.3 * floor, ro2 < floor
        summary.append(("layering", "one core, within 1.3× of tar|gzip", ro1 / floor, 1.3, ok1))
        summary.append(("layering", "two cores, faster than tar|gzip on one", ro2 / floor, 1.0, ok2))
        w(f"Targets: one core {ro1 / floor:.2f}× tar|gzip (≤ 1.3×): {verdict(ok1)}; "
          f"two cores {ro2 / floor:.2f}× (< 1×): {verdict(ok2)}.")
        w("")

    w("## Targets")
    w("")
    w("| where | target | ratio | |")
    w("| --- | --- | ---: | --- |")
    for where, what, r, target, ok in summary:
        w(f"| {where} | {what} (≤ {target}) | {r:.3f} | {verdict(ok)} |")
    w("")
    missed = [s for s in summary if not s[4]]
    w(f"{len(summary) - len(missed)} of {len(summary)} targets met.")
    w("")
    w("## Raw runs (seconds; bytes for push)")
    w("")
    for key in sorted(vals):
        w(f"- {' / '.join(key)}: {' '.join(str(int(v)) if v.is_integer() else f'{v:.3f}' for v in vals[key])}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
