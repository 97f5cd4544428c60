"""Backups (pgBackRest): pillar validation with clear errors, the rendered configuration,
``pgbackrest info`` parsing and the operator's table, restore targets and their refusals,
the choice of the backup's source, and the runner's refusals before anything is stopped."""
import datetime
import json

import pytest

import pigsty_backup as B
import pigsty_defaults as D
import pigsty_inventory as inv
import pigsty_pgsql
from loader import load_module
from pillar_fixture import default_pillar

UTC = datetime.timezone.utc

# `pgbackrest info --output=json` of pgBackRest 2.45 after one full backup (trimmed of nothing)
INFO = [{"archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
                      "max": "000000010000000000000006", "min": "000000010000000000000001"}],
         "backup": [{"archive": {"start": "000000010000000000000006",
                                 "stop": "000000010000000000000006"},
                     "backrest": {"format": 5, "version": "2.45"},
                     "database": {"id": 1, "repo-key": 1}, "error": False,
                     "info": {"delta": 23066293, "repository": {"delta": 3057803, "size": 3057803},
                              "size": 23066293},
                     "label": "20261202-002655F", "lsn": {"start": "0/6000028", "stop": "0/6020460"},
                     "prior": None, "reference": None,
                     "timestamp": {"start": 1796171215, "stop": 1796171222}, "type": "full"},
                    {"archive": {"start": "000000010000000000000008",
                                 "stop": "000000010000000000000008"},
                     "backrest": {"format": 5, "version": "2.45"},
                     "database": {"id": 1, "repo-key": 1}, "error": False,
                     "info": {"delta": 81920, "repository": {"delta": 12000, "size": 12000},
                              "size": 23066293},
                     "label": "20261202-002655F_20261202-003000I",
                     "lsn": {"start": "0/8000028", "stop": "0/8000100"},
                     "prior": "20261202-002655F", "reference": ["20261202-002655F"],
                     "timestamp": {"start": 1796171400, "stop": 1796171402}, "type": "incr"}],
         "cipher": "none", "db": [{"id": 1, "repo-key": 1, "system-id": 7714496008414247652,
                                   "version": "15"}],
         "name": "pg-test", "repo": [{"cipher": "none", "key": 1, "status": {"code": 0, "message": "ok"}}],
         "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"}}]


def problems(pillar, *fragments):
    found = inv.validate(pillar)
    return [p for p in found if all(f in p for f in fragments)]


def test_defaults_are_valid_and_archiving_is_on():
    pillar = default_pillar()
    assert inv.validate(pillar) == []
    assert D.DEFAULTS["pgbackrest_enabled"] is True
    assert "pgbackrest" in D.PGSQL_PACKAGES


@pytest.mark.parametrize("where,key,value,fragment", [
    ("global", "pgbackrest_method", "minio", "pigsty:vars:pgbackrest_method: expected one of meta"),
    ("global", "pgbackrest_port", 70000, "pigsty:vars:pgbackrest_port: expected a port"),
    ("global", "pgbackrest_repo", {"meta": {"compress_type": "xz"}},
     "pigsty:vars:pgbackrest_repo:meta:compress_type: expected one of lz4"),
    ("global", "pgbackrest_repo", {"meta": {"retention_full": 0}},
     "pgbackrest_repo:meta:retention_full: expected an integer 1-"),
    ("global", "pgbackrest_repo", {"meta": {"path": "/pg/../etc"}},
     "pgbackrest_repo:meta:path: expected an absolute path"),
    ("global", "pgbackrest_repo", {"meta": {"path": "/pg/backup\nrepo1-path=/tmp"}},
     "pgbackrest_repo:meta:path: expected an absolute path"),
    ("global", "pgbackrest_repo", {"meta": {"retention": 3}},
     "pgbackrest_repo:meta:retention: unknown field"),
    ("global", "pgbackrest_repo", {"local": {}}, "pgbackrest_repo: no entry 'meta'"),
    ("cluster", "pgbackrest_enabled", "yes", "pigsty:clusters:pg-test:vars:pgbackrest_enabled: "
                                             "expected true or false"),
    ("cluster", "pg_archive_timeout", -1, "pg-test:vars:pg_archive_timeout: expected seconds"),
    ("cluster", "pgbackrest_schedule", [{"type": "weekly", "cron": "0 1 * * 0"}],
     "pgbackrest_schedule[0]:type: expected one of full, diff, incr"),
    ("cluster", "pgbackrest_schedule", [{"type": "full", "cron": "every sunday"}],
     "pgbackrest_schedule[0]:cron: expected five cron fields"),
    ("cluster", "pgbackrest_schedule", "0 1 * * 0", "pgbackrest_schedule: expected a list"),
    ("cluster", "pgbackrest_repo", {"meta": {}}, "pg-test:vars:pgbackrest_repo: an infra "
                                                 "parameter is global"),
])
def test_bad_backup_parameters_are_named(where, key, value, fragment):
    pillar = default_pillar()
    target = pillar["pigsty"].setdefault("vars", {}) if where == "global" else \
        pillar["pigsty"]["clusters"]["pg-test"].setdefault("vars", {})
    target[key] = value
    assert problems(pillar, fragment), inv.validate(pillar)


