"""pgsql role against the real sandbox: the HA cluster pg-test built by the orchestration,
its services, VIP, exporters, idempotency, test mode, scale in/out and refusals."""
import json
import urllib.request

import psycopg2
import pytest

import patroni_rest
from pg import connect, query
from pg_test_cluster import DBA, IPS, live_leader, orchestrate, patroni_cluster, streaming_replicas, TEST
from salt_tree import services_stopped_by_pgsql_remove
from sandbox_cli import node_exec, salt_json, wait_for


@pytest.fixture(scope="module")
def pg_test(pg_test_as_built):
    """pg-test as the orchestration leaves it (the sandbox's main job ran orch.site): pg-test-1
    leading (moved back if something moved it), two streaming replicas."""
    wait_for(lambda: len(streaming_replicas()) == 2, 120)
    return IPS


def test_one_leader_two_streaming_replicas(pg_test):
    members = {m["name"]: m for m in patroni_cluster()["members"]}
    assert set(members) == set(IPS)
    assert [n for n, m in members.items() if m["role"] in ("leader", "master", "primary")] == ["pg-test-1"]
    assert streaming_replicas() == ["10.10.10.12", "10.10.10.13"]


@pytest.mark.parametrize("via", ["10.10.10.11", "10.10.10.12", "10.10.10.13"])
def test_write_through_any_member_5433_lands_on_primary(pg_test, via):
    with connect(via, 5433, *TEST, dbname="test") as conn, conn.cursor() as cur:
        cur.execute("select pg_is_in_recovery()")
        assert cur.fetchone()[0] is False
        cur.execute("create table if not exists t_write (via text, at timestamptz default now())")
        cur.execute("insert into t_write(via) values (%s)", (via,))
    rows = query("10.10.10.11", 5436, *DBA, "select count(*) from t_write where via = %s",
                 dbname="test", args=(via,))
    assert rows[0][0] >= 1


def test_reads_through_5434_are_served_by_replicas(pg_test):
    for _ in range(6):
        with connect("10.10.10.12", 5434, *TEST, dbname="test") as conn, conn.cursor() as cur:
            cur.execute("select pg_is_in_recovery()")
            assert cur.fetchone()[0] is True


def test_5436_reaches_the_primary_directly(pg_test):
    rows = query("10.10.10.13", 5436, *DBA, "select pg_is_in_recovery(), host(inet_server_addr())")
    assert rows == [(False, "10.10.10.11")]


def test_5438_reaches_the_offline_instance(pg_test):
    rows = query("10.10.10.11", 5438, *DBA, "select pg_is_in_recovery(), host(inet_server_addr())")
    assert rows == [(True, "10.10.10.13")]


def test_vip_is_on_the_primary_only_and_answers(pg_test):
    rows = query("10.10.10.3", 5432, *DBA, "select pg_is_in_recovery(), host(inet_server_addr())")
    assert rows == [(False, "10.10.10.3")]
    for node, holds in (("node-1", True), ("node-2", False), ("node-3", False)):
        out = node_exec(node, "ip", "-4", "-o", "addr", "show", "dev", "eth1").stdout
        assert ("10.10.10.3/24" in out) is holds, (node, out)


def test_pillar_user_logs_in_through_pgbouncer_and_a_wrong_password_is_refused(pg_test):
    rows = query("10.10.10.11", 5433, *TEST, "select current_user", dbname="test")
    assert rows == [("test",)]
    with pytest.raises(psycopg2.OperationalError) as err:
        query("10.10.10.11", 5433, "test", "wrong-password", "select 1", dbname="test")
    assert "password authentication failed" in str(err.value) or "SASL" in str(err.value)


def test_exporters_answer_on_the_node_address(pg_test):
    import ssl   # pylint: disable=import-outside-toplevel
    ctx = ssl.create_default_context(cafile=patroni_rest.ca_file())
    for ip in IPS.values():
        # HAProxy's /metrics is HTTPS (the node certificate, verified for the address)
        with urllib.request.urlopen("https://%s:9101/metrics" % ip, timeout=5, context=ctx) as resp:
            assert "haproxy_process_" in resp.read().decode(), ip
        # the exporters are HTTPS too and ask for a client certificate of the CA: from meta,
        # with its node certificate (as its Prometheus scrapes them)
        for port, metric in ((9100, "node_cpu_seconds_total"), (9630, "pg_up 1"), (9631, "pgbouncer_up 1")):
            out = node_exec("meta", "curl", "-sS", "-m", "10", "--cacert", "/etc/pki/pigsty/ca.crt",
                            "--cert", "/etc/pki/pigsty/node.crt", "--key", "/etc/pki/pigsty/node.key",
                            "https://%s:%d/metrics" % (ip, port), timeout=60)
            assert out.returncode == 0 and metric in out.stdout, (ip, port, out.stderr[-500:])


