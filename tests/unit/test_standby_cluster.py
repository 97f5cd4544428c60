"""Standby clusters (Pigsty's pg_upstream / pg_delay): validation before anything, what
Patroni is given, how the routing treats a standby leader, what refuses to run in one, and
the promotion runner's order and refusals."""
import copy

import pytest

import pigsty_backup
import pigsty_haproxy
import pigsty_ha_steps
import pigsty_inventory as inv
import pigsty_patroni
import pigsty_pgsql
import pigsty_standby as standby
from loader import load_module
from pillar_fixture import default_pillar

DELAY_HOST = "10.10.10.14"


def with_standby(upstream="10.10.10.11", delay="1h", private=True, **member):
    """The default pillar plus node-4 and pg-delay, a standby cluster of pg-test."""
    pillar = default_pillar()
    pillar["pigsty"]["nodes"]["node-4"] = {"ip": DELAY_HOST}
    host = {"pg_seq": 1, "pg_role": "primary", "pg_upstream": upstream}
    if delay is not None:
        host["pg_delay"] = delay
    host.update(member)
    cvars = {}
    if private:        # a copy has the upstream's roles: the same system users and passwords
        test = pillar["pigsty"]["clusters"]["pg-test"]["vars"]
        cvars = {k: copy.deepcopy(v) for k, v in test.items() if k not in ("pg_vip_enabled", "pg_vip_address")}
    pillar["pigsty"]["clusters"]["pg-delay"] = {"hosts": {DELAY_HOST: host}, "vars": cvars}
    return pillar


# ------------------------------------------------------------------ validation
def test_a_standby_cluster_of_a_member_or_of_the_vip_is_valid():
    assert inv.validate(with_standby()) == []
    assert inv.validate(with_standby(upstream="10.10.10.3")) == []          # pg-test's VIP


@pytest.mark.parametrize("value,setting", [
    (0, None), ("0", None), (None, None), (3600, "3600s"), ("90", "90s"),
    ("1h", "1h"), ("30min", "30min"), ("1d", "1d"), ("500ms", "500ms"),
])
def test_delay_settings_are_postgres_durations(value, setting):
    assert standby.delay_setting(value) == setting


@pytest.mark.parametrize("value", [True, -5, "1 week", "1w", "h", "1.5h"])
def test_a_bad_delay_is_refused(value):
    with pytest.raises(ValueError, match="PostgreSQL duration"):
        standby.delay_setting(value)


@pytest.mark.parametrize("kwargs,path,fragment", [
    ({"upstream": "10.10.10.99"}, "hosts:10.10.10.14:pg_upstream", "not a member's address or the VIP"),
    ({"upstream": DELAY_HOST}, "hosts:10.10.10.14:pg_upstream", "this cluster's own address"),
    ({"delay": "a week"}, "hosts:10.10.10.14:pg_delay", "PostgreSQL duration"),
    ({"pg_version": 14}, "hosts:10.10.10.14:pg_version", "unknown field"),
])
def test_a_wrong_upstream_or_delay_is_refused_naming_the_field(kwargs, path, fragment):
    problems = inv.validate(with_standby(**kwargs))
    assert any(p.startswith("pigsty:clusters:pg-delay:%s" % path) and fragment in p for p in problems), problems


def test_another_major_version_is_refused():
    pillar = with_standby()
    pillar["pigsty"]["clusters"]["pg-delay"]["vars"]["pg_version"] = 16
    problems = inv.validate(pillar)
    assert any("pg-delay:vars:pg_version: 16, the source pg-test runs 15" in p for p in problems), problems


