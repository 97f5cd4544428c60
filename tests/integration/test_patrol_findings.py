"""The meta node's timed tasks in the real sandbox: the patrol report taken by Salt's
scheduler (its interval shortened by a drop-in master.d file and a master restart) and on
demand, kept on meta and shown by `salt-run pigsty.patrol`, naming what the test broke
(archive_command set to /bin/false on pg-test's primary with ALTER SYSTEM, reset in a
finally block); the scheduled cleanup's retention. Leaves the cluster and the master's
schedule as they were."""
import datetime
import json
import time

import pytest

from pg_test_cluster import live_leader, streaming_replicas
from sandbox_cli import node_exec, salt_json, salt_run, wait_for

pytestmark = pytest.mark.disruptive

PATROL_DIR = "/var/lib/pigsty/patrol"
DROP_IN = "/etc/salt/master.d/zz-patrol-test.conf"
# a schedule entry beside the daily one: a report whenever the newest is 20 s old
FAST_SCHEDULE = """schedule:
  pigsty-patrol-test:
    function: pigsty.patrol_due
    kwargs: {max_age: 20}
    seconds: 15
    maxrunning: 1
    return_job: False
"""
NODE_OF = {"pg-test-1": "node-1", "pg-test-2": "node-2", "pg-test-3": "node-3"}


def psql(node, *statements):
    """Statements as the dbsu over the local socket, each in its own transaction."""
    argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-tAq", "-v", "ON_ERROR_STOP=1"]
    for s in statements:
        argv += ["-c", s]
    return node_exec(node, *argv, timeout=120, check=True).stdout.strip()


def archiver(node):
    """(last archived, last failed) epochs of the node's pg_stat_archiver (0: never)."""
    out = psql(node, "SELECT coalesce(extract(epoch FROM last_archived_time), 0) || ' ' || "
                     "coalesce(extract(epoch FROM last_failed_time), 0) FROM pg_stat_archiver")
    ok, bad = out.split()
    return float(ok), float(bad)


def latest(cluster="pg-test"):
    res = node_exec("meta", "cat", "%s/%s/latest.json" % (PATROL_DIR, cluster))
    return json.loads(res.stdout) if res.returncode == 0 and res.stdout.strip() else None


def check_of(report, name):
    return next(c for c in report["checks"] if c["check"] == name)


def restart_master():
    node_exec("meta", "systemctl", "restart", "salt-master", check=True)
    wait_for(lambda: salt_run("pigsty.patrol", timeout=120)[1] == 0, 180, interval=3)
    wait_for(lambda: len(salt_json("-t", "10", "*", "test.ping", timeout=120)[0]) == 4, 120,
             interval=3)


def write_wal(node):
    psql(node, "CREATE TABLE IF NOT EXISTS patrol_probe (id int)",
         "INSERT INTO patrol_probe VALUES (1)", "SELECT pg_switch_wal()")


@pytest.fixture(scope="module")
def broken(sandbox):
    """pg-test's primary archives nothing (archive_command /bin/false) and the scheduler
    patrols every 15 s; both undone at the end."""
    wait_for(lambda: len(streaming_replicas()) == 2, 300)
    data, code = salt_json("*", "saltutil.sync_all", timeout=300)     # the new modules
    assert code == 0 and len(data) == 4, data
    primary = live_leader()
    node = NODE_OF[primary]
    broke_at = time.time()
    try:
        psql(node, "ALTER SYSTEM SET archive_command = '/bin/false'", "SELECT pg_reload_conf()")
        write_wal(node)
        wait_for(lambda: (lambda ok, bad: bad > ok and bad >= broke_at - 5)(*archiver(node)), 120)
        node_exec("meta", "sh", "-c", 'printf "%s" "$1" > "$2"', "sh", FAST_SCHEDULE, DROP_IN,
                  check=True)
        restart_master()
        yield {"primary": primary, "node": node, "broke_at": broke_at}
    finally:
        psql(node, "ALTER SYSTEM RESET archive_command", "SELECT pg_reload_conf()")
        node_exec("meta", "rm", "-f", DROP_IN)
        node_exec("meta", "rm", "-f", "%s/pg-test/2000-01-01.json" % PATROL_DIR)
        restart_master()
        write_wal(node)
        wait_for(lambda: (lambda ok, bad: ok > bad)(*archiver(node)), 240, interval=3)
        psql(node, "DROP TABLE IF EXISTS patrol_probe")


