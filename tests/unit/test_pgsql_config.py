"""Configuration derived for a database node: Patroni config, timing plans, HBA, HAProxy
services, pgbouncer."""
import os

import pytest

import pigsty_hba as hba
import pigsty_inventory as inv
import pigsty_pgsql as pgsql
from pillar_fixture import default_pillar

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def conf_of(minion, **cluster_vars):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"].update(cluster_vars)
    return inv.instance_config(pillar, minion)


@pytest.mark.parametrize("plan,ttl,loop,retry", [("fast", 20, 5, 5), ("norm", 30, 5, 10), ("safe", 60, 10, 20)])
def test_timing_plans_follow_pigsty_and_patroni_rule(plan, ttl, loop, retry):
    dcs = pgsql.patroni_config(conf_of("node-1", pg_rto_plan=plan), 4096)["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (ttl, loop, retry)
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]


def test_patroni_identity_and_endpoints():
    cfg = pgsql.patroni_config(conf_of("node-2"), 4096)
    assert cfg["scope"] == "pg-test" and cfg["name"] == "pg-test-2"
    assert cfg["restapi"]["connect_address"] == "10.10.10.12:8008"
    assert cfg["postgresql"]["connect_address"] == "10.10.10.12:5432"
    assert cfg["etcd"]["hosts"] == ["10.10.10.10:2379", "10.10.10.11:2379", "10.10.10.12:2379"]  # dcs_servers
    assert cfg["postgresql"]["parameters"]["listen_addresses"] == "*"  # so the VIP is served


def test_sync_mode_from_rpo_zero_and_crit_profile():
    assert pgsql.patroni_config(conf_of("node-1", pg_rpo=0), 4096)["bootstrap"]["dcs"]["synchronous_mode"] is True
    assert pgsql.patroni_config(conf_of("node-1", pg_conf="crit"), 4096)["bootstrap"]["dcs"]["synchronous_mode"] is True
    assert pgsql.patroni_config(conf_of("node-1"), 4096)["bootstrap"]["dcs"]["synchronous_mode"] is False


@pytest.mark.parametrize("profile", ["oltp", "olap", "crit", "tiny"])
def test_no_profile_acknowledges_a_commit_before_it_is_flushed(profile):
    """A crash must not lose an acknowledged commit in any profile (issue 13)."""
    params = pgsql.tuning(conf_of("node-1", pg_conf=profile), 4096)
    assert params["synchronous_commit"] == "on"


def test_rpo_zero_waits_for_a_synchronous_standby_without_blocking_writes_when_none_is_left():
    dcs = pgsql.dcs_config(conf_of("node-1", pg_rpo=0))
    assert dcs["synchronous_mode"] is True and dcs["synchronous_mode_strict"] is False
    assert pgsql.dcs_config(conf_of("node-1"))["synchronous_mode"] is False


def test_cluster_wide_parameters_go_to_dcs_local_ones_to_the_file():
    cfg = pgsql.patroni_config(conf_of("node-1", pg_conf="tiny"), 4096)
    dcs_params = cfg["bootstrap"]["dcs"]["postgresql"]["parameters"]
    local = cfg["postgresql"]["parameters"]
    assert dcs_params["max_connections"] == 100 and "max_connections" not in local
    assert local["shared_buffers"] == "64MB" and "shared_buffers" not in dcs_params


def test_profiles_scale_with_memory():
    assert pgsql.tuning(conf_of("node-1", pg_conf="oltp"), 8192)["shared_buffers"] == "2048MB"
    assert pgsql.tuning(conf_of("node-1", pg_conf="olap"), 8192)["work_mem"] == "64MB"


def test_replicas_retry_wal_fast_so_a_promotion_is_not_held_5_s():
    for profile in ("oltp", "olap", "crit", "tiny"):
        cfg = pgsql.patroni_config(conf_of("node-1", pg_conf=profile), 4096)
        assert cfg["postgresql"]["parameters"]["wal_retrieve_retry_interval"] == "500ms"


def test_passwords_only_where_patroni_needs_them():
    cfg = pgsql.patroni_config(conf_of("node-1"), 4096)
    text = repr(cfg)
    assert "Sandbox.Repl.test" in text          # replication / rewind credentials
    assert "Sandbox.DBA.test" not in text and "Sandbox.Mon.test" not in text


def test_hba_keeps_admin_and_replication_paths_first():
    lines = hba.postgres_lines(conf_of("node-1"))
    rules = [l for l in lines if not l.startswith("#")]
    assert rules[0] == "local all postgres peer map=pigsty"   # root (Salt) and postgres
    assert "host replication replicator 127.0.0.1/32 scram-sha-256" in rules
    assert "host replication replicator ::1/128 scram-sha-256" in rules
    # infra = meta; the sandbox's pillar sets pg_ssl_required: remote rules are hostssl
    assert "hostssl all dbuser_monitor 10.10.10.10/32 scram-sha-256" in rules


