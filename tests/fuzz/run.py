#!/usr/bin/env python3
"""Runs one fuzz target (tests/fuzz/meson.build), speaking TAP.

  run.py replay EXE --regressions DIR --corpus SEED...
      Runs EXE once on each regression case (one TAP case each: a crash
      found once fails until it is fixed) and once on all the seeds (one
      case). EXE is a libFuzzer binary or the same target linked with
      replay.c; both run the files named.

  run.py fuzz EXE --regressions DIR [--dict FILE] --corpus SEED...
      Fuzzes for $PM_FUZZ_SECONDS (default 20) from the seeds and the
      regression cases that pass, in a scratch corpus. A crash, leak,
      timeout or out-of-memory input found is kept in the regressions
      directory (the source tree's: commit it with the fix) and the case
      fails, with libFuzzer's report. The same failure as a regression case
      that still fails (same kind, same place in our code) is not kept
      again: that case's replay already fails; fuzzing goes on for the rest
      of the time. The case's line gives runs, speed and coverage. With
      $PM_FUZZ_KEEP=DIR the corpus it grew is left in DIR/NAME/ (to measure
      coverage, or to pick new seeds from).

A SEED is a file, a directory (its files) or a glob."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# What libFuzzer names the inputs it keeps (-artifact_prefix).
ARTIFACTS = ("crash-", "leak-", "timeout-", "oom-")
# One input may take this long (s) before it is a hang: the slowest
# target's worst input takes well under a second even under ASan.
INPUT_TIMEOUT = 10


def seed_files(specs):
    files = []
    for spec in specs:
        if os.path.isdir(spec):
            names = sorted(os.listdir(spec))
            files += [os.path.join(spec, n) for n in names
                      if not n.startswith(".") and n != "README"
                      and os.path.isfile(os.path.join(spec, n))]
        elif any(c in spec for c in "*?["):
            files += sorted(p for p in glob.glob(spec) if os.path.isfile(p))
        elif os.path.isfile(spec):
            files.append(spec)
    return files


def regression_files(d):
    return seed_files([d]) if os.path.isdir(d) else []


def run(argv, timeout):
    """(exit status, output); a status of None: it did not end in time."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=fuzz_env())
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = e.output.decode("utf-8", "replace") if e.output else ""
        return None, out


def fuzz_env():
    env = dict(os.environ)
    # Every finding fatal; leaks are findings; no core files in the tree.
    env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1:"
                   "verify_asan_link_order=0:disable_coredump=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    return env


def signature(text):
    """What a failure is and where in our code: (kind, file:line), to tell
    a known failure found again from a new one."""
    kind = "?"
    m = re.search(r"runtime error: ([a-z -]+)|ERROR: (?:AddressSanitizer|LeakSanitizer|"
                  r"libFuzzer): ([\w-]+(?: [\w-]+)?)|(deadly signal|timeout|out-of-memory)", text)
    if m:
        kind = next(g for g in m.groups() if g)
    if "runtime error:" in text:
        # UBSan names the place first: "FILE:LINE:COL: runtime error: ..."
        m = re.search(r"(\S+/(?:src|tests)/\S+?):(\d+):\d+: runtime error", text)
        if m:
            return kind, "%s:%s" % (os.path.basename(m.group(1)), m.group(2))
    for m in re.finditer(r"^\s*#\d+ 0x[0-9a-f]+ in \S+ (\S+):(\d+)", text, re.M):
        path = m.group(1)
        if ("/src/" in path or "/tests/fuzz/" in path) and "fuzz.c" not in path:
            return kind, "%s:%s" % (os.path.basename(path), m.group(2))
    return kind, "?"


def diagnostics(text, lines=60):
    """The end of a report as TAP diagnostics."""
    keep = [l for l in text.splitlines() if l.strip()]
    # the interesting part: from the sanitizer's headline on
    for i, l in enumerate(keep):
        if re.search(r"ERROR: |runtime error:|==\d+==|Assertion|abort", l):
            keep = keep[i:]
            break
    return "\n".join("# " + l for l in keep[:lines])


def replay(exe, regressions, corpus):
    name = os.path.basename(exe)
    cases = regression_files(regressions)
    seeds = seed_files(corpus)
    print("1..%d" % (len(cases) + 1), flush=True)
    failed = 0
    n = 0
    for path in cases:
        n += 1
        status, out = run([exe, path], INPUT_TIMEOUT * 3)
        rel = os.path.relpath(path, os.path.dirname(os.path.dirname(regressions)))
        if status == 0:
            print("ok %d - %s: regression case %s" % (n, name, rel))
        else:
            failed += 1
            print("not ok %d - %s: regression case %s %s" %
                  (n, name, rel, "hangs" if status is None else "fails (exit %d)" % status))
            print(diagnostics(out))
        sys.stdout.flush()
    n += 1
    if not seeds:
        print("not ok %d - %s: no seed found in %s" % (n, name, " ".join(corpus)))
        return 1
    status, out = run([exe] + seeds, INPUT_TIMEOUT * 3 + len(seeds))
    if status == 0:
        print("ok %d - %s: %d seed input(s)" % (n, name, len(seeds)))
    else:
        failed += 1
        last = re.findall(r"^(?:Running:|running) (\S+)", out, re.M)
        print("not ok %d - %s: a seed input %s (%s)" %
              (n, name, "hangs" if status is None else "fails (exit %d)" % status,
               last[-1] if last else "?"))
        print(diagnostics(out))
    return 1 if failed else 0