def _conf():
    pillar = default_pillar()
    minion = inv.index(inv.inventory(pillar)).cluster("pg-test").members[0]["minion"]
    return inv.instance_config(pillar, minion)


def test_patroni_archives_through_pgbackrest_on_every_member():
    conf = _conf()
    params = pigsty_pgsql.patroni_config(conf, 2048)["postgresql"]
    assert params["parameters"]["archive_mode"] == "on"
    assert params["parameters"]["archive_command"] == \
        "pgbackrest --stanza=pg-test archive-push %p"
    assert params["parameters"]["archive_timeout"] == 60
    # replicas stream (slots keep their WAL): a restore_command would ask the repository for
    # every history file while a switchover's candidate is promoted (0.4-0.5 s)
    assert "recovery_conf" not in params and "restore_command" not in params["parameters"]
    assert B.restore_command("pg-test").startswith("pgbackrest --stanza=pg-test archive-get")
    conf["pgbackrest_enabled"] = False
    params = pigsty_pgsql.patroni_config(conf, 2048)["postgresql"]
    assert "archive_command" not in params["parameters"] and "recovery_conf" not in params


def test_configs_use_tls_with_the_node_certificate_and_authorise_by_cn():
    conf = _conf()
    db = B.db_config(conf, "meta")
    assert "repo1-host=meta\nrepo1-host-type=tls\nrepo1-host-port=8432" in db
    assert "repo1-host-key-file=/etc/pki/pigsty/node.key" in db
    assert "tls-server-auth=meta=pg-test" in db
    assert "[pg-test]\npg1-path=/pg/data\npg1-port=5432" in db
    # archive_command and restore_command fail in about 10 s, not 120 s, when meta cannot be reached
    for command in ("archive-get", "archive-push"):
        assert "[global:%s]\nio-timeout=%d\n" % (command, B.ARCHIVE_IO_TIMEOUT) in db
    assert B.ARCHIVE_IO_TIMEOUT <= 10
    repo = B.repo_config(conf, [("pg-test", conf, ["node-1", "node-2", "node-3"])])
    for i, node in enumerate(["node-1", "node-2", "node-3"], 1):
        assert "pg%d-host=%s\npg%d-host-type=tls" % (i, node, i) in repo
        assert "tls-server-auth=%s=pg-test" % node in repo
    assert "repo1-path=/pg/backup" in repo and "repo1-retention-full=2" in repo
    assert "compress-type=lz4" in repo


def test_info_is_parsed_and_the_table_shows_backups_wal_and_window():
    summary = B.parse_info(json.dumps(INFO), "pg-test")
    assert [b["type"] for b in summary["backups"]] == ["full", "incr"]
    assert summary["earliest"] == 1796171222
    assert (summary["wal_min"], summary["wal_max"]) == ("000000010000000000000001",
                                                        "000000010000000000000006")
    assert summary["repo_size"] == 3057803 + 12000
    text = B.table(summary)
    lines = text.splitlines()
    assert lines[0] == "stanza pg-test: ok"
    assert lines[1].split()[:3] == ["label", "type", "started"]
    assert lines[2].split()[:2] == ["20261202-002655F", "full"]
    assert "22.0 MiB  2.9 MiB" in lines[2] and lines[3].split()[1] == "incr"
    assert "000000010000000000000006" in lines[2]
    assert "archived WAL: 000000010000000000000001 .. 000000010000000000000006" in text
    assert "earliest recoverable time: 2026-12-02 00:27:02+00" in text


@pytest.mark.parametrize("text,fragment", [
    ("not json", "not JSON"), ("{}", "expected a list"), (json.dumps([{"name": "pg-meta"}]),
                                                          "no stanza pg-test"),
])
def test_info_that_is_not_pgbackrests_is_refused(text, fragment):
    with pytest.raises(B.BackupError, match=fragment):
        B.parse_info(text, "pg-test")


def test_targets():
    assert B.parse_target("latest") == ("default", None)
    assert B.parse_target("0/3000060") == ("lsn", "0/3000060")
    assert B.parse_target("name:before_upgrade") == ("name", "before_upgrade")
    rtype, when = B.parse_target("2026-12-01 10:00:00")          # no zone: UTC
    assert rtype == "time" and when == datetime.datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert B.parse_target("2026-12-01T12:00:00+02:00")[1] == when
    for bad in ("yesterday", "", "name:bad name", "0/XYZ"):
        with pytest.raises(B.BackupError, match="target"):
            B.parse_target(bad)
    argv = B.restore_argv("pg-test", "time", when)
    assert argv[-4:] == ["--type=time", "--target=2026-12-01 10:00:00+00",
                         "--target-action=promote", "restore"]