def test_the_scheduler_takes_a_report_that_names_the_broken_archive(broken):
    report = wait_for(lambda: (lambda r: r if r and r["time"] > broken["broke_at"]
                               and check_of(r, "archive")["status"] == "fail" else None)(latest()),
                      180, interval=5)
    archive = check_of(report, "archive")
    assert archive["value"].startswith("failing since") and broken["primary"] in archive["detail"]
    assert report["status"] == "fail" and report["primary"] == broken["primary"]
    assert check_of(report, "members")["status"] == "ok", report["checks"]
    assert check_of(report, "nodes")["status"] == "ok", report["checks"]
    day = node_exec("meta", "test", "-f", "%s/pg-test/%s.json" % (PATROL_DIR, report["date"]))
    assert day.returncode == 0
    # the schedule keeps taking them (every 15 s when the newest is 20 s old)
    first = report["time"]
    wait_for(lambda: (latest() or {}).get("time", 0) > first, 120, interval=5)


def test_salt_run_patrol_shows_the_report_and_the_summary(broken):
    text, code, res = salt_run("pigsty.patrol", "cluster=pg-test")
    assert code == 0 and isinstance(text, str), res.stdout + res.stderr
    lines = text.splitlines()
    assert lines[0].startswith("patrol of pg-test at ") and "FAIL" in lines[0]
    row = next(line for line in lines if line.startswith("archive "))
    assert "FAIL" in row and "failing since" in row, text
    assert any(line.startswith("archive: %s:" % broken["primary"]) for line in lines), text
    assert any(line.split()[:3] == [broken["primary"], broken["node"], "primary"] for line in lines), text
    summary, code, res = salt_run("pigsty.patrol")
    assert code == 0 and "pg-test: FAIL at " in summary and "archive fail" in summary, summary
    assert "pg-meta: " in summary


def test_a_forced_run_takes_a_fresh_report(broken):
    before = latest()["time"]
    text, code, res = salt_run("pigsty.patrol", "cluster=pg-test", "run=True", timeout=300)
    assert code == 0 and "failing since" in text, res.stdout + res.stderr
    assert latest()["time"] > before


def test_an_unknown_cluster_is_refused_naming_the_field(broken):
    _data, code, res = salt_run("pigsty.patrol", "cluster=pg-nope")
    out = res.stdout + res.stderr
    assert code != 0 and "cluster: 'pg-nope' is not a cluster of the inventory" in out, out


def test_cleanup_removes_expired_reports_and_reaches_every_node(broken):
    old = "%s/pg-test/2000-01-01.json" % PATROL_DIR
    node_exec("meta", "cp", "%s/pg-test/latest.json" % PATROL_DIR, old, check=True)
    data, code, res = salt_run("pigsty.cleanup", "test=True")
    assert code == 0 and data["result"] is None and old in data["reports_removed"], res.stdout
    assert node_exec("meta", "test", "-f", old).returncode == 0                # test: kept
    data, code, res = salt_run("pigsty.cleanup")
    assert code == 0 and data["result"] is True, res.stdout + res.stderr
    assert data["reports_removed"] == [old] and node_exec("meta", "test", "-f", old).returncode == 1
    assert sorted(data["nodes"]) == ["meta", "node-1", "node-2", "node-3"]
    assert all(isinstance(a, dict) and a["result"] is True for a in data["nodes"].values()), data
    assert data["nodes"]["node-1"]["log_dir"] == "/pg/log/pgbackrest"


def test_archiving_back_shows_in_the_next_report(broken):
    node = broken["node"]
    psql(node, "ALTER SYSTEM RESET archive_command", "SELECT pg_reload_conf()")
    write_wal(node)
    wait_for(lambda: (lambda ok, bad: ok > bad)(*archiver(node)), 240, interval=3)
    now = time.time()
    report = wait_for(lambda: (lambda r: r if r and r["time"] > now else None)(latest()), 120,
                      interval=5)
    archive = check_of(report, "archive")
    assert archive["status"] == "warn" and "works again" in archive["value"], archive
    assert report["date"] == datetime.datetime.fromtimestamp(
        report["time"], datetime.timezone.utc).strftime("%Y-%m-%d")