def test_a_standby_of_a_standby_is_refused():
    pillar = with_standby()
    pillar["pigsty"]["nodes"]["node-5"] = {"ip": "10.10.10.15"}
    second = copy.deepcopy(pillar["pigsty"]["clusters"]["pg-delay"])
    second["hosts"] = {"10.10.10.15": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": DELAY_HOST}}
    pillar["pigsty"]["clusters"]["pg-delay2"] = second
    problems = inv.validate(pillar)
    assert any(p.startswith("pigsty:clusters:pg-delay2:hosts:10.10.10.15:pg_upstream") and
               "itself a standby cluster" in p for p in problems), problems


def test_the_full_view_refuses_other_system_passwords_without_showing_them():
    pillar = with_standby()
    pillar["pigsty"]["clusters"]["pg-delay"]["vars"]["pg_replication_password"] = "Other.Secret.1"
    problems = inv.validate(pillar)
    hits = [p for p in problems if "pg-delay:vars:pg_replication_password: differs from the source pg-test" in p]
    assert hits, problems
    assert not any("Other.Secret.1" in p or "Sandbox.Repl.test" in p for p in problems)
    # a minion's view holds only its own cluster's private part: nothing to compare there
    assert inv.validate(pillar, private={"pg-delay"}) == []


def test_a_delay_without_upstream_is_refused_in_a_clusters_vars():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_delay"] = "1h"
    problems = inv.validate(pillar)
    assert any(p.startswith("pigsty:clusters:pg-test:vars:pg_delay: a delay applies to a standby cluster only")
               for p in problems), problems


# ------------------------------------------------------------------ what the nodes are given
def test_the_standby_leader_streams_from_the_upstream_with_the_delay():
    conf = inv.instance_config(with_standby(), "node-4")
    assert conf["pg_standby"] == {"cluster": "pg-test", "host": "10.10.10.11", "port": 5432, "delay": "1h",
                                  "via": "member pg-test-1"}
    dcs = pigsty_pgsql.patroni_config(conf, 1024)["bootstrap"]["dcs"]
    assert dcs["standby_cluster"] == {"host": "10.10.10.11", "port": 5432,
                                      "create_replica_methods": ["basebackup"],
                                      "recovery_min_apply_delay": "1h"}
    # its replication login is the upstream's replicator (the copy's roles are pg-test's)
    auth = pigsty_pgsql.patroni_config(conf, 1024)["postgresql"]["authentication"]["replication"]
    assert auth["username"] == "replicator"


def test_an_ordinary_cluster_has_no_standby_section():
    conf = inv.instance_config(default_pillar(), "node-1")
    assert conf["pg_standby"] is None
    assert "standby_cluster" not in pigsty_pgsql.patroni_config(conf, 1024)["bootstrap"]["dcs"]


def test_without_delay_the_standby_applies_at_once():
    conf = inv.instance_config(with_standby(delay=None), "node-4")
    assert "recovery_min_apply_delay" not in pigsty_pgsql.patroni_config(conf, 1024)["bootstrap"]["dcs"]["standby_cluster"]


def test_a_standby_clusters_leader_services_check_for_the_leader():
    services = {s["name"]: s for s in pigsty_pgsql.haproxy_services(inv.instance_config(with_standby(), "node-4"))}
    assert services["pg-delay-primary"]["check"] == "/leader"
    assert services["pg-delay-default"]["check"] == "/leader"
    assert services["pg-delay-replica"]["check"] == "/replica"
    assert not services["pg-delay-primary"]["expect_writable"]
    normal = {s["name"]: s for s in pigsty_pgsql.haproxy_services(inv.instance_config(default_pillar(), "node-1"))}
    assert normal["pg-test-primary"]["check"] == "/primary"


def test_the_orchestration_learns_which_cluster_a_standby_copies():
    assert standby.standby_of(inv.inventory(with_standby()), "pg-delay")["cluster"] == "pg-test"
    assert standby.standby_of(inv.inventory(with_standby()), "pg-test") is None


# ------------------------------------------------------------------ the state's DCS convergence
def test_a_state_never_makes_a_primary_cluster_a_standby():
    patch, refusal, _note = standby.dcs_patch("pg-delay", None, {"host": "10.10.10.11", "port": 5432})
    assert patch is None and "never makes it a standby again" in refusal


def test_a_state_never_promotes_but_says_so():
    patch, refusal, note = standby.dcs_patch("pg-delay", {"host": "10.10.10.11", "port": 5432}, None)
    assert patch is None and refusal is None and "salt-run pigsty_ha.promote" in note


def test_a_state_converges_the_delay_of_a_standby():
    current = {"host": "10.10.10.11", "port": 5432, "create_replica_methods": ["basebackup"],
               "recovery_min_apply_delay": "1h"}
    desired = {"host": "10.10.10.11", "port": 5432, "create_replica_methods": ["basebackup"],
               "recovery_min_apply_delay": "10min"}
    assert standby.dcs_patch("pg-delay", current, desired) == ({"recovery_min_apply_delay": "10min"}, None, None)
    del desired["recovery_min_apply_delay"]
    assert standby.dcs_patch("pg-delay", current, desired) == ({"recovery_min_apply_delay": None}, None, None)
    assert standby.dcs_patch("pg-delay", current, dict(current)) == (None, None, None)


# ------------------------------------------------------------------ routing of a standby leader
def test_haproxy_sends_the_leader_services_to_a_standby_leader():
    services = pigsty_pgsql.haproxy_services(inv.instance_config(with_standby(), "node-4"))
    want = pigsty_haproxy.desired_health(services, {"pg-delay-1": "standby_leader"})
    assert want["pg-delay-primary"] == {"pg-delay-1": "up"}


def test_the_vip_stays_on_a_standby_leader():
    pillar = with_standby()
    pillar["pigsty"]["clusters"]["pg-delay"]["vars"].update(pg_vip_enabled=True, pg_vip_address="10.10.10.4/24")
    members = inv.cluster_members(inv.inventory(pillar), "pg-delay")
    calls = []

    def fan(minions, fun, arg=None, kwarg=None, timeout=None):
        calls.append((fun, kwarg))
        return {m: False for m in minions} if fun == "pigsty_vip.holds" else {m: True for m in minions}
    out = pigsty_ha_steps.vip(pillar, members, {"pg-delay-1": "standby_leader"}, fan)
    assert out["holder"] == "pg-delay-1" and out["actions"] == ["added on pg-delay-1"]
    assert ("pigsty_vip.ensure", {"present": True}) in calls


def test_no_backup_from_a_standby_leader():
    members = [{"pg_instance": "pg-delay-1", "minion": "node-4", "pg_role": "primary"}]
    with pytest.raises(pigsty_backup.BackupError, match="pg-delay-1 is a standby leader.*pigsty_ha.promote"):
        pigsty_backup.choose_source(members, {"pg-delay-1": "standby_leader"}, set())


# ------------------------------------------------------------------ switchover / promotion runner
@pytest.fixture
def runner(tmp_path, monkeypatch):
    mod = load_module("_runners/pigsty_ha.py", "runner_standby_cluster")
    mod.__opts__ = {"cachedir": str(tmp_path), "pillar_roots": {}}
    mod.__context__ = {}
    members = [{"pg_instance": "pg-delay-1", "ip": DELAY_HOST, "minion": "node-4", "pg_role": "primary"}]
    monkeypatch.setattr(mod, "_inventory", lambda: ({}, {}))
    monkeypatch.setattr(mod, "_members", lambda inv_, c: members)
    monkeypatch.setattr(mod.pigsty_inventory, "cluster_vars", lambda inv_, c: {"patroni_port": 8008,
                                                                               "pgbackrest_enabled": True})
    mod.leader_role = "standby_leader"
    monkeypatch.setattr(mod.pigsty_patroni, "find_leader", lambda ips, port, timeout, access=None: (
        {"name": "pg-delay-1", "host": DELAY_HOST, "role": mod.leader_role}, []))
    mod.dcs = {"ttl": 30, "standby_cluster": {"host": "10.10.10.3", "port": 5432, "recovery_min_apply_delay": "1h"}}
    mod.calls = []

    def get_json(host, port, path, timeout=None, access=None):
        assert path == "/config"
        return mod.dcs

    def request(host, port, path, method="GET", body=None, timeout=None, access=None):
        mod.calls.append((method, path, body))
        if method == "PATCH":
            mod.dcs = {k: v for k, v in mod.dcs.items() if k != "standby_cluster"}
            return 200, mod.dcs
        return 200, {"role": "master"}
    monkeypatch.setattr(mod.pigsty_patroni, "get_json", get_json)
    monkeypatch.setattr(mod.pigsty_patroni, "request", request)
    monkeypatch.setattr(mod, "reconcile", lambda cluster, **k: mod.calls.append(("reconcile", cluster)) or {"result": True})
    monkeypatch.setattr(mod, "_first_backup", lambda cluster: mod.calls.append(("backup", cluster)) or
                        {"result": True, "label": "20261203-101010F", "comment": "full backup"})
    return mod


def test_switchover_in_a_standby_cluster_is_refused_before_anything(runner):
    res = runner.switchover("pg-delay")
    assert res["result"] is False and res["retcode"] == 1
    assert "pg-delay is a standby cluster (pg-delay-1 is its standby leader)" in res["comment"]
    assert runner.calls == []


def test_promotion_in_order_and_what_to_do_next(runner):
    res = runner.promote("pg-delay")
    assert res["result"] is True, res
    assert runner.calls == [("PATCH", "/config", {"standby_cluster": None}), ("GET", "/primary", None),
                            ("reconcile", "pg-delay"), ("backup", "pg-delay")]
    assert res["was_following"] == {"host": "10.10.10.3", "port": 5432, "recovery_min_apply_delay": "1h"}
    assert "remove pg_upstream and pg_delay" in res["next"]


def test_the_promotions_dry_run_changes_nothing(runner):
    res = runner.promote("pg-delay", test=True)
    assert res["result"] is None and res["test"] is True and runner.calls == []
    assert res["steps"][0].startswith("stop following 10.10.10.3:5432")


@pytest.mark.parametrize("role,fragment", [("primary", "not a standby cluster: its leader pg-delay-1 is a primary")])
def test_promoting_a_cluster_that_is_not_a_standby_is_refused(runner, role, fragment):
    runner.leader_role = role
    res = runner.promote("pg-delay")
    assert res["result"] is False and fragment in res["comment"] and runner.calls == []
    assert runner.__context__["retcode"] == 1


def test_a_failed_first_backup_fails_the_command_but_says_the_promotion_stands(runner, monkeypatch):
    monkeypatch.setattr(runner, "_first_backup", lambda cluster: {"result": False, "comment": "stanza-create failed"})
    res = runner.promote("pg-delay")
    assert res["result"] is False and res["retcode"] == 1
    assert res["comment"].startswith("pg-delay promoted: pg-delay-1 is its primary")
    assert "its first backup failed: stanza-create failed" in res["comment"]


@pytest.mark.parametrize("timeout", ["soon", 0, -1, True, 7200])
def test_a_bad_timeout_is_refused_naming_it(runner, timeout):
    res = runner.promote("pg-delay", timeout=timeout)
    assert res["result"] is False and res["comment"].startswith("timeout: expected seconds")
    assert runner.calls == []


def test_patroni_leader_roles_name_the_standby_leader():
    assert "standby_leader" in pigsty_patroni.LEADER_ROLES


# ------------------------------------------------------------------ pg_role: standby (synchronous)
def sync_pillar(*standby_ips):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_rpo"] = 0
    for ip in standby_ips:
        pillar["pigsty"]["clusters"]["pg-test"]["hosts"][ip]["pg_role"] = "standby"
    return pillar


def nosync(pillar, minion):
    return pigsty_pgsql.patroni_config(inv.instance_config(pillar, minion), 1024)["tags"]["nosync"]


def test_only_standby_members_may_be_the_synchronous_standby():
    pillar = sync_pillar("10.10.10.12")
    assert inv.validate(pillar) == []
    assert nosync(pillar, "node-2") is False           # the standby
    assert nosync(pillar, "node-3") is True            # the other replica (offline query) is not
    assert nosync(pillar, "node-1") is False           # the primary may become one after a failover


def test_without_standby_members_every_online_replica_may_be_it():
    pillar = sync_pillar()
    assert nosync(pillar, "node-2") is False and nosync(pillar, "node-3") is False


def test_a_service_may_select_the_standby_members():
    pillar = sync_pillar("10.10.10.12")
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_services"] = [
        {"name": "standby", "port": 5435, "check": "/sync", "selector": "standby", "backup": "primary"}]
    assert inv.validate(pillar) == []
    svc = {s["name"]: s for s in pigsty_pgsql.haproxy_services(inv.instance_config(pillar, "node-1"))}["pg-test-standby"]
    assert [(s["name"], s["backup"]) for s in svc["servers"]] == [("pg-test-1", True), ("pg-test-2", False)]
    assert svc["check"] == "/sync"
