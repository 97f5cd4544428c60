#!/usr/bin/env python3
"""Benchmark: sandbox up from a cold cache, up from a warm cache, and down.

    /usr/bin/python3 bench/sandbox_lifecycle.py [--runs N] [--skip-cold]
    /usr/bin/python3 bench/sandbox_lifecycle.py --stress N

--stress N: the bootstrap stress check (issue 17): N times in a row, new machines from the
cached image (`down`, then `up` with the main job); every up is counted as passed or
failed (with the first error line of a failed one) and the next one goes on.

Cold = no cached base image and an empty apt cache (the Salt venv is kept: it is a host
prerequisite, built once by `sandbox.py prepare`). Warm = cached image, machines down.
Each `up` includes the main job (sync_all + highstate), as `make sandbox` runs it.
Prints one line per measurement, then the median of each kind. Leaves the sandbox down.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import time

from benchlib import SANDBOX, sandbox  # noqa: E402
HOME = os.environ.get("PIGSTY_SANDBOX_HOME", "/var/lib/pigsty-sandbox")


def timed(*args):
    t0 = time.monotonic()
    sandbox(*args)
    return time.monotonic() - t0


def stress(runs):
    passed, times = 0, []
    for i in range(runs):
        sandbox("down")
        t0 = time.monotonic()
        res = subprocess.run(SANDBOX + ["up"], capture_output=True, text=True, timeout=3600)
        took = time.monotonic() - t0
        times.append(took)
        if res.returncode == 0:
            passed += 1
            print("up #%d from new machines: passed in %.1f s" % (i + 1, took), flush=True)
        else:
            error = next((l for l in (res.stdout + res.stderr).splitlines() if "ERROR" in l or "FAIL" in l),
                         "exit %d" % res.returncode)
            print("up #%d from new machines: FAILED after %.1f s: %s" % (i + 1, took, error[:300]), flush=True)
    sandbox("down")
    print("\n%d of %d ups passed; median %.1f s, max %.1f s" % (passed, runs, statistics.median(times), max(times)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="warm up/down cycles (default 3)")
    p.add_argument("--skip-cold", action="store_true", help="do not rebuild the image cache")
    p.add_argument("--stress", type=int, metavar="N", help="N ups from new machines in a row, counted")
    args = p.parse_args()
    if args.stress:
        return stress(args.stress)
    figures = {"up-cold": [], "up-warm": [], "down": []}
    timed("down")
    if not args.skip_cold:
        shutil.rmtree(os.path.join(HOME, "images"), ignore_errors=True)
        shutil.rmtree(os.path.join(HOME, "apt-cacher-ng", "cache"), ignore_errors=True)
        figures["up-cold"].append(timed("up"))
        print("up (cold cache): %.1f s" % figures["up-cold"][-1], flush=True)
        figures["down"].append(timed("down"))
        print("down: %.1f s" % figures["down"][-1], flush=True)
    for i in range(args.runs):
        figures["up-warm"].append(timed("up"))
        print("up (warm cache) #%d: %.1f s" % (i + 1, figures["up-warm"][-1]), flush=True)
        figures["down"].append(timed("down"))
        print("down #%d: %.1f s" % (i + 1, figures["down"][-1]), flush=True)
    print("\nsummary (median of the runs):")
    for kind, values in figures.items():
        if values:
            print("  %-8s median %.1f s  max %.1f s  (n=%d)" % (
                kind, statistics.median(values), max(values), len(values)))


if __name__ == "__main__":
    main()
