"""A new cluster restored from another cluster's backups (Pigsty's pg_pitr with cluster): the
validation before anything, Patroni's bootstrap method, the pgBackRest configuration of the
clone's node and of the repository (the clone's members may read the source's stanza), and
the check the orchestration runs before the first member restores."""
import copy
import datetime

import pytest

import pigsty_backup
import pigsty_clone as clone
import pigsty_inventory as inv
import pigsty_pgsql
from loader import load_module
from pillar_fixture import default_pillar

IP = "10.10.10.14"


def with_clone(pitr=None, private=True):
    pillar = default_pillar()
    pillar["pigsty"]["nodes"]["node-4"] = {"ip": IP}
    cvars = {}
    if private:
        test = pillar["pigsty"]["clusters"]["pg-test"]["vars"]
        cvars = {k: copy.deepcopy(v) for k, v in test.items() if k not in ("pg_vip_enabled", "pg_vip_address")}
    cvars["pg_pitr"] = {"cluster": "pg-test", "time": "2026-12-03 10:00:00+00"} if pitr is None else pitr
    pillar["pigsty"]["clusters"]["pg-clone"] = {"hosts": {IP: {"pg_seq": 1, "pg_role": "primary"}}, "vars": cvars}
    return pillar


def test_a_clone_of_another_cluster_is_valid():
    assert inv.validate(with_clone()) == []
    for target in ({"lsn": "0/3000060"}, {"name": "before_migration"}, {}, {"type": "time", "time": "2026-12-03"}):
        assert inv.validate(with_clone(dict(target, cluster="pg-test"))) == [], target


@pytest.mark.parametrize("pitr,fragment", [
    ({"time": "2026-12-03 10:00:00+00"}, "pg_pitr:cluster: expected another cluster"),
    ({"cluster": "pg-clone"}, "pg_pitr:cluster: expected another cluster"),
    ({"cluster": "pg-nowhere"}, "pg_pitr:cluster: 'pg-nowhere' is not a cluster"),
    ({"cluster": "pg-test", "time": "yesterday"}, "pg_pitr:time:"),
    ({"cluster": "pg-test", "time": "2026-12-03", "lsn": "0/3000060"}, "give one target"),
    ({"cluster": "pg-test", "lsn": "2026-12-03"}, "pg_pitr:lsn: '2026-12-03' is not a lsn"),
    ({"cluster": "pg-test", "type": "lsn", "time": "2026-12-03"}, "pg_pitr:type: 'lsn' disagrees"),
    ({"cluster": "pg-test", "action": "pause"}, "pg_pitr:action: 'pause': a clone is promoted"),
    ({"cluster": "pg-test", "xid": 1234}, "pg_pitr:xid: a transaction id target is not built"),
    ({"cluster": "pg-test", "colour": "red"}, "pg_pitr:colour: unknown field"),
    ("pg-test", "pg_pitr: expected a mapping"),
])
def test_a_wrong_pitr_is_refused_naming_the_field(pitr, fragment):
    problems = inv.validate(with_clone(pitr))
    assert any(p.startswith("pigsty:clusters:pg-clone:vars:pg_pitr") and fragment in p for p in problems), problems


def test_a_source_without_backups_or_a_clone_without_pgbackrest_is_refused():
    pillar = with_clone()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pgbackrest_enabled"] = False
    assert any("pg_pitr:cluster: pg-test keeps no backups" in p for p in inv.validate(pillar))
    pillar = with_clone()
    pillar["pigsty"]["clusters"]["pg-clone"]["vars"]["pgbackrest_enabled"] = False
    assert any("pg-clone:vars:pgbackrest_enabled: a clone is restored by pgBackRest" in p for p in inv.validate(pillar))


def test_other_system_passwords_are_refused_in_the_full_view_only():
    pillar = with_clone()
    pillar["pigsty"]["clusters"]["pg-clone"]["vars"]["pg_admin_password"] = "Another.One.1"
    problems = inv.validate(pillar)
    assert any("pg-clone:vars:pg_admin_password: differs from the source pg-test" in p for p in problems)
    assert not any("Another.One.1" in p for p in problems)
    assert inv.validate(pillar, private={"pg-clone"}) == []


def test_the_clone_bootstraps_by_restoring_the_sources_backup_to_the_target():
    conf = inv.instance_config(with_clone(), "node-4")
    assert conf["pg_clone"]["cluster"] == "pg-test" and conf["pg_clone"]["rtype"] == "time"
    boot = pigsty_pgsql.patroni_config(conf, 1024)["bootstrap"]
    assert boot["method"] == "pigsty_clone"
    section = boot["pigsty_clone"]
    assert section["command"] == ("pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=pg-test "
                                  "--pg1-path=%s --type=none restore" % conf["pg_data"])
    assert section["no_params"] is True and section["keep_existing_recovery_conf"] is False
    assert section["recovery_conf"] == {
        "restore_command": 'pgbackrest --stanza=pg-test archive-get %f "%p"',
        "recovery_target_action": "promote", "recovery_target_timeline": "latest",
        "recovery_target_time": "2026-12-03 10:00:00+00"}
    # archiving after the promotion goes to the clone's own stanza
    assert "--stanza=pg-clone" in pigsty_pgsql.patroni_config(conf, 1024)["postgresql"]["parameters"]["archive_command"]


