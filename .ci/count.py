"""Counts test cases over meson test logs: every TAP 'ok'/'not ok' line is
one case; a test that printed no TAP (or crashed before its plan) counts as
one case by its own result. Names every failed case (the tail of a CI log
is often all that is kept), then prints 'N passed, N failed' last; exit 1
if any failed or a build produced no log."""
import json
import os
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b(.*)$")
passed = failed = skipped = 0
missing = []
failures = []
for build in sys.argv[1:]:
    log = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        missing.append(build)
        failed += 1
        continue
    p = f = s = 0
    run = os.path.basename(build)
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
                    failures.append("%s / %s: %s" % (run, t.get("name"), t.get("result")))
                continue
            for m in cases:
                if m.group(1) == "ok":
                    if "# SKIP" in m.group(2):
                        s += 1
                    else:
                        p += 1
                else:
                    f += 1
                    failures.append("%s / %s / %s" % (run, t.get("name"), re.sub(r"^\s*\d*\s*-?\s*", "", m.group(2))))
            if not ok_result and not any(m.group(1) == "not ok" for m in cases):
                f += 1  # crashed, timed out or exited non-zero after its cases
                failures.append("%s / %s: %s after its cases" % (run, t.get("name"), t.get("result")))
    print("%s: %d passed, %d failed, %d skipped" % (run, p, f, s))
    passed += p
    failed += f
    skipped += s
for what in failures:
    print("FAILED %s" % what)
for b in missing:
    print("%s: no test log (build failed?)" % b)
line = "%d passed, %d failed" % (passed, failed)
if skipped:
    line += ", %d skipped" % skipped
print(line)
sys.exit(1 if failed else 0)
