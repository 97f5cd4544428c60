#!/usr/bin/env python3
"""Benchmark: the infra role on the meta node, cold and re-applied; meta memory.

    /usr/bin/python3 bench/infra_apply.py [--runs N]

Each run: fresh sandbox machines (`down`, `up --no-apply`: bare Debian + Salt, warm apt
cache), then `salt meta state.apply node,dcs,infra` (timed: "cold", includes building the
local package repository), the same again (timed: "re-apply", must change nothing). After
the last run the site orchestration creates both clusters, and the memory of the meta node
(PSS of every process) is printed with everything up.
"""
import argparse
import json
import statistics
import sys
import time

from benchlib import sandbox as sh   # also puts sandbox/ on sys.path
import sandbox  # noqa: E402  (the sandbox's own helpers: machine memory)


def apply_infra():
    t0 = time.monotonic()
    out = sh("exec", "meta", "salt", "-t", "1800", "--out=json", "--static", "meta", "state.apply", "node,dcs,infra")
    elapsed = time.monotonic() - t0
    states = json.loads(out)["meta"]
    failed = [k for k, v in states.items() if not v["result"]]
    if failed:
        sys.exit("infra failed: %s" % failed[:5])
    return elapsed, sum(1 for v in states.values() if v["changes"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    colds, reapplies = [], []
    for i in range(args.runs):
        sh("down")
        sh("up", "--no-apply")
        sh("exec", "meta", "salt", "*", "saltutil.sync_all")
        cold, changed = apply_infra()
        again, changed_again = apply_infra()
        colds.append(cold)
        reapplies.append(again)
        print("run %d: infra cold %.1f s (%d states changed); re-apply %.1f s (%d changed)" % (
            i + 1, cold, changed, again, changed_again), flush=True)
    sh("exec", "meta", "salt-run", "state.orchestrate", "orch.site")
    time.sleep(15)
    print("meta memory with infra + etcd + pg-meta + salt-master up: %.0f MiB (PSS)" % sandbox.machine_memory_mib("meta"))
    print("\nmedian infra cold %.1f s, re-apply %.1f s (n=%d)" % (
        statistics.median(colds), statistics.median(reapplies), args.runs))


if __name__ == "__main__":
    main()
