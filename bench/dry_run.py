#!/usr/bin/env python3
"""Benchmark: a dry run (`state.apply test=True`) on the converged sandbox.

    /usr/bin/python3 bench/dry_run.py [--runs N]

Needs the sandbox up with the main job applied (`make sandbox`). Each run times
`salt meta state.apply infra test=True`, then the highstate dry run of each node alone, then
of all four at once, and counts the states that report changes or `result: None` (on a
converged sandbox: 0).
"""
import argparse
import json
import statistics
import sys
import time

from benchlib import sandbox as sh

NODES = ("meta", "node-1", "node-2", "node-3")


def dry_run(target, *sls):
    t0 = time.monotonic()
    out = sh("exec", "meta", "salt", "-t", "900", "--out=json", "--static", target, "state.apply", *sls,
             "test=True", check=False)
    took = time.monotonic() - t0
    try:
        ret = json.loads(out)
    except ValueError:
        sys.exit("salt %s printed no JSON:\n%s" % (target, out[-2000:]))
    loud = sum(1 for states in ret.values() if isinstance(states, dict)
               for v in states.values() if isinstance(v, dict) and (v.get("changes") or v.get("result") is not True))
    return took, loud, sum(len(s) for s in ret.values() if isinstance(s, dict))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    rows = {}
    for i in range(args.runs):
        for label, target, sls in [("meta infra", "meta", ("infra",))] + \
                [(n + " highstate", n, ()) for n in NODES] + [("all four at once", "*", ())]:
            took, loud, count = dry_run(target, *sls)
            rows.setdefault(label, []).append(took)
            print("run %d: %-18s %5.1f s  %3d states, %d reporting changes or None" % (
                i + 1, label, took, count, loud), flush=True)
    print("\nmedian of %d runs:" % args.runs)
    for label, times in rows.items():
        print("  %-18s %5.1f s (max %.1f)" % (label, statistics.median(times), max(times)))


if __name__ == "__main__":
    main()
