#!/usr/bin/env python3
"""Benchmark: switchovers back and forth (A -> B -> A -> B) with connection-churning clients.

    /opt/pigsty/venv/bin/python bench/switchover_sequence.py [--sequences N] [--pause S]

Needs the sandbox up with pg-test streaming. Per sequence: three planned switchovers through
`salt-run pigsty_ha.switchover`, ``--pause`` seconds apart, between the leader A and a
replica B, while six clients write through 5433 every 20 ms: four open a new connection for
every transaction (three through the member C that is never the leader, one through A) and
two keep one connection (one through C, one through A). Nothing ends the hand-offs between
the switchovers, so each one starts with a member still drained and forwarding from the one
before (issue 18). Printed per sequence: failed transactions of each client kind, the
longest gap between commits of each kind, how long the runner says clients waited. Traffic
goes only to 10.10.10.0/24; every client loop is bounded in time.
"""
import argparse
import json
import statistics
import threading
import time

import psycopg2

from failover import MEMBERS, Writer, leader_now, sandbox, streaming_from, user_password


def switchover(candidate):
    out = sandbox("exec", "meta", "salt-run", "--out=json", "pigsty_ha.switchover", "pg-test",
                  "candidate=" + candidate, check=False)
    try:
        return json.loads(out)
    except ValueError:
        return {"result": False, "comment": out[-300:]}


def wait_streaming(leader, member, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if member in streaming_from(MEMBERS[leader]):
            return True
        time.sleep(0.5)
    return False


def one_sequence(pause):
    a = leader_now()
    b = next(i for i in sorted(MEMBERS) if i != a)
    c = next(i for i in MEMBERS if i not in (a, b))
    stop = threading.Event()
    churn = [Writer(MEMBERS[c], False, stop, 300) for _ in range(3)] + [Writer(MEMBERS[a], False, stop, 300)]
    long = [Writer(MEMBERS[c], True, stop, 300), Writer(MEMBERS[a], True, stop, 300)]
    for w in churn + long:
        w.start()
    waited, steps = [], []
    time.sleep(2)
    t0 = time.monotonic()
    leader = a
    for target in (b, a, b):
        wait_streaming(leader, target)
        res = switchover(target)
        steps.append("%s->%s %s" % (leader, target, "ok" if res.get("new") == target else "FAILED: %s" % res.get("comment")))
        waited.append(res.get("clients_waited_s") or float("nan"))
        leader = target if res.get("new") == target else leader_now()
        time.sleep(pause)
    t1 = time.monotonic()
    stop.set()
    for w in churn + long:
        w.join(20)
    return {
        "steps": steps, "waited": max(waited),
        "churn_failed": sum(len(w.failed) for w in churn), "long_failed": sum(len(w.failed) for w in long),
        "churn_gap": max(w.max_gap(t0, t1) for w in churn), "long_gap": max(w.max_gap(t0, t1) for w in long),
        "transactions": sum(len(w.ok) for w in churn + long),
        "errors": sorted({e for w in churn + long for e in w.errors})[:5],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequences", type=int, default=7)
    p.add_argument("--pause", type=float, default=3.0)
    args = p.parse_args()
    run(args.sequences, args.pause)


def run(sequences, pause):
    """``sequences`` back-and-forth sequences, ``pause`` seconds between switchovers; prints
    each and the median / max (also reached as `bench/failover.py --switchover --sequences N`)."""
    leader = leader_now()
    conn = psycopg2.connect(host=MEMBERS[leader], port=5436, user="dbuser_dba", dbname="test", connect_timeout=3,
                            password=user_password("pg-test", "dbuser_dba"))
    conn.autocommit = True
    conn.cursor().execute("create table if not exists bench_failover (id bigserial primary key, at timestamptz); "
                          "grant insert on bench_failover to test; grant usage on sequence bench_failover_id_seq to test")
    conn.close()
    results = []
    for i in range(sequences):
        r = one_sequence(pause)
        results.append(r)
        print("sequence %d: %s | %d transactions, failed: per-transaction clients %d, long sessions %d | "
              "longest commit gap: per-transaction %.3fs, long %.3fs | clients waited max %.3fs" % (
                  i + 1, ", ".join(r["steps"]), r["transactions"], r["churn_failed"], r["long_failed"],
                  r["churn_gap"], r["long_gap"], r["waited"]), flush=True)
        for e in r["errors"]:
            print("    error: " + e, flush=True)
        sandbox("exec", "meta", "salt-run", "pigsty_ha.reconcile", "pg-test", check=False)
        time.sleep(5)
    if leader_now() != "pg-test-1":
        wait_streaming(leader_now(), "pg-test-1")
        switchover("pg-test-1")
    print("\nmedian / max over %d sequences (3 switchovers each):" % len(results))
    for key in ("churn_failed", "long_failed", "churn_gap", "long_gap", "waited"):
        values = [r[key] for r in results]
        print("  %-13s %7.3f / %7.3f" % (key, statistics.median(values), max(values)))


if __name__ == "__main__":
    main()