def test_targets_outside_the_recoverable_window_are_refused():
    summary = B.parse_info(INFO, "pg-test")
    now = datetime.datetime.fromtimestamp(1796172000, UTC)
    first_end = datetime.datetime.fromtimestamp(1796171222, UTC)
    assert "before the earliest recoverable time" in B.refuse_target(
        "time", first_end - datetime.timedelta(seconds=1), summary, now)
    assert B.refuse_target("time", first_end, summary, now) is None
    assert "in the future" in B.refuse_target("time", now + datetime.timedelta(minutes=1),
                                               summary, now)
    assert "before the end of the first backup" in B.refuse_target("lsn", "0/6000000", summary, now)
    assert B.refuse_target("lsn", "0/7000000", summary, now) is None
    empty = dict(summary, backups=[])
    assert "no backup" in B.refuse_target("default", None, empty, now)


MEMBERS = [{"pg_instance": "pg-test-%d" % i, "minion": "node-%d" % i, "ip": "10.10.10.1%d" % i,
            "pg_role": "primary" if i == 1 else "replica"} for i in (1, 2, 3)]


def test_backup_source_is_a_streaming_replica_first_in_pgbackrest_order():
    roles = {"pg-test-1": "replica", "pg-test-2": "primary", "pg-test-3": "replica"}
    hosts, standby, source = B.choose_source(MEMBERS, roles, {"pg-test-3"})
    assert (hosts, standby, source) == (["node-3", "node-2", "node-1"], True, "pg-test-3")


def test_a_replica_that_does_not_stream_is_never_the_source():
    roles = {"pg-test-1": "primary", "pg-test-2": "replica", "pg-test-3": "stopped"}
    hosts, standby, source = B.choose_source(MEMBERS, roles, set())
    assert (standby, source, hosts[0]) == (False, "pg-test-1", "node-1")
    argv = B.backup_argv("pg-test", "incr", hosts, standby)
    assert "--no-backup-standby" in argv and argv[-2:] == ["--type=incr", "backup"]


def test_no_live_primary_no_backup():
    with pytest.raises(B.BackupError, match="no single live primary"):
        B.choose_source(MEMBERS, {"pg-test-1": "unreachable", "pg-test-2": "replica"}, set())
    with pytest.raises(B.BackupError, match="type"):
        B.backup_argv("pg-test", "weekly", ["node-1"], False)


@pytest.fixture
def runner(tmp_path):
    return load_module("_runners/pigsty_backup.py", opts={"cachedir": str(tmp_path),
                                                          "pillar_roots": {}}, context={})


def test_restore_without_confirmation_says_what_it_destroys(runner):
    summary = B.parse_info(INFO, "pg-test")
    now = datetime.datetime.fromtimestamp(1796172000, UTC)
    with pytest.raises(B.BackupError) as err:
        runner._plan_restore("pg-test", "2026-12-02 00:29:00", None, summary, MEMBERS, now)
    assert "DESTROYS" in str(err.value) and "pg-test-1, pg-test-2, pg-test-3" in str(err.value)
    assert "confirm=pg-test" in str(err.value)
    assert runner._plan_restore("pg-test", "2026-12-02 00:29:00", "pg-test", summary, MEMBERS,
                               now)[0] == "time"


def test_restore_refusals_stop_nothing(runner, monkeypatch):
    calls = []
    inventory = {"clusters": {"pg-test": {}}, "nodes": {"meta": {"ip": "10.10.10.10", "meta": True}}}
    monkeypatch.setattr(runner.pigsty_ha_inventory, "load", lambda opts: ({}, inventory))
    monkeypatch.setattr(runner.pigsty_ha_inventory, "members", lambda inv_, c: MEMBERS)
    monkeypatch.setattr(runner.pigsty_inventory, "cluster_vars",
                        lambda inv_, c: dict(D.DEFAULTS, pg_cluster=c))
    monkeypatch.setattr(runner.pigsty_inventory, "meta_nodes", lambda inv_: ["meta"])

    def fan(minions, fun, arg=None, kwarg=None, timeout=None):
        calls.append(fun)
        if fun == "pigsty_backup.info":
            return {m: B.parse_info(INFO, "pg-test") for m in minions}
        raise AssertionError("%s must not run before the checks pass" % fun)
    monkeypatch.setattr(runner, "_fan", fan)
    for target, confirm, fragment in (
            ("2026-12-01 00:00:00", "pg-test", "before the earliest recoverable time"),
            ("2099-01-01 00:00:00", "pg-test", "in the future"),
            ("0/1000000", "pg-test", "before the end of the first backup"),
            ("soon", "pg-test", "target"),
            ("latest", "pg-tset", "DESTROYS")):
        runner.__context__ = {}
        out = runner.restore("pg-test", target, confirm=confirm)
        assert out["result"] is False and fragment in out["comment"], out
        assert runner.__context__["retcode"] == 1
    assert set(calls) == {"pigsty_backup.info"}
    monkeypatch.undo()
    monkeypatch.setattr(runner.pigsty_ha_inventory, "load", lambda opts: ({}, inventory))
    monkeypatch.setattr(runner, "_fan", fan)
    res = runner.restore("pg-nope", "latest", confirm="pg-nope")       # refused, salt-run exits 1
    assert res["result"] is False and res["retcode"] == 1 and "'pg-nope' is not a cluster" in res["comment"]
    assert runner.__context__["retcode"] == 1


