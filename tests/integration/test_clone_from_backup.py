"""Restore into a new cluster in the real sandbox: pg-clone on node-4 (an extra machine,
sandbox.py add), declared with ``pg_pitr: {cluster: pg-test, time: T}``, is created by
orch.pgsql from pg-test's backups as of T: the rows written before T are there, those after
are not; it is a writable cluster of its own that archives into its own stanza; pg-test is
untouched. A target before pg-test's first backup is refused before anything is created.
Everything is removed afterwards, the inventory restored byte for byte, whatever happened."""
import datetime
import subprocess
import time

import pytest

import pigsty_defaults as D
from pg_test_cluster import DBA, orchestrate
from sandbox_cli import node_exec, salt_json, salt_run, SANDBOX, wait_for
from extra_cluster import extra_cluster, repo_pillar_is_clean
from pg import cluster_secrets, query

pytestmark = pytest.mark.disruptive

NODE, IP = "node-4", "10.10.10.14"
PROBE = "clone_probe"


def private_vars():
    """pg-clone's private file: pg-test's system users (the copy has its roles), its own
    Patroni, HAProxy and etcd passwords, no users or databases of its own."""
    test = cluster_secrets("pg-test")
    own = {k: test[k] for k in ("pg_admin_password", "pg_replication_password", "pg_monitor_password")}
    own.update(patroni_password="Sandbox.Patroni.clone", haproxy_admin_password="Sandbox.HAProxy.clone",
               pg_etcd_password="Sandbox.Etcd.clone", pg_users=[], pg_databases=[])
    return own


def on_test(sql):
    return query("10.10.10.3", 5436, *DBA, sql)


def on_clone(sql, port=5432):
    return query(IP, port, *DBA, sql)


def archived_now():
    """Close pg-test's current WAL segment and wait until its archiver pushed it."""
    seg = on_test("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    wait_for(lambda: (on_test("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") >= seg, 120)


def noted_time():
    time.sleep(2)
    when = on_test("SELECT clock_timestamp()")[0][0]
    time.sleep(2)
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def sandbox_cmd(*args, timeout=900):
    return subprocess.run(SANDBOX + list(args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def written(sandbox):
    """pg-test with a backup, one row before the noted time and one after, both archived."""
    on_test("CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, note text)" % PROBE)
    on_test("TRUNCATE %s" % PROBE)
    data, code, res = salt_run("pigsty_backup.backup", "cluster=pg-test", "type=incr", timeout=1800)
    assert code == 0 and data["result"] is True, res.stdout[-3000:]
    on_test("INSERT INTO %s VALUES (1, 'before the target')" % PROBE)
    target = noted_time()
    on_test("INSERT INTO %s VALUES (2, 'after the target')" % PROBE)
    archived_now()
    yield target
    on_test("DROP TABLE IF EXISTS %s" % PROBE)


@pytest.fixture(scope="module")
def machine(written):
    added = sandbox_cmd("add", NODE)
    assert added.returncode == 0, added.stdout[-3000:] + added.stderr[-2000:]
    try:
        yield
    finally:
        removed = sandbox_cmd("remove", NODE)
        repo = D.DEFAULTS["pgbackrest_repo"]["meta"]["path"]
        node_exec("meta", "rm", "-rf", "%s/archive/pg-clone" % repo, "%s/backup/pg-clone" % repo,
                  "/var/lib/pigsty/live/pg-clone.json")
        salt_json("meta", "state.apply", "infra.prometheus,infra.backup_repo", timeout=900)
        assert removed.returncode == 0, removed.stdout[-2000:] + removed.stderr[-2000:]
        assert repo_pillar_is_clean()


def clone_cluster(target):
    return extra_cluster("pg-clone", nodes={NODE: IP}, hosts={IP: {"pg_seq": 1, "pg_role": "primary"}},
                         vars={"pg_pitr": {"cluster": "pg-test", "time": target}}, private_vars=private_vars())


def test_a_target_before_the_first_backup_is_refused_before_anything_is_created(machine):
    with clone_cluster("2020-01-01 00:00:00+00"):
        ok, _changed, failures, res = orchestrate("orch.pgsql", {"pg_cluster": "pg-clone"}, timeout=1200)
        assert not ok
        assert any("clone-check" in f for f in failures), failures
        assert "before the earliest recoverable time" in res.stdout, res.stdout[-3000:]
        assert any("pg-clone-primary" in f and "requisite failed" in f.lower() for f in failures), failures
        # nothing was configured, restored or started on node-4
        assert node_exec(NODE, "test", "-e", "/etc/patroni/config.yml").returncode != 0


def test_the_clone_has_what_was_committed_before_the_target_and_is_its_own_cluster(machine, written):
    with clone_cluster(written):
        ok, _changed, failures, res = orchestrate("orch.pgsql", {"pg_cluster": "pg-clone"}, timeout=2400)
        try:
            assert ok, failures
            assert on_clone("SELECT id, note FROM %s ORDER BY id" % PROBE) == [(1, "before the target")]
            assert on_clone("SELECT pg_is_in_recovery()") == [(False,)]
            # writable through its own HAProxy; pg-test keeps both rows and gets nothing of the clone's
            query(IP, 5436, *DBA, "INSERT INTO %s VALUES (3, 'the clone on its own')" % PROBE)
            assert on_test("SELECT id FROM %s ORDER BY id" % PROBE) == [(1,), (2,)]
            # it archives into its own stanza (created by orch.pgsql once it led)
            seg = on_clone("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
            wait_for(lambda: (on_clone("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") >= seg, 120)
            # (its first segments fail until orch.pgsql has created the stanza, once it leads:
            # they wait in pg_wal and go then, as for any new cluster; none fails after that)
            assert on_clone("SELECT last_failed_time IS NULL OR last_failed_time < last_archived_time "
                            "FROM pg_stat_archiver") == [(True,)]
            data, code, res = salt_run("pigsty_backup.clone_check", "pg-clone")
            assert code == 0 and "acts only when it is created" in data["comment"], res.stdout
        finally:
            orchestrate("orch.pgsql_remove", {"pg_cluster": "pg-clone", "pg_rm_force": True}, timeout=900)
