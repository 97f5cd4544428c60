#!/usr/bin/env python3
"""Benchmark: acknowledged commits lost on a hard kill of the live primary, and two failovers in a row.

    /opt/pigsty/venv/bin/python bench/failover_loss.py --runs 7 [--sync]
    /opt/pigsty/venv/bin/python bench/failover_loss.py --twice --runs 3

Loss (default): per run, the **live** primary of pg-test (whichever member it is: the runs
do not switch back, so the killed member moves around the cluster as a real one drifts
from pillar) is hard-killed (`sandbox.py kill`) while 4 writers commit numbered rows through
5433 of the two other members (2 on one connection, 2 with a connection per transaction,
connect timeout 2 s). A row counts as acknowledged when its COMMIT returned. After the
promotion and 5 s of writes, the new primary is asked which acknowledged rows it has.
Printed per run: acknowledged rows, lost ones, failed attempts, promotion time, write gap;
then the totals. ``--sync`` runs with Patroni's synchronous mode (what pg_rpo: 0 sets; set
here through Patroni's dynamic config, and set back at the end); without it the cluster
runs as configured (asynchronous, Patroni's maximum_lag_on_failover printed beside).
Then the killed member's machine is started again and rejoins.

--twice: two failovers in a row: the live primary A is killed; once B is promoted and
takes writes, B (a primary pillar calls a replica) is killed too. A reader opens a new
connection per query to 5434 of the third member C, which survives both (every 50 ms).
Printed: failed reads after each kill, promotions, write gaps. Then A and B start again.

Traffic goes only to 10.10.10.0/24; every loop is bounded in time.
"""
import argparse
import json
import statistics
import sys
import threading
import time

import psycopg2

from benchlib import sandbox
from failover import MEMBERS, NODE_OF, TEST_PW, Traffic, role, user_password, wait  # noqa: E402

DBA_PW = user_password("pg-test", "dbuser_dba")


def leader_now():
    return next((i for i in MEMBERS if role(MEMBERS[i]) == "primary"), None)


def healthy():
    """A leader and two replicas that report running (bounded)."""
    ok, _ = wait(lambda: leader_now() and sum(role(ip) == "replica" for ip in MEMBERS.values()) == 2, 240, 1)
    if not ok:
        sys.exit("pg-test is not a leader with two replicas after 240 s")


def patroni_patch(body):
    node = NODE_OF[leader_now()]
    out = sandbox("exec", "meta", "salt", "--out=json", node, "patroni.config_patch", json.dumps(body))
    return json.loads(out)[node]


def patroni_config():
    node = NODE_OF[leader_now()]
    return json.loads(sandbox("exec", "meta", "salt", "--out=json", node, "patroni.config"))[node]


class Committer(threading.Thread):
    """Commits numbered rows (from ``base``) through 5433 of ``host``: on one connection
    (``persistent``) or one per transaction; ``committed``: the numbers whose COMMIT
    returned. Bounded by ``limit`` seconds."""

    def __init__(self, host, persistent, base, run, limit=150):
        super().__init__(daemon=True)
        self.host, self.persistent, self.base, self.run_id, self.limit = host, persistent, base, run, limit
        self.stop = threading.Event()
        self.committed, self.failed = set(), 0

    def run(self):
        deadline = time.monotonic() + self.limit
        n, conn = self.base, None
        while not self.stop.is_set() and time.monotonic() < deadline:
            n += 1
            try:
                if conn is None:
                    conn = psycopg2.connect(host=self.host, port=5433, user="test", password=TEST_PW,
                                            dbname="test", connect_timeout=2)
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("insert into bench_loss(run, n) values (%s, %s)", (self.run_id, n))
                self.committed.add(n)
            except psycopg2.Error:
                self.failed += 1
                conn = None
            if conn is not None and not self.persistent:
                conn.close()
                conn = None
            time.sleep(0.02)