def test_two_backups_of_a_cluster_never_run_at_once(runner):
    with runner.pigsty_ha_locks.operation_lock(runner.__opts__, "pg-test", "backup (full)",
                                               kind="backup"):
        with pytest.raises(runner.salt.exceptions.CommandExecutionError,
                           match="backup \\(full\\).*in progress"):
            with runner.pigsty_ha_locks.operation_lock(runner.__opts__, "pg-test",
                                                       "backup (incr)", kind="backup"):
                pass
        # a planned switchover is not blocked by a backup (another lock)
        with runner.pigsty_ha_locks.operation_lock(runner.__opts__, "pg-test", "switchover"):
            pass


def _module(minion, clusters):
    return load_module("_modules/pigsty_backup.py", pillar=default_pillar(clusters=clusters),
                       opts={"id": minion}, salt={"config.get": lambda key, default=None: default})


def _render_sls(relpath, mod, conf):
    import os

    import jinja2
    import yaml
    from pillar_fixture import REPO
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(REPO, "salt")),
                             undefined=jinja2.StrictUndefined)
    env.filters["json"] = json.dumps
    salt = {"pigsty_backup.%s" % n: getattr(mod, n) for n in ("config", "peers", "settings")}
    salt["pigsty.config"] = lambda: conf
    salt["pigsty_pki.request"] = lambda: {"group": "ssl-cert"}
    return yaml.safe_load(env.get_template(relpath).render(salt=salt)) or {}


def test_repository_host_config_serves_every_cluster_and_its_own_locally():
    mod = _module("meta", ["pg-meta"])
    text = mod.config()
    assert "[pg-test]\npg1-host=node-1\n" in text and "pg3-host=node-3" in text
    assert "[pg-meta]\npg1-path=/pg/data" in text          # pg-meta on meta: local, no host
    assert "tls-server-auth=node-2=pg-test" in text and "tls-server-auth=meta=" not in text
    assert mod.peers() == {"node-1": "10.10.10.11", "node-2": "10.10.10.12",
                           "node-3": "10.10.10.13"}
    states = _render_sls("infra/backup_repo.sls", mod, None)
    assert states["pgbackrest-repo-config"]["file.managed"][1] == {"contents": text}
    assert {"name": "node-2"} in states["pgbackrest-peer-node-2"]["host.present"]
    server = states["pgbackrest-repo-server"]["service.running"]
    assert {"x509": "pki-node-cert"} in next(x["watch"] for x in server if "watch" in x)
    assert states["include"] == ["node.pki"]


def test_database_node_config_points_at_the_repository_host():
    mod = _module("node-2", ["pg-test"])
    text = mod.config()
    assert "repo1-host=meta\n" in text and "tls-server-auth=meta=pg-test" in text
    assert mod.peers() == {"meta": "10.10.10.10"}
    conf = inv.instance_config(default_pillar(clusters=["pg-test"]), "node-2")
    states = _render_sls("pgsql/pgbackrest.sls", mod, conf)
    assert states["pgbackrest-config"]["file.managed"][1] == {"contents": text}
    assert "pgbackrest-server" in states and "pgbackrest-peer-meta" in states
    conf["pgbackrest_enabled"] = False
    assert _render_sls("pgsql/pgbackrest.sls", mod, conf) == {}
    # nothing of it on the repository host, whose infra.backup_repo manages the same files
    meta = _module("meta", ["pg-meta"])
    assert _render_sls("pgsql/pgbackrest.sls", meta,
                       inv.instance_config(default_pillar(clusters=["pg-meta"]), "meta")) == {}


class FakeMinions:
    """The minions' answers to the runner's calls, and the calls in order."""

    def __init__(self, fail=None, silent=()):
        self.calls = []
        self.fail = fail or {}
        self.silent = set(silent)

    def __call__(self, minions, fun, arg=None, kwarg=None, timeout=None):
        out = {}
        for m in minions:
            self.calls.append((m, fun))
            if (m, fun) in self.silent:
                continue
            if fun == "pigsty_backup.info":
                out[m] = B.parse_info(INFO, "pg-test")
            elif fun == "pigsty_backup.settings":
                out[m] = {"pg_data": "/pg/data"}
            elif fun in ("service.stop", "service.start"):
                out[m] = True
            elif fun == "pigsty_backup.restore":
                out[m] = {"result": (m, fun) not in self.fail, "seconds": 3, "output": "boom"}
            else:
                out[m] = {"result": (m, fun) not in self.fail, "comment": fun}
        return out


