"""Sequences and less common faults in the real sandbox (issues 13 and 18): switchovers back
and forth with clients that connect for every transaction, two at once, a second failover
from a primary that pillar calls a replica, a hard-killed replica, synchronous mode under a
hard kill, removal while Patroni does not answer. Each test is bounded and puts the cluster
back (a streaming pg-test with its primary on pg-test-1) even when it fails."""
import json
import subprocess
import threading
import time

import psycopg2
import pytest

import patroni_rest
from pg import query
from pg_test_cluster import (DBA, healthy_cluster, IPS, live_leader, NODE_OF, orchestrate, put_back,
                             ready_candidate, streaming_replicas_any, switchover, TEST, Writer)
from sandbox_cli import node_exec, salt_json, SANDBOX, wait_for

pytestmark = pytest.mark.disruptive


@pytest.fixture
def cluster(sandbox):
    wait_for(healthy_cluster, 240, 2)
    query(IPS[live_leader()], 5436, *DBA, "drop table if exists ha_switch; "
          "create table ha_switch (n bigint primary key, at timestamptz default now()); "
          "grant insert, select on ha_switch to test", dbname="test")
    try:
        yield
    finally:
        put_back()
        query(IPS["pg-test-1"], 5436, *DBA, "drop table if exists ha_switch", dbname="test")


def rows():
    return {r[0] for r in query(IPS[live_leader()], 5436, *DBA, "select n from ha_switch", dbname="test")}


def stop_all(writers):
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(60)


def test_back_and_forth_switchovers_fail_no_connection_and_keep_every_row(cluster):
    """Issue 18: A -> B -> A -> B, 3 s apart, while 4 clients open a new connection for every
    transaction and 2 keep theirs, through 5433 of the member that is never the leader and of
    the first leader. The members left drained by one hand-off (their sessions are still
    being forwarded) become primary again in the next: 0 failed, every row kept."""
    a = live_leader()
    b = next(i for i in ("pg-test-2", "pg-test-3", "pg-test-1") if i != a)
    c = next(i for i in IPS if i not in (a, b))
    writers = [Writer(IPS[c], False, k * 10 ** 6, limit=240) for k in range(1, 4)]
    writers += [Writer(IPS[a], False, 4 * 10 ** 6, limit=240)]
    writers += [Writer(IPS[c], True, 5 * 10 ** 6, limit=240), Writer(IPS[a], True, 6 * 10 ** 6, limit=240)]
    for w in writers:
        w.start()
    results = []
    try:
        time.sleep(2)
        for target in (b, a, b):
            wait_for(lambda t=target: ready_candidate(t), 120, 0.5)
            data, rc, res = switchover(target)
            results.append((target, rc, data))
            assert rc == 0 and data["new"] == target, res.stdout + res.stderr
            time.sleep(3)
    finally:
        stop_all(writers)
    failed = [f for w in writers for f in w.failed]
    committed = [n for w in writers for n in w.committed]
    print("switchovers %s; %d transactions, %d failed" % (
        [(t, d.get("clients_waited_s"), d.get("cleaned_before")) for t, _rc, d in results], len(committed), len(failed)))
    assert failed == []
    assert all(len(w.committed) > 20 for w in writers)
    assert set(committed) <= rows()


def test_two_switchovers_at_once_one_is_refused_and_no_transaction_fails(cluster):
    a = live_leader()
    b, c = [i for i in ("pg-test-2", "pg-test-3", "pg-test-1") if i != a][:2]
    writers = [Writer(IPS[c], False, 7 * 10 ** 6, limit=120), Writer(IPS[b], True, 8 * 10 ** 6, limit=120)]
    for w in writers:
        w.start()
    answers = {}
    try:
        time.sleep(1)
        threads = [threading.Thread(target=lambda t=t: answers.__setitem__(t, switchover(t))) for t in (b, c)]
        for t in threads:
            t.start()
            time.sleep(0.3)
        for t in threads:
            t.join(300)
        time.sleep(2)
    finally:
        stop_all(writers)
    ok = [t for t, (_d, rc, _r) in answers.items() if rc == 0]
    refused = [t for t, (_d, rc, r) in answers.items() if rc != 0]
    # one switched; the other was refused while the first ran (or, serialised, ran after it)
    assert len(ok) >= 1, answers
    for t in refused:
        out = answers[t][2].stdout
        assert "in progress" in out or "cannot take over" in out or "is the leader already" in out, out
    assert [f for w in writers for f in w.failed] == []
    assert set(n for w in writers for n in w.committed) <= rows()