def test_hba_role_filter_and_order():
    extra = [{"user": "etl", "db": "all", "addr": "10.20.0.0/16", "auth": "pwd", "title": "etl", "order": 10, "role": "offline"},
             {"user": "bad", "db": "all", "addr": "world", "auth": "deny", "title": "deny", "order": 5}]
    on_offline = hba.lines(extra, conf_of("node-3"))       # replica with offline query
    on_primary = hba.lines(extra, conf_of("node-1"))
    assert on_offline == ["# deny", "host all bad 0.0.0.0/0 reject", "host all bad ::/0 reject", "# etl",
                          "host all etl 10.20.0.0/16 scram-sha-256"]
    assert on_primary == ["# deny", "host all bad 0.0.0.0/0 reject", "host all bad ::/0 reject"]


def test_haproxy_services_membership():
    services = {s["name"]: s for s in pgsql.haproxy_services(conf_of("node-2"))}
    assert set(services) == {"pg-test-primary", "pg-test-replica", "pg-test-default", "pg-test-offline"}
    primary = services["pg-test-primary"]
    assert primary["port"] == 5433 and primary["check"] == "/primary"
    assert [(s["name"], s["port"], s["backup"]) for s in primary["servers"]] == [
        ("pg-test-1", 6432, False), ("pg-test-2", 6432, False), ("pg-test-3", 6432, False)]
    # the read services hold every member and follow the live roles through the checks
    replica = services["pg-test-replica"]
    assert replica["check"] == "/replica"
    assert {(s["name"], s["backup"], s.get("track")) for s in replica["servers"]} == {
        ("pg-test-1", False, None), ("pg-test-2", False, None), ("pg-test-3", False, None),
        ("pg-test-1-primary", True, "pg-test-primary/pg-test-1"),
        ("pg-test-2-primary", True, "pg-test-primary/pg-test-2"),
        ("pg-test-3-primary", True, "pg-test-primary/pg-test-3")}
    assert [s["port"] for s in services["pg-test-default"]["servers"]] == [5432] * 3
    offline = services["pg-test-offline"]
    assert {(s["name"], s["backup"]) for s in offline["servers"]} == {
        ("pg-test-1", True), ("pg-test-2", True), ("pg-test-3", False)}


def test_leader_checks_rise_fast_and_are_shared():
    services = {s["name"]: s for s in pgsql.haproxy_services(conf_of("node-2"))}
    primary, default = services["pg-test-primary"], services["pg-test-default"]
    assert primary["timing"]["downinter"] == "200ms" and primary["timing"]["rise"] == 1
    assert primary["timing"]["fall"] == 3 and primary["timing"]["inter"] == "3s"
    # the read services keep Pigsty's norm timing
    assert services["pg-test-replica"]["timing"] == {"inter": "3s", "fastinter": "1s", "downinter": "5s",
                                                     "rise": 3, "fall": 3, "slowstart": "30s"}
    assert primary["timing"]["slowstart"] is None      # one UP server: no warm-up at weight 0
    # 5436 checks /primary too: it tracks 5433's servers instead of checking them again
    assert primary["track"] is None and default["track"] == "pg-test-primary"
    # 5438 checks /replica like 5434's checked servers: it tracks them
    assert services["pg-test-replica"]["track"] is None and services["pg-test-offline"]["track"] == "pg-test-replica"
    fast = pgsql.haproxy_services(conf_of("node-2", pg_rto_plan="fast"))
    assert fast[1]["timing"]["downinter"] == "1s" and fast[0]["timing"]["downinter"] == "200ms"


def test_extra_service():
    conf = conf_of("node-1", pg_services=[{"name": "standby", "port": 5435, "dest": "postgres",
                                           "check": "/sync", "selector": "replica"}])
    svc = [s for s in pgsql.haproxy_services(conf) if s["name"] == "pg-test-standby"][0]
    assert svc["port"] == 5435 and svc["check"] == "/sync"
    assert [s["name"] for s in svc["servers"]] == ["pg-test-2", "pg-test-3"]


def test_pgbouncer_databases_and_users():
    conf = conf_of("node-1")
    assert [d["name"] for d in pgsql.pgbouncer_databases(conf)] == ["test", "postgres"]
    names = [u for u, _ in pgsql.pgbouncer_users(conf)]
    assert names == ["dbuser_dba", "dbuser_monitor", "test"]
    lines = hba.pgbouncer_lines(conf)
    assert lines[0] == "local pgbouncer postgres peer"