@pytest.fixture
def restoring(runner, monkeypatch):
    inventory = {"clusters": {"pg-test": {}}}
    monkeypatch.setattr(runner.pigsty_ha_inventory, "load", lambda opts: ({}, inventory))
    monkeypatch.setattr(runner.pigsty_ha_inventory, "members", lambda inv_, c: MEMBERS)
    monkeypatch.setattr(runner.pigsty_inventory, "cluster_vars",
                        lambda inv_, c: dict(D.DEFAULTS, pg_cluster=c))
    monkeypatch.setattr(runner.pigsty_inventory, "meta_nodes", lambda inv_: ["meta"])
    monkeypatch.setattr(runner, "_live", lambda members, conf: (
        {"pg-test-1": "primary", "pg-test-2": "replica", "pg-test-3": "replica"},
        {"pg-test-2", "pg-test-3"}))
    monkeypatch.setattr(runner, "_wait_leader", lambda *a: True)
    monkeypatch.setattr(runner, "_wait_streaming", lambda *a: (True, ["pg-test-2", "pg-test-3"]))
    monkeypatch.setattr(runner.salt.runner, "RunnerClient", lambda opts: type(
        "R", (), {"cmd": lambda self, *a, **k: None})())
    return runner


def test_restore_runs_in_order_replicas_stopped_first_and_recloned(restoring, monkeypatch):
    fake = FakeMinions()
    monkeypatch.setattr(restoring, "_fan", fake)
    out = restoring.restore("pg-test", "2026-12-02 00:29:00", confirm="pg-test")
    assert out["result"] is True and out["leader"] == "pg-test-1", out
    calls = [c for c in fake.calls if c[1] != "pigsty_backup.info"]
    assert calls == [
        ("node-1", "pigsty_backup.settings"), ("node-1", "pigsty_backup.archive_now"),
        ("node-2", "service.stop"), ("node-3", "service.stop"), ("node-1", "service.stop"),
        ("node-1", "pigsty_backup.set_aside"), ("node-1", "pigsty_backup.restore"),
        ("node-1", "pigsty_backup.recover"), ("node-1", "pigsty_backup.dcs_remove"),
        ("node-1", "service.start"),
        ("node-2", "pigsty_backup.remove_data"), ("node-2", "service.start"),
        ("node-3", "pigsty_backup.remove_data"), ("node-3", "service.start")]


def test_a_failed_restore_puts_the_cluster_back_as_it_was(restoring, monkeypatch):
    fake = FakeMinions(fail={("node-1", "pigsty_backup.restore")})
    monkeypatch.setattr(restoring, "_fan", fake)
    restoring.__context__ = {}
    out = restoring.restore("pg-test", "2026-12-02 00:29:00", confirm="pg-test")
    assert out["result"] is False and "as it was" in out["comment"]
    assert restoring.__context__["retcode"] == 1
    after = fake.calls[fake.calls.index(("node-1", "pigsty_backup.restore")) + 1:]
    assert after == [("node-1", "pigsty_backup.put_back"), ("node-1", "service.start"),
                     ("node-2", "service.start"), ("node-3", "service.start")]
    assert not any(f in ("pigsty_backup.dcs_remove", "pigsty_backup.remove_data")
                   for _m, f in fake.calls)


def test_a_restoring_node_that_does_not_answer_stops_nothing(restoring, monkeypatch):
    fake = FakeMinions(silent={("node-1", "pigsty_backup.settings")})
    monkeypatch.setattr(restoring, "_fan", fake)
    out = restoring.restore("pg-test", "2026-12-02 00:29:00", confirm="pg-test")
    assert out["result"] is False and "nothing was stopped" in out["comment"]
    assert not any(f == "service.stop" for _m, f in fake.calls)


def test_a_primary_whose_wal_does_not_reach_the_repository_stops_nothing(restoring, monkeypatch):
    fake = FakeMinions(fail={("node-1", "pigsty_backup.archive_now")})
    monkeypatch.setattr(restoring, "_fan", fake)
    restoring.__context__ = {}
    out = restoring.restore("pg-test", "2026-12-02 00:29:00", confirm="pg-test")
    assert out["result"] is False and "refused, nothing was stopped" in out["comment"], out
    assert "did not reach the repository" in out["comment"] and restoring.__context__["retcode"] == 1
    assert not any(f == "service.stop" for _m, f in fake.calls)