def fuzz(exe, regressions, corpus, dict_path):
    name = os.path.basename(exe)
    target = name[len("fuzz_"):] if name.startswith("fuzz_") else name
    seconds = int(os.environ.get("PM_FUZZ_SECONDS", "20"))
    print("1..1", flush=True)
    # The regression cases that still fail: not seeds (the fuzzer would
    # stop on them at once), and what they fail with is known.
    known = {}
    seeds = seed_files(corpus)
    for path in regression_files(regressions):
        status, out = run([exe, path], INPUT_TIMEOUT * 3)
        if status == 0:
            seeds.append(path)
        else:
            known[signature(out)] = path
    work = tempfile.mkdtemp(prefix="pm-fuzz-run-%s-" % target)
    try:
        live = os.path.join(work, "corpus")
        found = os.path.join(work, "artifacts")
        os.mkdir(live)
        os.mkdir(found)
        for i, path in enumerate(seeds):
            shutil.copyfile(path, os.path.join(live, "seed-%04d-%s" % (i, os.path.basename(path))))
        started = time.monotonic()
        runs, again, kept, status, out = 0, [], [], 0, ""
        cov = ft = corp = "?"
        # A known failure found again ends libFuzzer's run: start it again
        # on the corpus grown so far, until the time is up.
        while True:
            left = seconds - (time.monotonic() - started)
            if left < 1 or len(again) >= 20:
                break
            argv = [exe, "-max_total_time=%d" % max(1, int(left)),
                    "-timeout=%d" % INPUT_TIMEOUT, "-rss_limit_mb=2048", "-max_len=8192",
                    "-print_final_stats=1", "-artifact_prefix=" + found + "/", live]
            if dict_path and os.path.isfile(dict_path):
                argv.insert(1, "-dict=" + dict_path)
            status, out = run(argv, left + 120)
            done = re.findall(r"stat::number_of_executed_units:\s*(\d+)", out)
            runs += int(done[-1]) if done else 0
            # the last status line: "#N DONE cov: C ft: F corp: K/..."
            stats = re.findall(r"^#\d+\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", out, re.M)
            if stats:
                cov, ft, corp = stats[-1]
            new = [f for f in sorted(os.listdir(found)) if f.startswith(ARTIFACTS)]
            if status == 0 and not new:
                break
            sig = signature(out)
            if new and sig in known and sig != ("?", "?"):
                again.append(sig)
                for f in new:
                    os.remove(os.path.join(found, f))
                continue
            for f in new:
                os.makedirs(regressions, exist_ok=True)
                dest = os.path.join(regressions, f)
                shutil.copyfile(os.path.join(found, f), dest)
                kept.append(dest)
            break
        took = time.monotonic() - started
        keep = os.environ.get("PM_FUZZ_KEEP")
        if keep:
            shutil.rmtree(os.path.join(keep, target), ignore_errors=True)
            shutil.copytree(live, os.path.join(keep, target))
        what = "%d runs in %.0f s (%.0f/s), cov %s, ft %s, corpus %s from %d seed(s)" % (
            runs, took, runs / took if took > 0 else 0, cov, ft, corp, len(seeds))
        if again:
            what += "; found again %d time(s): %s" % (len(again), ", ".join(
                sorted("%s at %s (%s)" % (k[0], k[1], os.path.basename(known[k]))
                       for k in set(again))))
        if not kept and (status == 0 or again):
            print("ok 1 - %s: %s, nothing new found" % (name, what))
            return 0
        why = "did not end" if status is None else "exit %s" % status
        print("not ok 1 - %s: %s; %s, kept as %s" %
              (name, what, why, ", ".join(kept) if kept else "(no input kept)"))
        print(diagnostics(out, 80))
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] not in ("replay", "fuzz"):
        sys.exit(__doc__)
    mode, exe = args[0], os.path.abspath(args[1])
    regressions, dict_path, corpus = None, None, []
    i = 2
    while i < len(args):
        if args[i] == "--regressions":
            regressions = args[i + 1]
            i += 2
        elif args[i] == "--dict":
            dict_path = args[i + 1]
            i += 2
        elif args[i] == "--corpus":
            corpus = args[i + 1:]
            break
        else:
            sys.exit("run.py: unknown argument %s" % args[i])
    if not regressions:
        sys.exit("run.py: --regressions DIR is required")
    if mode == "replay":
        sys.exit(replay(exe, regressions, corpus))
    sys.exit(fuzz(exe, regressions, corpus, dict_path))


if __name__ == "__main__":
    main()