def present(primary, run):
    conn = psycopg2.connect(host=MEMBERS[primary], port=5436, user="dbuser_dba", password=DBA_PW, dbname="test",
                            connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute("select n from bench_loss where run = %s", (run,))
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def start_node(node):
    sandbox("start", node, check=False)


def one_loss_run(run):
    old = leader_now()
    others = [i for i in MEMBERS if i != old]
    writers = [Committer(MEMBERS[others[k % 2]], k < 2, k * 10 ** 7, run) for k in range(4)]
    for w in writers:
        w.start()
    time.sleep(3)
    last_before = time.monotonic()
    sandbox("kill", NODE_OF[old])
    t_kill = time.monotonic()
    new, t_promo = wait(lambda: next((i for i in others if role(MEMBERS[i]) == "primary"), None), 120, 0.1)
    if not new:
        for w in writers:
            w.stop.set()
        start_node(NODE_OF[old])
        sys.exit("run %d: no promotion within 120 s after killing %s" % (run, old))
    before = sum(len(w.committed) for w in writers)
    wait(lambda: sum(len(w.committed) for w in writers) > before + 20, 60, 0.1)
    time.sleep(5)
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(30)
    acknowledged = set().union(*(w.committed for w in writers))
    lost = acknowledged - present(new, run)
    start_node(NODE_OF[old])
    healthy()
    return {"killed": old, "new": new, "acknowledged": len(acknowledged), "lost": len(lost),
            "failed": sum(w.failed for w in writers), "promotion": t_promo - t_kill,
            "since_last_commit": t_kill - last_before}


def loss_runs(runs, sync):
    healthy()
    conf = patroni_config()
    print("Patroni: synchronous_mode %s, maximum_lag_on_failover %s bytes" % (
        sync, conf.get("maximum_lag_on_failover")), flush=True)
    results = []
    for i in range(runs):
        r = one_loss_run(int(time.time() * 1000))          # a run id of its own
        results.append(r)
        print("run %d: killed %s -> %s promoted in %.1fs  acknowledged %d  lost %d  failed attempts %d" % (
            i + 1, r["killed"], r["new"], r["promotion"], r["acknowledged"], r["lost"], r["failed"]), flush=True)
    killed = sorted({r["killed"] for r in results})
    print("\n%s, %d hard kills of the live primary (killed: %s): acknowledged %d, lost %d; promotion "
          "median %.1fs / max %.1fs" % ("synchronous" if sync else "asynchronous", len(results), ", ".join(killed),
                                        sum(r["acknowledged"] for r in results), sum(r["lost"] for r in results),
                                        statistics.median(r["promotion"] for r in results),
                                        max(r["promotion"] for r in results)), flush=True)


def twice_run():
    a = leader_now()
    stop = threading.Event()
    entry = [i for i in MEMBERS if i != a]
    writer = Traffic(MEMBERS[entry[0]], 5433, "insert into bench_failover(at) values (now())", stop)
    writer.start()
    time.sleep(3)
    sandbox("kill", NODE_OF[a])
    t1 = time.monotonic()
    b, t_b = wait(lambda: next((i for i in entry if role(MEMBERS[i]) == "primary"), None), 120, 0.1)
    if not b:
        stop.set()
        start_node(NODE_OF[a])
        sys.exit("first kill of %s: no promotion within 120 s" % a)
    c = next(i for i in entry if i != b)
    # a reader on the member that survives both kills, and a writer through it
    reader = Traffic(MEMBERS[c], 5434, "select 1", stop)
    writer2 = Traffic(MEMBERS[c], 5433, "insert into bench_failover(at) values (now())", stop)
    reader.start()
    writer2.start()
    wait(lambda: writer2.ok and writer2.ok[-1] > t_b, 60)
    time.sleep(5)
    reads_before = len(reader.failed)
    sandbox("kill", NODE_OF[b])
    t2 = time.monotonic()
    new, t_c = wait(lambda: "ok" if role(MEMBERS[c]) == "primary" else None, 120, 0.1)
    wait(lambda: writer2.ok and writer2.ok[-1] > t2, 60)
    time.sleep(5)
    stop.set()
    for t in (writer, reader, writer2):
        t.join(10)
    first_gap = min([t for t in writer.ok + writer2.ok if t > t1] or [float("nan")]) - max(
        [t for t in writer.ok if t < t1] or [t1])
    second_gap = min([t for t in writer2.ok if t > t2] or [float("nan")]) - max([t for t in writer2.ok if t < t2] or [t2])
    out = {"a": a, "b": b, "c": c, "promotion_1": t_b - t1, "promotion_2": (t_c - t2) if new else float("nan"),
           "write_gap_1": first_gap, "write_gap_2": second_gap,
           "reads_failed_after_1st": reads_before, "reads_failed_after_2nd": len(reader.failed) - reads_before,
           "reads": len(reader.ok)}
    start_node(NODE_OF[a])
    start_node(NODE_OF[b])
    healthy()
    return out


def twice_runs(runs):
    healthy()
    results = []
    for i in range(runs):
        r = twice_run()
        results.append(r)
        print("run %d: kill %s -> %s (%.1fs, write gap %.1fs), kill %s -> %s (%.1fs, write gap %.1fs); "
              "new reads through 5434 of %s: %d ok, %d failed after the 1st kill (it began after the "
              "1st promotion), %d failed after the 2nd" % (
                  i + 1, r["a"], r["b"], r["promotion_1"], r["write_gap_1"], r["b"], r["c"], r["promotion_2"],
                  r["write_gap_2"], r["c"], r["reads"], r["reads_failed_after_1st"], r["reads_failed_after_2nd"]),
              flush=True)
    print("\n%d double failovers: failed new reads on the surviving member after the 2nd kill: %d in total"
          % (len(results), sum(r["reads_failed_after_2nd"] for r in results)), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--sync", action="store_true", help="Patroni's synchronous mode (pg_rpo: 0) during the runs")
    p.add_argument("--twice", action="store_true", help="two failovers in a row, reads on the survivor")
    args = p.parse_args()
    healthy()
    conn = psycopg2.connect(host=MEMBERS[leader_now()], port=5436, user="dbuser_dba", dbname="test",
                            connect_timeout=3, password=DBA_PW)
    conn.autocommit = True
    conn.cursor().execute(
        "create table if not exists bench_loss (run bigint, n bigint, primary key (run, n)); "
        "grant insert on bench_loss to test; "
        "create table if not exists bench_failover (id bigserial primary key, at timestamptz); "
        "grant insert on bench_failover to test; grant usage on sequence bench_failover_id_seq to test")
    conn.close()
    if args.twice:
        return twice_runs(args.runs)
    if not args.sync:
        return loss_runs(args.runs, False)
    patroni_patch({"synchronous_mode": True})
    try:
        wait(lambda: any(m.get("role") == "sync_standby" for m in json.loads(sandbox(
            "exec", "meta", "salt", "--out=json", NODE_OF[leader_now()], "patroni.members"))[NODE_OF[leader_now()]]),
            60, 1)
        return loss_runs(args.runs, True)
    finally:
        healthy()
        patroni_patch({"synchronous_mode": False})


if __name__ == "__main__":
    main()