class Reader(threading.Thread):
    """Opens a new connection through 5434 for every query (libpq's shortest connect
    timeout, 2 s), bounded in time, and keeps each failure with the time its attempt began.
    A connection begun after the kill that fails is what the read service must avoid; one
    that was being opened or used on the killed server at the kill fails whatever a proxy
    does, and is counted apart (``in_flight``)."""

    def __init__(self, host, limit):
        super().__init__(daemon=True)
        self.host, self.limit = host, limit
        self.ok, self.failures, self.stop = 0, [], threading.Event()

    def run(self):
        deadline = time.monotonic() + self.limit
        while not self.stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            try:
                conn = psycopg2.connect(host=self.host, port=5434, user=TEST[0], password=TEST[1], dbname="test",
                                        connect_timeout=2, application_name="pigsty-tests-reader")
                try:
                    with conn.cursor() as cur:
                        cur.execute("select 1")
                        cur.fetchall()
                finally:
                    conn.close()
                self.ok += 1
            except psycopg2.Error as exc:
                self.failures.append((began, str(exc).strip()[:160]))
            time.sleep(0.05)

    def failed_after(self, moment):
        return [f for f in self.failures if f[0] >= moment]

    def in_flight(self, moment):
        return [f for f in self.failures if f[0] < moment]


def read_through(hosts, seconds, kill):
    """Readers on ``hosts`` while ``kill`` runs; returns (readers, the moment the kill had
    returned: the machine is gone)."""
    readers = [Reader(h, seconds + 30) for h in hosts]
    for r in readers:
        r.start()
    try:
        time.sleep(1)
        kill()
        killed = time.monotonic()
        time.sleep(seconds)
    finally:
        for r in readers:
            r.stop.set()
        for r in readers:
            r.join(30)
    return readers, killed


def report(what, readers, killed):
    failed = [f for r in readers for f in r.failed_after(killed)]
    flight = [f for r in readers for f in r.in_flight(killed)]
    print("5434 after %s: %d reads, %d new connections failed %s, %d in flight at the kill %s" % (
        what, sum(r.ok for r in readers), len(failed), [(round(t - killed, 2), e[:60]) for t, e in failed[:3]],
        len(flight), flight[:2]))
    return failed, flight


def test_a_second_failover_from_a_drifted_primary_fails_no_new_read(cluster):
    """Issue 13: after a switchover the primary is a member pillar calls a replica; it is
    hard-killed. New connections through 5434 on the surviving members: 0 failed in 12 s."""
    target = "pg-test-2"
    if live_leader() != target:
        wait_for(lambda: ready_candidate(target), 120, 0.5)
        data, rc, res = switchover(target)
        assert rc == 0, res.stdout + res.stderr
    wait_for(lambda: len(streaming_replicas_any()) == 2, 120, 1)
    time.sleep(5)
    survivors = [IPS["pg-test-1"], IPS["pg-test-3"]]
    readers, killed = read_through(survivors, 12, lambda: subprocess.run(
        SANDBOX + ["kill", "node-2"], check=True, capture_output=True, timeout=60))
    failed, flight = report("a hard kill of the drifted primary", readers, killed)
    assert failed == [] and all(r.ok > 20 for r in readers)
    assert len(flight) <= len(readers)          # at most the one each reader had open
    wait_for(lambda: live_leader() in ("pg-test-1", "pg-test-3"), 90, 1)


