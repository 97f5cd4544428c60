#!/usr/bin/env python3
"""Benchmark: backups and point-in-time recovery of pg-test in the sandbox (issue 11).

    /opt/pigsty/venv/bin/python bench/backup.py [--scale 70] [--rounds 2] [--load 90] [--full-only]

On a pgbench database (``bench_backup``, ``pgbench -i -s SCALE`` on the live primary through its
local socket: scale 70 is about 1.05 GB) of pg-test, with the repository on meta over TLS:

1. **Full backup**, ``--rounds`` pairs after an untimed warm-up, the order alternating: ``salt-run pigsty_backup.backup type=full``
   (our command: Salt's CLI, the runner's checks and lock, its one Salt job on meta, the metrics
   refresh it starts) and a bare ``pgbackrest backup`` on meta with the same argument vector the runner
   builds (``_utils/pigsty_backup.backup_argv``: same source replica, same options). Wall
   times from the host, the database size, throughput, and the ratio ours / bare (median).
2. **Incremental** after 5 % of pgbench_accounts changed (the first 5 % of its rows updated,
   i.e. about 5 % of its pages): time and the size pgBackRest reports for it.
3. **RPO under load**: pgbench (4 clients, ``--load`` seconds) on the primary; every 0.5 s
   the current WAL segment and pg_stat_archiver's last archived segment are read through the
   VIP (5436). A segment's lag is the time from when it was first seen current to when it was
   first seen archived: data written at any moment is in the repository at most that long
   afterwards. Sampling continues after the load until the last segment is archived (at most
   archive_timeout + 60 s: pg_archive_timeout closes a partially filled segment).
4. **RTO**: an in-place restore to a time noted after the load (``pigsty_backup.restore``,
   confirm=pg-test); from the command to the first answer of 5433 (through the VIP) after it
   went down, to the runner's return, and to two replicas streaming again.

The database is dropped at the end, whatever happened. Traffic goes only to 10.10.10.0/24;
every loop is bounded in time.
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

import psycopg2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))   # shared test helpers (pg.py)
sys.path.insert(0, os.path.join(REPO, "_utils"))             # the runner's argument vector
from pg import user_password  # noqa: E402
import pigsty_backup  # noqa: E402
from benchlib import sandbox  # noqa: E402
from failover import MEMBERS, NODE_OF, role, wait  # noqa: E402

DB = "bench_backup"
VIP = "10.10.10.3"
DBA = ("dbuser_dba", user_password("pg-test", "dbuser_dba"))


def sql(statement, port=5436, dbname="postgres", timeout=5):
    conn = psycopg2.connect(host=VIP, port=port, user=DBA[0], password=DBA[1], dbname=dbname,
                            connect_timeout=timeout, sslmode="require")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def leader_now():
    return next((i for i in MEMBERS if role(MEMBERS[i]) == "primary"), None)


def streaming():
    rows = sql("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
    return sorted(r[0] for r in rows)


def as_postgres(node, *argv, timeout=3600):
    """A command as the dbsu on a database node (local socket: no password anywhere)."""
    return sandbox("exec", node, "runuser", "-u", "postgres", "--", *argv, timeout=timeout)


def salt_run(*args, timeout=7200):
    """The runner's return: the last JSON document (progress events come first, one each)."""
    out = sandbox("exec", "meta", "salt-run", "--out=json", *args, timeout=timeout)
    decoder, last, i = json.JSONDecoder(), None, out.find("{")
    while 0 <= i < len(out):
        try:
            last, i = decoder.raw_decode(out, i)
        except ValueError:
            i += 1
        i = out.find("{", i)
    return last


def timed(func):
    t0 = time.monotonic()
    out = func()
    return time.monotonic() - t0, out


def mb(n):
    return n / 1048576.0


def checkpoint():
    """Before each timed backup, not timed, on every member (a restartpoint on a replica):
    the backup's own fast checkpoint, on the primary and on the replica it copies from,
    then finds as little to write as the previous one did (the first backup after
    pgbench's load would otherwise flush the whole load and pay for it alone)."""
    for member in MEMBERS:
        as_postgres(NODE_OF[member], "psql", "-q", "-c", "CHECKPOINT", timeout=600)