def test_without_a_live_primary_the_restore_uses_what_the_repository_holds(restoring, monkeypatch):
    fake = FakeMinions()
    monkeypatch.setattr(restoring, "_fan", fake)
    monkeypatch.setattr(restoring, "_live", lambda members, conf: (
        {"pg-test-1": "stopped", "pg-test-2": "stopped", "pg-test-3": "stopped"}, set()))
    out = restoring.restore("pg-test", "2026-12-02 00:29:00", confirm="pg-test")
    assert out["result"] is True and not any(f == "pigsty_backup.archive_now" for _m, f in fake.calls)
    assert {"step": "archive up to now", "result": "no live primary: recovery gets the WAL the "
            "repository holds"} in out["steps"]


def test_a_primary_that_does_not_stop_is_not_touched(restoring, monkeypatch):
    fake = FakeMinions(silent={("node-1", "service.stop")})
    monkeypatch.setattr(restoring, "_fan", fake)
    out = restoring.restore("pg-test", "2026-12-02 00:29:00", confirm="pg-test")
    assert out["result"] is False and "before any data was touched" in out["comment"]
    assert not any(f == "pigsty_backup.set_aside" for _m, f in fake.calls)
    assert ("node-2", "service.start") in fake.calls


def test_restore_target_keeps_its_microseconds():
    rtype, when = B.parse_target("2026-12-01 10:00:00.250000+00:00")
    assert "--target=2026-12-01 10:00:00.250000+00" in B.restore_argv("pg-test", rtype, when)