def test_a_hard_killed_replica_fails_no_new_read(cluster):
    primary = live_leader()
    victim = next(i for i in ("pg-test-3", "pg-test-2", "pg-test-1") if i != primary)
    survivor = next(i for i in IPS if i not in (primary, victim))
    time.sleep(3)
    readers, killed = read_through([IPS[survivor], IPS[primary]], 12, lambda: subprocess.run(
        SANDBOX + ["kill", NODE_OF[victim]], check=True, capture_output=True, timeout=60))
    failed, flight = report("a hard kill of replica %s" % victim, readers, killed)
    # The dead replica is one of 5434's live servers: until the checks mark it down, a new
    # connection sent there waits 500 ms and is redispatched. When the checks mark it down,
    # on-marked-down shutdown-sessions (which also cuts sessions that would hang on a lost
    # host) cuts the one that is waiting on it at that instant: at most one per HAProxy
    # (measured with this configuration: exactly 1 per reader, of 115-150, in 2 runs of 2).
    assert len(failed) <= len(readers) and all(r.ok > 20 for r in readers)
    assert len(flight) <= len(readers)          # at most the one each reader had open


def patroni_patch(body):
    """PATCH the dynamic config through the patroni module on the leader's node (HTTPS, the
    cluster's login from its pillar; the allow-list refuses the host)."""
    node = NODE_OF[live_leader()]
    ret, rc = salt_json(node, "patroni.config_patch", json.dumps(body))
    assert rc == 0 and isinstance(ret.get(node), dict), ret
    return ret[node]


def sync_standby():
    doc = patroni_rest.get(IPS[live_leader()], "/cluster", timeout=3)
    return [m["name"] for m in doc["members"] if m["role"] == "sync_standby"]


def test_synchronous_mode_loses_no_acknowledged_commit_on_a_hard_kill(cluster):
    """Issue 13: pg_rpo 0's synchronous mode (set here through Patroni's dynamic config and
    set back after); 4 writers commit through 5433 while the primary's machine is killed:
    every commit the clients saw acknowledged is on the new primary."""
    patroni_patch({"synchronous_mode": True})
    try:
        wait_for(sync_standby, 60, 1)
        old = live_leader()
        entry = [IPS[i] for i in IPS if i != old]
        writers = [Writer(entry[k % 2], bool(k % 2), (9 + k) * 10 ** 6, limit=90) for k in range(4)]
        for w in writers:
            w.start()
        try:
            time.sleep(3)
            subprocess.run(SANDBOX + ["kill", NODE_OF[old]], check=True, capture_output=True, timeout=60)
            wait_for(lambda: live_leader() not in (None, old), 90, 0.5)
            time.sleep(5)
        finally:
            stop_all(writers)
        acknowledged = {n for w in writers for n in w.committed}
        present = rows()
        lost = acknowledged - present
        print("sync mode, hard kill of %s: %d acknowledged, %d lost, %d failed attempts" % (
            old, len(acknowledged), len(lost), sum(len(w.failed) for w in writers)))
        assert len(acknowledged) > 50 and lost == set()
    finally:
        subprocess.run(SANDBOX + ["start", "node-1"], capture_output=True, timeout=120)
        for node in ("node-2", "node-3"):
            subprocess.run(SANDBOX + ["start", node], capture_output=True, timeout=120)
        wait_for(lambda: live_leader() is not None, 120, 1)
        patroni_patch({"synchronous_mode": False})


def test_removal_while_patroni_does_not_answer_is_refused_and_deletes_nothing(cluster):
    """Issue 13: pg-test-3's Patroni runs but its REST API is cut off from the master; without
    pg_rm_force the removal is refused, and its data directory and services stay."""
    rule = ["INPUT", "-p", "tcp", "--dport", "8008", "!", "-s", "127.0.0.1", "-j", "DROP"]
    node_exec("node-3", "iptables", "-A", *rule, check=True)
    try:
        ok, _changed, _failures, res = orchestrate("orch.pgsql_remove",
                                                   {"pg_cluster": "pg-test", "pg_instances": ["pg-test-3"]})
        out = res.stdout + res.stderr
        assert not ok and "Patroni runs but its REST API does not answer" in out, out[-3000:]
    finally:
        node_exec("node-3", "iptables", "-D", *rule)
    assert node_exec("node-3", "systemctl", "is-active", "patroni").stdout.strip() == "active"
    assert node_exec("node-3", "test", "-f", "/pg/data/PG_VERSION").returncode == 0