def full_backups(rounds, leader):
    """Rounds of one backup of each kind, the order alternating (ours first in odd rounds,
    bare first in even ones: the second of a pair reads files the first just brought into
    the page cache), after one untimed bare backup that warms the cache for both."""
    ours, bare, timings = [], [], []
    data = salt_run("pigsty_backup.backup", "cluster=pg-test", "type=full")
    if data.get("result") is not True:
        sys.exit("the runner's full backup failed: %s" % data)
    source = data["source"]
    others = [i for i in MEMBERS if i != source and i != leader]
    hosts = [NODE_OF[source], NODE_OF[leader]] + [NODE_OF[i] for i in others]
    argv = pigsty_backup.backup_argv("pg-test", "full", hosts, True)

    def run_ours():
        checkpoint()
        seconds, out = timed(lambda: salt_run("pigsty_backup.backup", "cluster=pg-test", "type=full"))
        if out.get("result") is not True or out.get("source") != source:
            sys.exit("the runner's full backup failed or changed source: %s" % out)
        ours.append(seconds)
        timings.append(out)

    def run_bare():
        checkpoint()
        seconds, _out = timed(lambda: sandbox("exec", "meta", "runuser", "-u", "postgres", "--", *argv,
                                              timeout=7200))
        bare.append(seconds)
    run_bare()                                  # warm-up, not counted
    bare.pop()
    for i in range(rounds):
        for step in ((run_ours, run_bare) if i % 2 == 0 else (run_bare, run_ours)):
            step()
        out = timings[-1]
        print("  full: ours %.1f s (from %s; pgBackRest inside it %.1f s), bare pgbackrest %.1f s; "
              "ours - bare %+.1f s; the runner's timings %s" % (
                  ours[-1], source, out["seconds"], bare[-1], ours[-1] - bare[-1],
                  json.dumps(out.get("timings"), sort_keys=True)))
    return ours, bare


def newest_backup():
    out = sandbox("exec", "meta", "runuser", "-u", "postgres", "--", "pgbackrest",
                  "--config=%s" % pigsty_backup.CONFIG, "--stanza=pg-test", "--output=json", "info")
    backups = json.loads(out)[0]["backup"]
    return backups[-1]


