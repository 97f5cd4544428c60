"""A delayed standby cluster in the real sandbox, as Pigsty's ``pg-delay``: node-4 (an extra
machine, sandbox.py add) hosts pg-delay, a standby cluster of pg-test (``pg_upstream`` its
VIP, ``pg_delay`` 20 s). It is built by orch.pgsql, replays pg-test's WAL 20 s late, refuses
what a standby cluster cannot do (backup, switchover) without changing anything, is promoted
by the runner (writable, its first backup taken, pg-test untouched), and a state afterwards
refuses to make it a standby again. Then it is removed, the inventory restored byte for byte
and node-4 removed, whatever happened."""
import json
import subprocess
import time

import pytest

import patroni_rest
import pigsty_defaults as D
from pg_test_cluster import DBA, orchestrate
from sandbox_cli import node_exec, salt_json, salt_run, SANDBOX, wait_for
from extra_cluster import extra_cluster, repo_pillar_is_clean
from pg import cluster_secrets, query

pytestmark = pytest.mark.disruptive

NODE, IP = "node-4", "10.10.10.14"
DELAY_S = 20
PROBE = "standby_probe"


def private_vars():
    """pg-delay's private file: the system users of its upstream (a physical copy has
    pg-test's roles), its own Patroni, HAProxy and etcd passwords, no users or databases."""
    test = cluster_secrets("pg-test")
    own = {k: test[k] for k in ("pg_admin_password", "pg_replication_password", "pg_monitor_password")}
    own.update(patroni_password="Sandbox.Patroni.delay", haproxy_admin_password="Sandbox.HAProxy.delay",
               pg_etcd_password="Sandbox.Etcd.delay", pg_users=[], pg_databases=[])
    return own


def on_delay(sql, port=5432):
    return query(IP, port, *DBA, sql)


def on_test(sql):
    return query("10.10.10.3", 5436, *DBA, sql)          # pg-test's VIP, its primary


def role(ip=IP):
    return patroni_rest.get(ip, "/patroni", timeout=3).get("role")


def sandbox_cmd(*args, timeout=900):
    return subprocess.run(SANDBOX + list(args), capture_output=True, text=True, timeout=timeout)


def meta_cleanup():
    """What pg-delay left on meta once it is out of the inventory: its stanza in the
    repository, its live record; the infra states drop its targets and repository settings."""
    repo = D.DEFAULTS["pgbackrest_repo"]["meta"]["path"]
    node_exec("meta", "rm", "-rf", "%s/archive/pg-delay" % repo, "%s/backup/pg-delay" % repo,
              "/var/lib/pigsty/live/pg-delay.json")
    salt_json("meta", "state.apply", "infra.prometheus,infra.backup_repo", timeout=900)


@pytest.fixture(scope="module")
def delay(sandbox):
    on_test("CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, note text)" % PROBE)
    on_test("TRUNCATE %s" % PROBE)
    added = sandbox_cmd("add", NODE)
    assert added.returncode == 0, added.stdout[-3000:] + added.stderr[-2000:]
    try:
        with extra_cluster("pg-delay", nodes={NODE: IP},
                           hosts={IP: {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.3",
                                       "pg_delay": "%ds" % DELAY_S}},
                           vars={}, private_vars=private_vars()):
            data, code, res = salt_run("pigsty.validate", timeout=600)
            assert code == 0, res.stdout[-3000:]
            ok, _changed, failures, res = orchestrate("orch.pgsql", {"pg_cluster": "pg-delay"}, timeout=2400)
            assert ok, failures
            try:
                yield
            finally:
                orchestrate("orch.pgsql_remove", {"pg_cluster": "pg-delay", "pg_rm_force": True}, timeout=900)
    finally:
        removed = sandbox_cmd("remove", NODE)
        meta_cleanup()
        on_test("DROP TABLE IF EXISTS %s" % PROBE)
    assert removed.returncode == 0, removed.stdout[-2000:] + removed.stderr[-2000:]
    assert repo_pillar_is_clean()


