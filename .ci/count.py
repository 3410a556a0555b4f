"""Counts test cases over meson test logs: every TAP 'ok'/'not ok' line is
one case; a test that printed no TAP (or crashed before its plan) counts as
one case by its own result. Prints 'N passed, N failed' last; exit 1 if any
failed or a build produced no log."""
import json
import os
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b(.*)$")
passed = failed = skipped = 0
missing = []
for build in sys.argv[1:]:
    log = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        missing.append(build)
        failed += 1
        continue
    p = f = s = 0
    with open(log) as fh:
        for line in fh:
            t = json.loads(line)
            cases = [TAP.match(l) for l in (t.get("stdout") or "").splitlines()]
            cases = [m for m in cases if m]
            ok_result = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
            if not cases:
                if t.get("result") == "SKIP":
                    s += 1
                elif ok_result:
                    p += 1
                else:
                    f += 1
                continue
            for m in cases:
                if m.group(1) == "ok":
                    if "# SKIP" in m.group(2):
                        s += 1
                    else:
                        p += 1
                else:
                    f += 1
            if not ok_result and not any(m.group(1) == "not ok" for m in cases):
                f += 1  # crashed, timed out or exited non-zero after its cases
    print("%s: %d passed, %d failed, %d skipped" % (os.path.basename(build), p, f, s))
    passed += p
    failed += f
    skipped += s
for b in missing:
    print("%s: no test log (build failed?)" % b)
line = "%d passed, %d failed" % (passed, failed)
if skipped:
    line += ", %d skipped" % skipped
print(line)
sys.exit(1 if failed else 0)
