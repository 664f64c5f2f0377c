"""The sections of BENCHMARKS.md. Each benchmark script writes its own section between markers
(`<!-- NAME: SCRIPT -->` ... `<!-- /NAME -->`) with `write_section`, and its report to
bench/results/NAME.md; bench/rebuild.sh, which writes the head of the file, keeps the others'
sections (`keep_sections.py REPORT OUT`: REPORT written to OUT, followed by OUT's sections)."""
import os
import re
import sys

SECTION = r'<!-- ([a-z0-9-]+): [^>]*-->\n.*?<!-- /\1 -->\n'


def write_section(bench_md, out_md, name, script, text):
    """Writes `text` (starting with a `## ` heading) to `out_md` as a `# ` document, and puts it
    in `bench_md` between `name`'s markers: in place of the section it had, or at the end."""
    os.makedirs(os.path.dirname(out_md), exist_ok=True)
    open(out_md, 'w').write('# ' + text[3:])
    begin, end = f'<!-- {name}: {script} -->', f'<!-- /{name} -->'
    md = open(bench_md).read() if os.path.exists(bench_md) else ''
    section = f'{begin}\n{text}{end}\n'
    if begin in md and end in md:
        md = md[:md.index(begin)] + section + md[md.index(end) + len(end) + 1:]
    else:
        md = md.rstrip('\n') + '\n\n' + section
    open(bench_md, 'w').write(md)


def keep_sections(report, out):
    old = open(out).read() if os.path.exists(out) else ''
    text = open(report).read().rstrip('\n') + '\n'
    for m in re.finditer(SECTION, old, re.S):
        text += '\n' + m.group(0)
    open(out, 'w').write(text)


if __name__ == '__main__':
    keep_sections(*sys.argv[1:3])