def _at(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("expr,when,fires", [
    ("0 1 * * 0", "2026-12-06 01:00", True),        # a Sunday
    ("0 1 * * 7", "2026-12-06 01:00", True),        # 7 is Sunday too
    ("0 1 * * 0", "2026-12-07 01:00", False),       # Monday
    ("0 1 * * 1-6", "2026-12-07 01:00", True),
    ("0 1 * * 1-6", "2026-12-07 01:01", False),
    ("*/15 * * * *", "2026-12-07 13:45", True),
    ("*/15 * * * *", "2026-12-07 13:46", False),
    ("30 2 1 * *", "2026-12-01 02:30", True),
    ("30 2 1 * 0", "2026-12-06 02:30", True),       # day of month OR day of week
    ("0 0 1,15 6 *", "2026-12-15 00:00", False),
])
def test_cron_matching(expr, when, fires):
    assert B.cron_problem(expr) is None
    assert B.cron_matches(expr, _at(when)) is fires


def test_due_catches_up_once_and_prefers_the_largest_type():
    schedule = [{"type": "incr", "cron": "0 * * * *"}, {"type": "full", "cron": "0 1 * * *"}]
    now = _at("2026-12-07 01:20")
    btype, fired = B.due(schedule, {"0 * * * *": _at("2026-12-07 00:00").timestamp(),
                                    "0 1 * * *": _at("2026-12-06 01:00").timestamp()}, now)
    assert btype == "full" and fired == {"0 * * * *": _at("2026-12-07 01:00").timestamp(),
                                         "0 1 * * *": _at("2026-12-07 01:00").timestamp()}
    assert B.due(schedule, fired, now) == (None, {})               # recorded: not again
    assert B.due(schedule, fired, _at("2026-12-07 02:00"))[0] == "incr"


def test_run_due_starts_the_schedule_then_runs_what_is_due(runner, monkeypatch):
    inventory = {"clusters": {"pg-test": {}, "pg-off": {}}}
    monkeypatch.setattr(runner.pigsty_ha_inventory, "load", lambda opts: ({}, inventory))
    monkeypatch.setattr(runner.pigsty_inventory, "cluster_vars", lambda inv_, c: dict(
        D.DEFAULTS, pg_cluster=c, pgbackrest_enabled=(c == "pg-test"),
        pgbackrest_schedule=[{"type": "incr", "cron": "*/10 * * * *"}]))
    ran = []
    monkeypatch.setattr(runner, "backup", lambda c, t: ran.append((c, t)) or {"result": True})
    assert runner.run_due(_at("2026-12-07 01:05")) == {} and ran == []     # schedule starts
    assert runner.run_due(_at("2026-12-07 01:09")) == {} and ran == []
    assert runner.run_due(_at("2026-12-07 01:12"))["pg-test"]["result"] is True
    assert ran == [("pg-test", "incr")]
    assert runner.run_due(_at("2026-12-07 01:13")) == {} and len(ran) == 1

    def busy(c, t):
        raise runner.salt.exceptions.CommandExecutionError("backup (full) of pg-test is in progress")
    monkeypatch.setattr(runner, "backup", busy)
    assert runner.run_due(_at("2026-12-07 01:20"))["pg-test"]["result"] is None
    monkeypatch.setattr(runner, "backup", lambda c, t: ran.append((c, t)) or {"result": True})
    runner.run_due(_at("2026-12-07 01:21"))                          # the refused one, again
    assert ran[-1] == ("pg-test", "incr") and len(ran) == 2


def test_run_due_leaves_a_firing_another_master_took_and_gives_back_a_refused_one(runner, monkeypatch):
    """Several masters: the firing is taken only by the master whose claim moved the shared
    record; a backup refused as busy gives the firing back (the record as it was)."""
    inventory = {"clusters": {"pg-test": {}}}
    monkeypatch.setattr(runner.pigsty_ha_inventory, "load", lambda opts: ({}, inventory))
    monkeypatch.setattr(runner.pigsty_inventory, "cluster_vars", lambda inv_, c: dict(
        D.DEFAULTS, pg_cluster=c, pgbackrest_enabled=True,
        pgbackrest_schedule=[{"type": "incr", "cron": "*/10 * * * *"}]))

    class Record:
        shared = True

        def __init__(self):
            self.doc, self.won, self.claims = {"since": _at("2026-12-07 01:00").timestamp()}, False, []

        def claim(self, doc):
            self.claims.append(dict(doc))
            if self.won:
                self.doc = dict(doc)
            return self.won
    rec = Record()
    monkeypatch.setattr(runner.pigsty_backup_schedule, "record", lambda cachedir, c, shared: (rec, dict(rec.doc)))
    ran = []
    monkeypatch.setattr(runner, "backup", lambda c, t: ran.append((c, t)) or {"result": True})
    out = runner.run_due(_at("2026-12-07 01:12"))
    assert ran == [] and out["pg-test"] == {"result": None, "comment": "the incr backup due is another master's"}
    rec.won = True
    assert runner.run_due(_at("2026-12-07 01:12"))["pg-test"]["result"] is True and ran == [("pg-test", "incr")]
    assert rec.doc["last_result"]["result"] is True and "*/10 * * * *" in rec.doc

    def busy(c, t):
        raise runner.salt.exceptions.CommandExecutionError("backup (full) of pg-test is in progress")
    monkeypatch.setattr(runner, "backup", busy)
    before = dict(rec.doc)
    assert runner.run_due(_at("2026-12-07 01:21"))["pg-test"]["result"] is None
    assert rec.doc == before                                   # given back: due again next minute


def test_dcs_keys_that_cannot_be_removed_stop_the_restore_clearly_marked(restoring, monkeypatch):
    fake = FakeMinions(fail={("node-1", "pigsty_backup.dcs_remove")})
    monkeypatch.setattr(restoring, "_fan", fake)
    out = restoring.restore("pg-test", "2026-12-02 00:29:00", confirm="pg-test")
    assert out["result"] is False and "half-way" in out["comment"]
    assert "before-restore-" in out["comment"] and "patronictl" in out["comment"]
    assert fake.calls[-1] == ("node-1", "pigsty_backup.dcs_remove")    # nothing started after


# ------------------------------------------------------------------ one job per backup
OUTPUT_FULL = """P00   INFO: backup command begin 2.45: --backup-standby --exec-id=1-ab --stanza=pg-test --type=full
P00   INFO: execute non-exclusive backup start: backup begins after the next regular checkpoint completes
P00   INFO: new backup label = 20261203-141500F
P00   INFO: full backup size = 1.0GB, file total = 1290
P00   INFO: backup command end: completed successfully (9812ms)"""


@pytest.mark.parametrize("output, label", [
    (OUTPUT_FULL, "20261203-141500F"),
    ("P00   INFO: new backup label = 20261203-141500F_20261203-150000I\n", "20261203-141500F_20261203-150000I"),
    ("P00   INFO: new backup label = 20261203-141500F_20261203-150000D", "20261203-141500F_20261203-150000D"),
    ("P00  ERROR: [082]: WAL segment was not archived before the 60000ms timeout", None),
    ("", None), (None, None)])
def test_the_new_backups_label_is_read_from_pgbackrests_output(output, label):
    assert B.backup_label(output) == label


def test_the_stanza_exists_when_both_its_info_files_do(tmp_path):
    archive, backup = B.stanza_files(str(tmp_path), "pg-test")
    assert archive == str(tmp_path / "archive" / "pg-test" / "archive.info")
    assert backup == str(tmp_path / "backup" / "pg-test" / "backup.info")


@pytest.fixture
def repo_module(tmp_path, monkeypatch):
    """The repository host's module with pgBackRest replaced by a recorder of its commands."""
    mod = _module("meta", ["pg-meta", "pg-test"])
    runs = []

    def run_all(argv, **kwargs):
        runs.append(argv[-1])
        # as the dbsu through runuser (the tests run as root), with its HOME; no shell
        assert argv[:5] == ["runuser", "-u", "postgres", "--", "pgbackrest"], argv
        assert "runas" not in kwargs and kwargs["python_shell"] is False
        assert kwargs["env"]["HOME"] == "/home/postgres"
        return {"retcode": 0, "stdout": OUTPUT_FULL if argv[-1] == "backup" else "ok", "stderr": ""}
    mod.__salt__["cmd.run_all"] = run_all
    monkeypatch.setattr(mod.os, "geteuid", lambda: 0)
    monkeypatch.setattr(mod.pwd, "getpwnam", lambda name: type("pw", (), {"pw_dir": "/home/" + name})())
    monkeypatch.setattr(mod.pwd, "getpwuid", lambda uid: type("pw", (), {"pw_name": "root"})())
    monkeypatch.setattr(mod.salt.utils.path, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(mod.pigsty_backup, "repo_settings", lambda gconf: {"path": str(tmp_path)})
    mod.runs = runs
    mod.__context__ = {}
    return mod


def test_a_backup_creates_the_stanza_only_when_it_does_not_exist(repo_module, tmp_path):
    out = repo_module.take("pg-test", "full", ["node-2", "node-1", "node-3"], True)
    assert repo_module.runs == ["stanza-create", "backup"]
    assert out["result"] is True and out["label"] == "20261203-141500F" and out["stanza_created"]
    for path in B.stanza_files(str(tmp_path), "pg-test"):      # what stanza-create writes
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("[db]\n")
    repo_module.runs[:] = []
    # the label: the repository's latest link first (pgBackRest's console says it only at
    # log level info, and the repository host's config sets warn)
    (tmp_path / "backup" / "pg-test" / "latest").symlink_to("20261203-141500F_20261203-151000I")
    out = repo_module.take("pg-test", "incr", ["node-2", "node-1", "node-3"], True)
    assert repo_module.runs == ["backup"] and out["stanza_created"] is False
    assert out["label"] == "20261203-141500F_20261203-151000I"


def test_a_bad_type_or_cluster_is_refused_before_the_stanza_is_created(repo_module):
    with pytest.raises(repo_module.salt.exceptions.SaltInvocationError, match="type: expected one of"):
        repo_module.take("pg-test", "weekly", ["node-1"], False)
    with pytest.raises(repo_module.salt.exceptions.SaltInvocationError, match="cluster: expected"):
        repo_module.take("PG test", "full", ["node-1"], False)
    assert repo_module.runs == []


def test_a_failed_stanza_create_takes_no_backup_and_says_so(repo_module):
    repo_module.__salt__["cmd.run_all"] = lambda argv, **kw: (
        repo_module.runs.append(argv[-1]) or {"retcode": 55, "stdout": "", "stderr": "refused"})
    out = repo_module.take("pg-test", "full", ["node-1"], False)
    assert repo_module.runs == ["stanza-create"]
    assert out["result"] is False and out["step"] == "stanza-create" and "refused" in out["output"]
    assert repo_module.__context__["retcode"] == 1


def test_the_runners_backup_is_one_job_on_the_repository_and_a_metrics_refresh_it_does_not_wait_for(
        restoring, monkeypatch):
    fake, fired = FakeMinions(), []

    def take(minions, fun, arg=None, kwarg=None, timeout=None):
        if fun == "pigsty_backup.take":
            fake.calls.append((minions[0], fun, list(arg)))
            return {minions[0]: {"result": True, "seconds": 9.8, "label": "20261203-141500F",
                                 "step": "backup"}}
        return fake(minions, fun, arg, kwarg, timeout)
    monkeypatch.setattr(restoring, "_fan", take)
    monkeypatch.setattr(restoring.pigsty_fanout, "fire",
                        lambda opts, minions, fun, arg=None, kwarg=None: fired.append(
                            (tuple(minions), fun, kwarg)) or "20261203141500000000")
    restoring.__context__ = {}
    out = restoring.backup("pg-test", "full")
    assert out["result"] is True and out["label"] == "20261203-141500F" and out["source"] == "pg-test-2"
    assert fake.calls == [("meta", "pigsty_backup.take", ["pg-test", "full", ["node-2", "node-1", "node-3"], True])]
    assert [(m, f) for m, f, _k in fired] == [(("meta",), "pigsty_backup.publish_metrics")]
    attempt = fired[0][2]["facts"]["pg-test"]["attempt"]
    assert attempt["result"] is True and attempt["type"] == "full"     # recorded before the refresh
    assert "retcode" not in restoring.__context__


def test_a_backup_that_fails_in_stanza_create_names_it(restoring, monkeypatch):
    monkeypatch.setattr(restoring, "_fan", lambda minions, fun, arg=None, kwarg=None, timeout=None: {
        minions[0]: {"result": False, "step": "stanza-create", "output": "ERROR: [103]: unable to find a primary"}})
    monkeypatch.setattr(restoring.pigsty_fanout, "fire", lambda *a, **k: "1")
    restoring.__context__ = {}
    out = restoring.backup("pg-test", "full")
    assert out["result"] is False and out["comment"].startswith("stanza-create of pg-test failed on meta")
    assert restoring.__context__["retcode"] == 1
