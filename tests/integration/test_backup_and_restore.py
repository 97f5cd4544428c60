"""Backups and point-in-time recovery of pg-test in the real sandbox (pgBackRest, the
repository on meta over TLS): a full backup from a streaming replica, the list and the
check; refusals that stop nothing; rows written, the time noted, the table dropped, pg-test
restored in place to the noted time: every row back, three members streaming, 5433 and
5434 serving. Archive continuity across a switchover, and across a hard kill of the live
primary (whichever member leads then): rows written on the new primary after it are in a
restore to a later time. Leaves the primary on pg-test-1."""
import datetime
import json
import subprocess
import threading
import time

import pytest

from pg_test_cluster import DBA, IPS, live_leader, put_back, streaming_replicas
from sandbox_cli import node_exec, salt_run, SANDBOX, wait_for
from pg import query

pytestmark = pytest.mark.disruptive


def sql(statement, port=5433, host="10.10.10.3"):
    return query(host, port, *DBA, statement)


def run(*args, timeout=3600):
    data, code, res = salt_run(*args, timeout=timeout)
    return data, code, res.stdout + res.stderr


def noted_time():
    """The database's clock (the restore target is in its terms), then 2 s of margin."""
    time.sleep(2)
    when = sql("SELECT clock_timestamp()")[0][0]
    time.sleep(2)
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def archived_now():
    """Close the current WAL segment and wait until the archiver has pushed it."""
    seg = sql("SELECT pg_walfile_name(pg_switch_wal())", port=5436)[0][0]
    wait_for(lambda: (sql("SELECT last_archived_wal FROM pg_stat_archiver", port=5436)[0][0]
                      or "") >= seg, 120)


@pytest.fixture(scope="module")
def cluster(sandbox):
    put_back()
    # archive_mode needs a restart of an instance that ran before the backup states
    if sql("SHOW archive_mode", port=5436)[0][0] != "on":
        node_exec("node-1", "patronictl", "-c", "/etc/patroni/config.yml", "restart", "pg-test",
                  "--force", check=True)
        wait_for(lambda: sql("SHOW archive_mode", port=5436)[0][0] == "on", 180)
        wait_for(lambda: len(streaming_replicas()) == 2, 180)
    yield IPS
    # back to pg-test-1 for the later modules; right after a restore the replicas may take a
    # while to catch up (a switchover is refused until then): a longer bound than others'
    put_back(within=600)


def test_full_backup_from_a_streaming_replica_is_listed_and_checked(cluster):
    data, code, out = run("pigsty_backup.backup", "cluster=pg-test", "type=full")
    assert code == 0 and data["result"] is True, out
    assert data["source"] in ("pg-test-2", "pg-test-3"), data          # a replica, not the primary
    table, code, out = run("pigsty_backup.list", "cluster=pg-test")
    assert code == 0 and data["label"] in table and "earliest recoverable time" in table, out
    data, code, out = run("pigsty_backup.check", "cluster=pg-test")
    assert code == 0 and data["archive_ok"] is True and data["repo_bytes"] > 0, out


def test_two_backups_at_once_one_is_refused(cluster):
    outs = []
    threads = [threading.Thread(target=lambda: outs.append(
        run("pigsty_backup.backup", "cluster=pg-test", "type=incr"))) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.5)
    for t in threads:
        t.join(1800)
    texts = [o[2] for o in outs]
    assert sum("in progress" in t for t in texts) == 1, texts
    assert sum(o[0] and isinstance(o[0], dict) and o[0].get("result") is True for o in outs) == 1


@pytest.mark.parametrize("target,confirm,fragment", [
    ("2000-01-01 00:00:00", "pg-test", "before the earliest recoverable time"),
    ("2099-01-01 00:00:00", "pg-test", "in the future"),
    ("latest", None, "DESTROYS"),
])
def test_refused_restores_stop_nothing(cluster, target, confirm, fragment):
    timeline = sql("SELECT timeline_id FROM pg_control_checkpoint()", port=5436)[0][0]
    leader = live_leader()
    args = ["pigsty_backup.restore", "cluster=pg-test", "target=%s" % target]
    if confirm:
        args.append("confirm=%s" % confirm)
    data, code, out = run(*args, timeout=300)
    assert code != 0 and fragment in out, out
    assert live_leader() == leader and len(streaming_replicas()) == 2
    assert sql("SELECT timeline_id FROM pg_control_checkpoint()", port=5436)[0][0] == timeline