def test_the_standby_leader_replays_its_upstream_late_by_pg_delay(delay):
    assert role() == "standby_leader"
    assert on_delay("SHOW recovery_min_apply_delay") == [("%ds" % DELAY_S,)]
    assert on_delay("SELECT pg_is_in_recovery()") == [(True,)]
    # HAProxy on node-4 sends the leader services to the standby leader (read-only)
    assert query(IP, 5436, *DBA, "SELECT pg_is_in_recovery()") == [(True,)]
    lsn = on_test("INSERT INTO %s VALUES (1, 'before the delay') RETURNING pg_current_wal_insert_lsn()::text"
                  % PROBE)[0][0]
    committed = time.monotonic()
    # received at once, applied only after the delay
    wait_for(lambda: on_delay("SELECT pg_last_wal_receive_lsn() >= '%s'::pg_lsn" % lsn)[0][0], 15, 0.5)
    if time.monotonic() - committed < DELAY_S - 3:
        assert on_delay("SELECT count(*) FROM %s" % PROBE) == [(0,)]
    wait_for(lambda: on_delay("SELECT count(*) FROM %s" % PROBE) == [(1,)], DELAY_S + 60, 0.5)
    applied = time.monotonic() - committed
    assert applied >= DELAY_S - 1, "applied after %.1f s, pg_delay is %d s" % (applied, DELAY_S)


def test_what_a_standby_cluster_cannot_do_is_refused_and_changes_nothing(delay):
    data, code, res = salt_run("pigsty_backup.backup", "cluster=pg-delay", "type=full")
    assert code != 0 and "pg-delay-1 is a standby leader" in res.stdout, res.stdout
    data, code, res = salt_run("pigsty_ha.switchover", "pg-delay")
    assert code != 0 and "pg-delay is a standby cluster" in res.stdout, res.stdout
    data, code, res = salt_run("pigsty_ha.promote", "pg-test")
    assert code != 0 and "pg-test is not a standby cluster" in res.stdout, res.stdout
    data, code, res = salt_run("pigsty_ha.promote", "pg-delay", "test=True")
    assert code == 0 and data["result"] is None and data["steps"][0].startswith("stop following 10.10.10.3"), res.stdout
    assert role() == "standby_leader"
    assert patroni_rest.get(IP, "/config", timeout=3).get("standby_cluster", {}).get("host") == "10.10.10.3"


def test_promotion_makes_it_a_cluster_of_its_own_with_a_first_backup(delay):
    data, code, res = salt_run("pigsty_ha.promote", "pg-delay", timeout=1800)
    assert code == 0 and data["result"] is True, res.stdout[-3000:]
    assert data["first_backup"]["result"] is True and "remove pg_upstream" in data["next"]
    assert role() in ("primary", "master")
    assert "standby_cluster" not in patroni_rest.get(IP, "/config", timeout=3)
    # writable through its own HAProxy; pg-test does not get what pg-delay writes
    query(IP, 5436, *DBA, "INSERT INTO %s VALUES (2, 'pg-delay on its own')" % PROBE)
    assert on_delay("SELECT count(*) FROM %s" % PROBE) == [(2,)]
    assert on_test("SELECT count(*) FROM %s" % PROBE) == [(1,)]
    table, code, res = salt_run("pigsty_backup.list", "cluster=pg-delay")
    assert code == 0 and data["first_backup"]["label"] in json.dumps(table), res.stdout[-2000:]


def test_a_state_never_makes_the_promoted_cluster_a_standby_again(delay):
    ret, code = salt_json(NODE, "state.sls_id", "patroni-dcs-config", "pgsql.patroni", timeout=600)
    states = ret[NODE]
    (step,) = [v for k, v in states.items() if "patroni-dcs-config" in k]
    assert code != 0 and step["result"] is False and step["changes"] == {}
    assert "never makes it a standby again" in step["comment"]
    assert "standby_cluster" not in patroni_rest.get(IP, "/config", timeout=3)
    assert role() in ("primary", "master")