def test_second_full_apply_reports_zero_changes(pg_test):
    ok, changed, failures, _res = orchestrate("orch.pgsql", {"pg_cluster": "pg-test"})
    assert ok, failures
    assert changed == []


def test_test_mode_reports_would_be_changes_and_changes_nothing(pg_test):
    before = patroni_rest.get("10.10.10.11", "/config")
    # a different timing plan would patch Patroni's dynamic config: test mode only says so
    ret, rc = salt_json("node-1", "state.apply", "pgsql", "test=True",
                        'pillar={"pigsty": {"clusters": {"pg-test": {"vars": {"pg_rto_plan": "fast"}}}}}')
    states = ret["node-1"]
    dcs = [v for k, v in states.items() if k.startswith("patroni_|-patroni-dcs-config")][0]
    assert dcs["result"] is None and dcs["changes"]["patch"]["ttl"] == 20
    assert all(v["result"] in (True, None) for v in states.values())
    after = patroni_rest.get("10.10.10.11", "/config")
    assert after == before and after["ttl"] == 30


def test_invalid_timing_plan_is_refused_before_any_change(pg_test):
    ret, rc = salt_json("node-1", "state.apply", "pgsql",
                        'pillar={"pigsty": {"clusters": {"pg-test": {"vars": {"pg_rto_plan": "turbo", "pg_conf": "web"}}}}}')
    assert rc != 0
    text = json.dumps(ret)
    assert "pigsty:clusters:pg-test:vars:pg_rto_plan: unknown HA timing plan 'turbo'" in text
    assert "unknown tuning profile 'web'" in text
    assert patroni_rest.get("10.10.10.11", "/config")["ttl"] == 30


def test_orchestration_refuses_unknown_cluster(sandbox):
    ok, _changed, failures, res = orchestrate("orch.pgsql", {"pg_cluster": "pg-nope"})
    assert not ok
    assert "pg_cluster" in res.stdout + res.stderr and "pg-nope" in res.stdout + res.stderr


def test_removing_the_running_primary_is_refused(pg_test):
    # the live leader, whichever it is (were it not pg-test-1, removing pg-test-1 would succeed)
    leader = live_leader()
    assert leader, "pg-test has no leader"
    ok, _changed, _failures, res = orchestrate("orch.pgsql_remove",
                                               {"pg_cluster": "pg-test", "pg_instances": [leader]})
    assert not ok
    assert "refusing to remove instance %s" % leader in res.stdout + res.stderr
    members = {m["name"]: m for m in patroni_cluster(IPS[leader])["members"]}
    assert members[leader]["state"] == "running" and live_leader() == leader


def test_scale_in_and_out_keeps_every_committed_row(pg_test):
    query("10.10.10.11", 5436, *DBA, "create table if not exists t_scale (id int primary key)", dbname="test")
    query("10.10.10.11", 5436, *DBA, "insert into t_scale select generate_series(1, 1000) "
          "on conflict do nothing", dbname="test")
    try:
        ok, _changed, failures, _res = orchestrate("orch.pgsql_remove",
                                                   {"pg_cluster": "pg-test", "pg_instances": ["pg-test-3"]})
        assert ok, failures
        wait_for(lambda: "pg-test-3" not in {m["name"] for m in patroni_cluster()["members"]}, 60)
        assert streaming_replicas() == ["10.10.10.12"]
        for unit in services_stopped_by_pgsql_remove():
            state = node_exec("node-3", "systemctl", "is-active", unit).stdout.strip()
            assert state != "active", "%s still %s on node-3 after removal" % (unit, state)
        query("10.10.10.11", 5436, *DBA, "insert into t_scale select generate_series(1001, 2000) "
              "on conflict do nothing", dbname="test")
    finally:
        # scale out again (also the clean-up when the scale-in part failed)
        ok, _changed, failures, _res = orchestrate("orch.pgsql", {"pg_cluster": "pg-test"})
    assert ok, failures
    wait_for(lambda: streaming_replicas() == ["10.10.10.12", "10.10.10.13"], 120)
    wait_for(lambda: query("10.10.10.13", 5432, *DBA, "select count(*), pg_is_in_recovery() "
                           "from t_scale", dbname="test") == [(2000, True)], 60)