def test_unknown_cluster_is_refused(cluster):
    _data, code, out = run("pigsty_backup.restore", "cluster=pg-nope", "target=latest",
                           "confirm=pg-nope", timeout=300)
    assert code != 0 and "pg-nope" in out and "not a cluster" in out, out
    # refused by the type check: salt-run alone would exit 0 on the raised SaltInvocationError
    _data, code, out = run("pigsty_backup.backup", "cluster=pg-test", "type=weekly", timeout=300)
    assert code == 1 and "type: expected one of full, diff, incr, got 'weekly'" in out, out


def test_restore_in_place_brings_dropped_rows_back(cluster):
    sql("DROP TABLE IF EXISTS backup_pitr")
    sql("CREATE TABLE backup_pitr (id int PRIMARY KEY, note text)")
    sql("INSERT INTO backup_pitr SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
    target = noted_time()
    sql("DROP TABLE backup_pitr")
    archived_now()
    started = time.monotonic()
    data, code, out = run("pigsty_backup.restore", "cluster=pg-test", "target=%s" % target,
                          "confirm=pg-test", timeout=3600)
    assert code == 0 and data["result"] is True, out
    print("in-place restore took %.0f s" % (time.monotonic() - started))
    wait_for(lambda: sql("SELECT count(*) FROM backup_pitr")[0][0] == 1000, 180)
    wait_for(lambda: len(streaming_replicas()) == 2, 600)
    assert sql("SELECT pg_is_in_recovery()", port=5434, host="10.10.10.11")[0][0] is True
    assert sql("SELECT count(*) FROM backup_pitr", port=5434, host="10.10.10.12")[0][0] == 1000
    sql("DROP TABLE backup_pitr")
    # a new full backup after the restore (new timeline)
    data, code, out = run("pigsty_backup.backup", "cluster=pg-test", "type=full")
    assert code == 0 and data["result"] is True, out


def test_archiving_continues_across_a_switchover(cluster):
    sql("DROP TABLE IF EXISTS backup_switch")          # a restore of an earlier run brought it back
    sql("CREATE TABLE backup_switch (id int PRIMARY KEY, phase text)")
    sql("INSERT INTO backup_switch SELECT g, 'before' FROM generate_series(1, 100) g")
    data, code, _res = salt_run("pigsty_ha.switchover", "pg-test", "candidate=pg-test-2")
    assert code == 0, data
    wait_for(lambda: live_leader() == "pg-test-2", 120)
    sql("INSERT INTO backup_switch SELECT g, 'after' FROM generate_series(101, 200) g")
    target = noted_time()
    sql("DROP TABLE backup_switch")
    archived_now()
    data, code, out = run("pigsty_backup.check", "cluster=pg-test")
    assert code == 0 and data["archive_ok"] is True, out
    data, code, out = run("pigsty_backup.restore", "cluster=pg-test", "target=%s" % target,
                          "confirm=pg-test", timeout=3600)
    assert code == 0 and data["result"] is True and data["leader"] == "pg-test-2", out
    wait_for(lambda: sql("SELECT count(*) FROM backup_switch WHERE phase = 'after'")[0][0] == 100,
             180)
    wait_for(lambda: len(streaming_replicas()) == 2, 600)      # 5436: the live primary
    sql("DROP TABLE backup_switch")


def streaming_now():
    """Members streaming from the live primary (through the VIP's HAProxy, 5436)."""
    return sorted(r[0] for r in sql("SELECT host(client_addr), state FROM pg_stat_replication",
                                    port=5436) if r[1] == "streaming")


def test_archiving_continues_after_a_hard_kill_of_the_live_primary(cluster):
    """Not the pillar primary: whichever member leads now (pg-test-2 after the switchover
    above) is killed with its machine; the rows written on the promoted member are archived
    from it and come back in a restore to a time after the failover."""
    old = wait_for(live_leader, 60)
    old_node = "node-%s" % old.rsplit("-", 1)[1]
    sql("DROP TABLE IF EXISTS backup_kill")
    sql("CREATE TABLE backup_kill (id int PRIMARY KEY, phase text)")
    sql("INSERT INTO backup_kill SELECT g, 'before' FROM generate_series(1, 100) g")
    lsn = sql("SELECT pg_current_wal_lsn()::text", port=5436)[0][0]
    wait_for(lambda: all(r[0] for r in sql(                      # replayed on both replicas
        "SELECT replay_lsn >= '%s'::pg_lsn FROM pg_stat_replication" % lsn, port=5436)) and
        len(streaming_now()) == 2, 60)
    subprocess.run(SANDBOX + ["kill", old_node], check=True, capture_output=True, timeout=60)
    try:
        new = wait_for(lambda: (live_leader() or old) != old and live_leader(), 120)

        def written_after():                        # through the VIP and 5433, once they moved
            sql("INSERT INTO backup_kill SELECT g, 'after' FROM generate_series(101, 200) g"
                " ON CONFLICT DO NOTHING")
            return sql("SELECT count(*) FROM backup_kill WHERE phase = 'after'")[0][0] == 100
        wait_for(written_after, 120)
        target = noted_time()
        sql("DROP TABLE backup_kill")
        archived_now()                                  # pushed by the new primary
    finally:
        subprocess.run(SANDBOX + ["start", old_node], check=True, capture_output=True, timeout=180)
    wait_for(lambda: IPS[old] in streaming_now() and len(streaming_now()) == 2, 600)
    wait_for(lambda: '"%s": true' % old_node in node_exec(      # its minion is back for the restore
        "meta", "salt", "-t", "5", "--out=json", "--static", old_node, "test.ping",
        check=False, timeout=60).stdout, 120)
    data, code, out = run("pigsty_backup.restore", "cluster=pg-test", "target=%s" % target,
                          "confirm=pg-test", timeout=3600)
    assert code == 0 and data["result"] is True and data["leader"] == new, out
    wait_for(lambda: sql("SELECT phase, count(*) FROM backup_kill GROUP BY phase ORDER BY phase")
             == [("after", 100), ("before", 100)], 180)
    wait_for(lambda: len(streaming_now()) == 2, 600)
    sql("DROP TABLE backup_kill")


SCHEDULE_STATE = "/var/cache/salt/master/pigsty/backup-schedule-pg-test.json"
SET_BACK = """import json, os, sys
path, when = sys.argv[1], float(sys.argv[2])
state = json.load(open(path))
state.update({k: when for k in state if k not in ("since", "last_result")})
json.dump(state, open(path + ".new", "w"))
os.replace(path + ".new", path)
"""


def test_salt_s_scheduler_catches_up_a_missed_scheduled_backup(cluster):
    """The master's scheduler runs pigsty_backup.run_due every minute. Its record of pg-test's
    firings is set back 8 days (as if the master had been down over Sunday's full): within
    the next minutes the scheduler takes one full backup, records it, and list shows it."""
    state = json.loads(node_exec("meta", "cat", SCHEDULE_STATE).stdout)   # run_due has seen pg-test
    crons = [k for k in state if k not in ("since", "last_result")]
    assert crons, state
    started = time.time()
    node_exec("meta", "python3", "-c", SET_BACK, SCHEDULE_STATE, str(started - 8 * 86400), check=True)

    def taken():
        now = json.loads(node_exec("meta", "cat", SCHEDULE_STATE).stdout)
        last = now.get("last_result") or {}
        return last if last.get("time", 0) > started else None
    last = wait_for(taken, 600, interval=5)
    assert last["type"] == "full" and last["result"] is True, last
    label = last["comment"].split()[2]                 # "full backup <label> of pg-test from ..."
    table, code, out = run("pigsty_backup.list", "cluster=pg-test")
    assert code == 0 and label in table, out
    time.sleep(70)                                     # caught up once: the next minutes take none
    assert json.loads(node_exec("meta", "cat", SCHEDULE_STATE).stdout)["last_result"] == last