def paused_databases(node):
    """Databases pgbouncer on ``node`` has paused (SHOW DATABASES' paused column)."""
    res = node_exec(node, "runuser", "-u", "postgres", "--", "psql", "-X", "-h", "/var/run/postgresql", "-p", "6432",
                    "-U", "postgres", "-d", "pgbouncer", "-F", "\t", "-Ac", "show databases", timeout=30)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        return ["console: %s" % (res.stderr.strip()[:200],)]
    head = lines[0].split("\t")
    col = head.index("paused")
    return [r.split("\t")[0] for r in lines[1:] if "\t" in r and r.split("\t")[col] == "1"]


KILL_BOUND = 20      # s from the kill until writes commit again and nothing is paused (watchdog: 5 s timer)


def test_a_minion_killed_mid_switchover_leaves_nothing_paused(cluster):
    """Kill the old primary's salt-minion (its whole cgroup, the hand-off's job included)
    while its pgbouncer is paused for the hand-off: writes through 5433 commit again, and no
    pgbouncer stays paused, within KILL_BOUND seconds of the kill, whatever the switchover
    did meanwhile; no acknowledged row is lost. The runner (fan-out without an answer), the
    reconciliation (resume_stale) and the node's own watchdog timer may each resume it."""
    a = live_leader()
    b = next(i for i in ("pg-test-2", "pg-test-3", "pg-test-1") if i != a)
    c = next(i for i in IPS if i not in (a, b))
    node = NODE_OF[a]
    # on the node: kill the minion as soon as the hand-off's pause marker appears (bounded)
    killer = subprocess.Popen(SANDBOX + ["exec", node, "bash", "-c",
                              "for i in $(seq 1200); do if [ -f /run/pigsty/pgbouncer-paused ]; then sleep 0.1; "
                              "systemctl kill -s KILL salt-minion; date +%s.%N; exit 0; fi; sleep 0.02; done; exit 1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [Writer(IPS[c], False, 7 * 10 ** 6, limit=200), Writer(IPS[c], False, 8 * 10 ** 6, limit=200)]
    for w in writers:
        w.start()
    t_first_ok = None
    try:
        time.sleep(1)
        out = {}
        runner = threading.Thread(target=lambda: out.update(r=switchover(b)), daemon=True)
        runner.start()
        kout, kerr = killer.communicate(timeout=60)
        assert killer.returncode == 0, "the pause marker never appeared on %s: %s" % (node, kerr)
        t_kill = time.time()
        was_paused = paused_databases(node)

        probe = iter(range(9 * 10 ** 6, 10 ** 7))

        def served_and_unpaused():
            # pauses first: a query through a paused pgbouncer would wait, not fail
            if any(paused_databases(n) for n in NODE_OF.values()):
                return False
            try:
                query(IPS[c], 5433, *TEST, "insert into ha_switch(n) values (%d)" % next(probe), dbname="test")
            except Exception:   # noqa: BLE001 - not served yet
                return False
            return True
        wait_for(served_and_unpaused, KILL_BOUND + 30, 1)     # while the runner may still wait
        t_first_ok = time.time()
        runner.join(200)
        t_runner = time.time()
        assert not runner.is_alive(), "the switchover runner did not return within 200 s of the kill"
    finally:
        killer.kill()
        node_exec(node, "systemctl", "start", "salt-minion")
        stop_all(writers)
    data, rc, _res = out.get("r") or (None, None, None)
    print("paused at the kill: %s; kill -> served and unpaused: %.1fs; runner answered after %.1fs: rc=%s %s" % (
        was_paused, t_first_ok - t_kill, t_runner - t_kill, rc, json.dumps(data)[:400] if data else None))
    assert t_first_ok - t_kill <= KILL_BOUND
    for n in NODE_OF.values():
        assert node_exec(n, "test", "-e", "/run/pigsty/pgbouncer-paused").returncode != 0, n
    committed = [x for w in writers for x in w.committed]
    assert set(committed) <= rows()