class ArchiveWatch(threading.Thread):
    """Samples the current WAL segment and the last archived one every 0.5 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.first_current, self.first_archived, self.stop_at = {}, {}, None
        self.failed = []

    def run(self):
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline and (self.stop_at is None or time.monotonic() < self.stop_at):
            try:
                cur, last, failed = sql("SELECT pg_walfile_name(pg_current_wal_lsn()), "
                                        "last_archived_wal, failed_count FROM pg_stat_archiver")[0]
            except psycopg2.Error:
                time.sleep(0.5)
                continue
            now = time.monotonic()
            self.first_current.setdefault(cur, now)
            self.failed.append(failed)
            if last and len(last) == 24:
                for seg in self.first_current:
                    if seg <= last:
                        self.first_archived.setdefault(seg, now)
            time.sleep(0.5)

    def lags(self):
        return {s: self.first_archived[s] - t for s, t in self.first_current.items()
                if s in self.first_archived}


def rpo_under_load(leader, seconds):
    timeout = int(sql("SELECT setting FROM pg_settings WHERE name = 'archive_timeout'")[0][0])
    watch = ArchiveWatch()
    watch.start()
    as_postgres(NODE_OF[leader], "pgbench", "-c", "4", "-j", "2", "-T", str(seconds), "-n", DB,
                timeout=seconds + 300)
    during = set(watch.first_current)
    wait(lambda: all(s in watch.first_archived for s in during), timeout + 60, 0.5)
    watch.stop_at = time.monotonic()
    watch.join(10)
    lags = {s: v for s, v in watch.lags().items() if s in during}
    missing = sorted(during - set(lags))
    return timeout, lags, missing, max(watch.failed or [0]) - min(watch.failed or [0])


def rto(target):
    """(5433 answers again after going down, runner returned, two replicas streaming) in s."""
    marks = {}
    t0 = time.monotonic()

    def probe():
        went_down = False
        while time.monotonic() - t0 < 3600 and "answers" not in marks:
            try:
                sql("SELECT 1", port=5433, timeout=2)
                if went_down:
                    marks["answers"] = time.monotonic() - t0
            except psycopg2.Error:
                went_down = True
            time.sleep(0.2)
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    data = salt_run("pigsty_backup.restore", "cluster=pg-test", "target=%s" % target, "confirm=pg-test")
    marks["returned"] = time.monotonic() - t0
    if data.get("result") is not True:
        sys.exit("the restore failed: %s" % data)
    ok, _ = wait(lambda: len(streaming()) == 2, 1200, 1)
    marks["streaming"] = (time.monotonic() - t0) if ok else None
    prober.join(60)
    return marks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=70, help="pgbench scale (70: about 1.05 GB)")
    ap.add_argument("--rounds", type=int, default=2, help="full backups of each kind")
    ap.add_argument("--load", type=int, default=90, help="seconds of pgbench for the RPO part")
    ap.add_argument("--full-only", action="store_true",
                    help="only part 1 (full backups, ours and bare), e.g. at another --scale")
    args = ap.parse_args()
    if not (1 <= args.scale <= 300 and 1 <= args.rounds <= 5 and 10 <= args.load <= 600):
        sys.exit("--scale 1-300, --rounds 1-5, --load 10-600 (bounded runs)")
    ok, _ = wait(lambda: leader_now() and len(streaming()) == 2, 240, 1)
    if not ok:
        sys.exit("pg-test is not a leader with two streaming replicas after 240 s")
    leader = leader_now()
    node = NODE_OF[leader]
    print("pg-test leader %s; pgbench -i -s %d into %s" % (leader, args.scale, DB))
    try:
        as_postgres(node, "dropdb", "--if-exists", "--force", DB)
        as_postgres(node, "createdb", DB)
        init, _ = timed(lambda: as_postgres(node, "pgbench", "-i", "-q", "-s", str(args.scale), DB))
        size = sql("SELECT pg_database_size('%s')" % DB)[0][0]
        print("  initialised in %.0f s: %s is %.0f MB" % (init, DB, mb(size)))
        lsn = sql("SELECT pg_current_wal_lsn()::text")[0][0]
        wait(lambda: all(r[0] for r in sql("SELECT replay_lsn >= '%s'::pg_lsn FROM pg_stat_replication" % lsn)),
             600, 1)

        cli = statistics.median(timed(lambda: salt_run("test.arg", "x"))[0] for _ in range(3))
        print("   Salt's CLI alone (salt-run test.arg, from the host like ours): median %.1f s" % cli)
        print("1. full backups (%d rounds, alternating ours / bare)" % args.rounds)
        ours, bare = full_backups(args.rounds, leader)
        newest = newest_backup()
        dbsize = newest["info"]["size"]
        ratio = statistics.median(ours) / statistics.median(bare)
        print("   database %.0f MB, in the repository %.0f MB (lz4)" % (
            mb(dbsize), mb(newest["info"]["repository"]["size"])))
        print("   ours: median %.1f s (%.0f MB/s); bare pgbackrest: median %.1f s (%.0f MB/s); "
              "ratio ours/bare %.3f" % (statistics.median(ours), mb(dbsize) / statistics.median(ours),
                                        statistics.median(bare), mb(dbsize) / statistics.median(bare), ratio))
        if args.full_only:
            return

        rows = args.scale * 100000 // 20
        print("2. incremental after 5 %% of pgbench_accounts changed (%d rows)" % rows)
        as_postgres(node, "psql", "-q", "-d", DB, "-c",
                    "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= %d" % rows)
        seconds, data = timed(lambda: salt_run("pigsty_backup.backup", "cluster=pg-test", "type=incr"))
        if data.get("result") is not True:
            sys.exit("the incremental backup failed: %s" % data)
        inc = newest_backup()
        print("   incr: %.1f s, %.0f MB changed of %.0f MB (repository %.0f MB)" % (
            seconds, mb(inc["info"]["delta"]), mb(inc["info"]["size"]),
            mb(inc["info"]["repository"]["delta"])))

        print("3. RPO under pgbench load (%d s, 4 clients)" % args.load)
        timeout, lags, missing, failures = rpo_under_load(leader, args.load)
        values = sorted(lags.values())
        print("   archive_timeout %d s; %d segments written during the load; archive lag: median "
              "%.1f s, max %.1f s; not archived within archive_timeout + 60 s: %d; archive failures: %d" % (
                  timeout, len(lags) + len(missing), statistics.median(values) if values else float("nan"),
                  max(values) if values else float("nan"), len(missing), failures))

        target = sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                     "'YYYY-MM-DD HH24:MI:SS.US') || '+00'")[0][0]
        time.sleep(2)
        print("4. in-place restore of pg-test to %s" % target)
        marks = rto(target)
        print("   5433 answers again %.1f s after the command; the runner returned after %.1f s; "
              "two replicas streaming after %s s" % (
                  marks.get("answers", float("nan")), marks["returned"],
                  "%.1f" % marks["streaming"] if marks.get("streaming") else "(not within 1200)"))
    finally:
        leader = leader_now() or leader
        sandbox("exec", NODE_OF[leader], "runuser", "-u", "postgres", "--", "dropdb", "--if-exists", "--force", DB,
                check=False)


if __name__ == "__main__":
    main()
