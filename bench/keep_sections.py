"""keep_sections.py REPORT OUT: writes REPORT to OUT, followed by every benchmark section OUT had
between markers (`<!-- NAME: SCRIPT -->` ... `<!-- /NAME -->`, written by bench/phoenix.sh,
bench/fresh-runner.sh, ...), so that one benchmark's run keeps the others' results."""
import os
import re
import sys

report, out = sys.argv[1:3]
old = open(out).read() if os.path.exists(out) else ''
blocks = [m.group(0) for m in re.finditer(r'<!-- ([a-z0-9-]+): [^>]*-->\n.*?<!-- /\1 -->\n', old, re.S)]
text = open(report).read().rstrip('\n') + '\n'
for block in blocks:
    text += '\n' + block
open(out, 'w').write(text)
