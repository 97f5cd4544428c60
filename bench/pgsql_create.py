#!/usr/bin/env python3
"""Benchmark: create pg-test from bare nodes, re-apply it (idempotent), memory per node.

    /usr/bin/python3 bench/pgsql_create.py [--runs N]

Each run: fresh sandbox machines (`down`, then `up --no-apply`: bare Debian + Salt, warm
apt cache), the meta node's node, DCS and infra roles (not timed), then `state.orchestrate orch.pgsql` for pg-test
(timed: "create"), the same orchestration again (timed: "re-apply", must change nothing),
then the memory of every process of each machine (sum of PSS, from smaps_rollup).
Prints per-run figures and the medians. Leaves the sandbox up with pg-test.
"""
import argparse
import json
import statistics
import sys
import time

from benchlib import sandbox as sh   # also puts sandbox/ on sys.path
import sandbox  # noqa: E402  (the sandbox's own helpers: machine memory)


def orchestrate(cluster):
    t0 = time.monotonic()
    out = sh("exec", "meta", "salt-run", "--out=json", "state.orchestrate", "orch.pgsql",
             "pillar=" + json.dumps({"pg_cluster": cluster}))
    elapsed = time.monotonic() - t0
    doc = json.loads(out)
    changed = 0
    for steps in doc.get("data", doc).values():
        for step in steps.values():
            if not step.get("result"):
                sys.exit("orchestration step failed: %s" % step.get("comment"))
            for states in ((step.get("changes") or {}).get("ret") or {}).values():
                if isinstance(states, dict):
                    changed += sum(1 for s in states.values() if isinstance(s, dict) and s.get("changes"))
    return elapsed, changed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    creates, reapplies = [], []
    for i in range(args.runs):
        sh("down")
        sh("up", "--no-apply")
        sh("exec", "meta", "salt", "*", "saltutil.sync_all")
        sh("exec", "meta", "salt", "-t", "1800", "meta", "state.apply", "node,dcs,infra")
        create, _ = orchestrate("pg-test")
        reapply, changed = orchestrate("pg-test")
        creates.append(create)
        reapplies.append(reapply)
        print("run %d: create pg-test from bare nodes %.1f s; idempotent re-apply %.1f s "
              "(%d changes)" % (i + 1, create, reapply, changed), flush=True)
    time.sleep(10)   # let services settle before measuring memory
    for name in ("meta", "node-1", "node-2", "node-3"):
        print("memory %-6s %6.0f MiB (PSS of every process in the machine)" % (name, sandbox.machine_memory_mib(name)))
    print("\nmedian create %.1f s, median re-apply %.1f s (n=%d)" % (
        statistics.median(creates), statistics.median(reapplies), args.runs))


if __name__ == "__main__":
    main()