def consul_conf(minion="node-1"):
    pillar = default_pillar()
    pillar["pigsty"]["vars"].update({"dcs_type": "consul", "consul_hosts": ["10.10.10.10:8500"], "dcs_servers": {}})
    return inv.instance_config(pillar, minion), pillar


def test_etcd_is_the_default_dcs_for_patroni_and_vip_manager():
    conf = conf_of("node-2")
    assert "etcd" in pgsql.patroni_config(conf, 4096) and "consul" not in pgsql.patroni_config(conf, 4096)
    vip = pgsql.vip_manager_config(conf)
    assert vip["dcs-type"] == "etcd" and vip["trigger-key"] == "/service/pg-test/leader"
    assert vip["dcs-endpoints"] == "https://10.10.10.10:2379,https://10.10.10.11:2379,https://10.10.10.12:2379" and vip["trigger-value"] == "pg-test-2"
    assert (vip["ip"], vip["netmask"], vip["interface"]) == ("10.10.10.3", 24, "eth1")


def test_consul_paths():
    conf, pillar = consul_conf()
    assert inv.validate(pillar) == []
    cfg = pgsql.patroni_config(conf, 4096)
    assert cfg["consul"] == {"host": "10.10.10.10:8500", "scheme": "http", "register_service": False}
    assert "etcd" not in cfg
    vip = pgsql.vip_manager_config(conf)
    assert vip["dcs-type"] == "consul" and vip["trigger-key"] == "service/pg-test/leader"
    assert vip["dcs-endpoints"] == "http://10.10.10.10:8500"


@pytest.mark.parametrize("update,fragment", [
    ({"dcs_type": "zookeeper"}, "pigsty:vars:dcs_type: unknown DCS 'zookeeper'"),
    ({"dcs_type": "consul"}, "pigsty:vars:consul_hosts: dcs_type is consul but no Consul address"),
    ({"dcs_type": "consul", "consul_hosts": ["10.10.10.10"]}, "pigsty:vars:consul_hosts: expected a list of HOST:PORT"),
])
def test_bad_dcs_settings(update, fragment):
    pillar = default_pillar()
    pillar["pigsty"]["vars"].update(update)
    assert any(fragment in p for p in inv.validate(pillar)), inv.validate(pillar)


def test_consul_client_package_only_with_consul():
    import pigsty_infra
    assert "python3-consul" not in pigsty_infra.pgsql_packages(conf_of("node-1"))
    assert "python3-consul" in pigsty_infra.pgsql_packages(consul_conf()[0])


from render import render_haproxy_cfg  # noqa: E402  (tests/support)


def listen_block(cfg, name):
    block = cfg.split("listen %s\n" % name, 1)[1]
    return block.split("\nlisten ", 1)[0]


def test_write_services_check_that_postgres_is_out_of_recovery():
    """Patroni 3 answers 200 on /primary as soon as it holds the leader key, while the
    promotion may still run (a bench switchover saw 5 s): the write services also want the
    body's role, which Patroni takes from pg_is_in_recovery()."""
    cfg = render_haproxy_cfg(conf_of("node-2"))
    primary = listen_block(cfg, "pg-test-primary")
    assert "http-check send meth GET uri /primary" in primary
    assert "http-check expect status 200" in primary
    assert """http-check expect rstring '"role": *"(master|primary)"'""" in primary
    replica = listen_block(cfg, "pg-test-replica")
    assert "http-check send meth OPTIONS uri /replica" in replica and "rstring" not in replica
    # the live primary serves reads only through its backup copy, which follows 5433
    assert "server pg-test-1-primary 10.10.10.11:6432 track pg-test-primary/pg-test-1 backup" in replica
    # a dead server: one short connect timeout, then another server, and marked down at once
    assert "timeout connect 500ms" in cfg and "option redispatch 1" in cfg
    assert "observe" not in replica     # it cut the connection being redispatched (see the template)
    assert pgsql.haproxy_services(conf_of("node-2"))[0]["expect_writable"] is True


def test_writable_primary_needs_the_key_and_the_role():
    import pigsty_patroni
    assert pigsty_patroni.writable_primary(200, {"role": "master", "state": "running"})
    assert pigsty_patroni.writable_primary(200, {"role": "primary"})              # Patroni 4
    assert not pigsty_patroni.writable_primary(200, {"role": "replica"})           # promoting
    assert not pigsty_patroni.writable_primary(503, {"role": "master"})
    assert not pigsty_patroni.writable_primary(200, "not json")