@pytest.mark.parametrize("pitr,key,value", [
    ({"cluster": "pg-test", "lsn": "0/3000060"}, "recovery_target_lsn", "0/3000060"),
    ({"cluster": "pg-test", "name": "before_migration"}, "recovery_target_name", "before_migration"),
])
def test_lsn_and_restore_point_targets(pitr, key, value):
    section = pigsty_pgsql.patroni_config(inv.instance_config(with_clone(pitr), "node-4"), 1024)["bootstrap"]["pigsty_clone"]
    assert section["recovery_conf"][key] == value


def test_the_latest_has_no_target_and_an_ordinary_cluster_uses_initdb():
    section = pigsty_pgsql.patroni_config(inv.instance_config(with_clone({"cluster": "pg-test"}), "node-4"),
                                          1024)["bootstrap"]["pigsty_clone"]
    assert not [k for k in section["recovery_conf"] if k.startswith("recovery_target_") and k not in (
        "recovery_target_action", "recovery_target_timeline")]
    assert "method" not in pigsty_pgsql.patroni_config(inv.instance_config(default_pillar(), "node-1"), 1024)["bootstrap"]


def test_the_clones_node_has_the_sources_stanza_and_the_repository_lets_it_read_it():
    conf = inv.instance_config(with_clone(), "node-4")
    text = pigsty_backup.db_config(conf, "meta")
    assert "[pg-clone]" in text and "[pg-test]" in text
    section = text.split("[pg-test]")[1]
    assert "pg1-path=%s" % conf["pg_data"] in section
    index = inv.inventory(with_clone())
    clusters = []
    for name in ("pg-clone", "pg-test"):
        cconf = inv.cluster_vars(index, name)
        cconf["pg_clone"] = clone.clone_of(index, name)
        clusters.append((name, cconf, [m["minion"] for m in inv.cluster_members(index, name)]))
    repo = pigsty_backup.repo_config(inv.global_vars(index), clusters, repo_host="meta")
    assert "tls-server-auth=node-4=pg-clone,pg-test" in repo
    assert "tls-server-auth=node-1=pg-test" in repo           # pg-test's own members: its stanza only


# ------------------------------------------------------------------ the check before creation
@pytest.fixture
def runner(tmp_path, monkeypatch):
    mod = load_module("_runners/pigsty_backup.py", "runner_clone_check")
    mod.__opts__ = {"cachedir": str(tmp_path)}
    mod.__context__ = {}
    pillar = with_clone()
    monkeypatch.setattr(mod.pigsty_ha_inventory, "load", lambda opts, *a: (pillar, inv.inventory(pillar)))
    mod.leader = None
    monkeypatch.setattr(mod.pigsty_patroni, "find_leader", lambda ips, port, timeout=2, access=None: (mod.leader, []))
    first = {"label": "20261203-090000F", "stop": datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.timezone.utc).timestamp(),
             "lsn_stop": "0/2000000"}
    mod.summary = {"stanza": "pg-test", "backups": [first]}
    monkeypatch.setattr(mod, "_call", lambda minion, fun, arg=None, **k: mod.summary)
    return mod


def test_the_check_passes_when_the_sources_backups_cover_the_target(runner):
    res = runner.clone_check("pg-clone")
    assert res["result"] is True and "pg-test's backups cover" in res["comment"]


def test_the_check_refuses_a_target_before_the_first_backup(runner):
    runner.summary["backups"][0]["stop"] = datetime.datetime(2026, 12, 3, 11, 0, tzinfo=datetime.timezone.utc).timestamp()
    res = runner.clone_check("pg-clone")
    assert res["result"] is False and res["retcode"] == 1 and runner.__context__["retcode"] == 1
    assert "before the earliest recoverable time" in res["comment"] and "nothing was created" in res["comment"]


def test_a_running_clone_passes_without_asking_the_repository(runner, monkeypatch):
    runner.leader = {"name": "pg-clone-1"}
    monkeypatch.setattr(runner, "_call", lambda *a, **k: pytest.fail("the repository was asked"))
    res = runner.clone_check("pg-clone")
    assert res["result"] is True and "acts only when it is created" in res["comment"]


def test_the_check_of_a_cluster_that_is_no_clone_is_refused(runner):
    res = runner.clone_check("pg-test")
    assert res["result"] is False and res["comment"].startswith("cluster: pg-test is not a clone")


def test_a_cached_validation_still_checks_a_clone_against_its_source_as_it_is_now():
    cache = inv.ValidationCache()
    pillar = with_clone()
    assert inv.validate(pillar, cache=cache) == []
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pgbackrest_enabled"] = False   # only the source changes
    assert any("pg_pitr:cluster: pg-test keeps no backups" in p for p in inv.validate(pillar, cache=cache))
