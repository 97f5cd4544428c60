"""Backup metrics (pigsty_backup_*): the age a schedule allows, the rendered text file
(valid exposition format: promtool check metrics), what the repository host's module writes,
what the runner records and sends, and the state of the exporter on the repository host."""
import json
import os
import shutil
import subprocess

import pytest

import pigsty_backup as B
import pigsty_backup_metrics as M
import pigsty_backup_schedule
import pigsty_defaults as D
import test_backup
from loader import load_module
from pillar_fixture import default_pillar

INFO = test_backup.INFO          # pgBackRest 2.45's info: a full and an incr backup of pg-test
HOUR = 3600


def series(text):
    """{(metric, sorted label items): value} of an exposition text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        items = tuple(sorted(tuple(kv.split("=", 1)) for kv in labels.rstrip("}").split(",")
                             if kv)) if labels else ()
        out[(name, tuple((k, v.strip('"')) for k, v in items))] = float(value)
    return out


def promtool_check(text):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool is not installed (Debian package prometheus; tests/run.sh installs it)")
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    return res.returncode, res.stdout + res.stderr


# ------------------------------------------------------------------ the allowed age
@pytest.mark.parametrize("schedule,longest,hours", [
    (D.DEFAULTS["pgbackrest_schedule"], 0, 24 + 1),            # daily: a day + 1 h
    ([{"type": "full", "cron": "0 1 * * 0"}], 0, 7 * 24 + 1),  # weekly full only
    ([{"type": "full", "cron": "0 1 * * 0"}], 3 * HOUR, 7 * 24 + 6),   # + twice a 3 h backup
    ([{"type": "incr", "cron": "*/15 * * * *"}], 60, 0.25 + 1),
    ([{"type": "full", "cron": "0 1 1 * *"}], 0, 31 * 24 + 1),  # monthly: the longest month
    ([{"type": "full", "cron": "0 1 * * 1,3"}, {"type": "incr", "cron": "0 13 * * 1,3"}],
     0, 4 * 24 + 12 + 1),                                      # Wednesday 13:00 -> Monday 01:00
])
def test_the_allowed_age_is_the_schedules_longest_gap_plus_grace(schedule, longest, hours):
    assert M.max_age_seconds(schedule, longest) == hours * HOUR


def test_no_schedule_no_allowed_age():
    assert M.max_age_seconds([], 100) is None
    text = M.render([("pg-test", B.parse_info(INFO, "pg-test"), {"schedule": []})], 1796172000)
    assert "pigsty_backup_max_age_seconds" not in text


# ------------------------------------------------------------------ rendering
def test_rendered_metrics_of_a_repository_with_backups():
    summary = B.parse_info(INFO, "pg-test")
    facts = {"schedule": D.DEFAULTS["pgbackrest_schedule"], "schedule_start": 1796170000.5,
             "attempt": {"type": "incr", "result": False, "time": 1796171500.25},
             "repo_bytes": 3069803, "status_code": 0}
    text = M.render([("pg-test", summary, facts)], 1796172000.123)
    code, out = promtool_check(text)
    assert code == 0, out
    s = series(text)
    cls = (("cls", "pg-test"),)
    full, incr = cls + (("type", "full"),), cls + (("type", "incr"),)
    assert s[("pigsty_backup_stanza_ok", cls)] == 1 and s[("pigsty_backup_status_code", cls)] == 0
    assert s[("pigsty_backup_running", cls)] == 0
    assert s[("pigsty_backup_repo_backups", full)] == 1 and s[("pigsty_backup_repo_backups", incr)] == 1
    assert s[("pigsty_backup_repo_backups", cls + (("type", "diff"),))] == 0
    assert s[("pigsty_backup_newest_time_seconds", cls)] == 1796171402     # the incr's end
    assert s[("pigsty_backup_oldest_time_seconds", cls)] == 1796171222     # the full's end
    assert s[("pigsty_backup_last_time_seconds", full)] == 1796171222
    assert s[("pigsty_backup_last_duration_seconds", full)] == 7
    assert s[("pigsty_backup_last_size_bytes", full)] == 23066293
    assert s[("pigsty_backup_last_repo_size_bytes", incr)] == 12000
    assert ("pigsty_backup_last_time_seconds", cls + (("type", "diff"),)) not in s
    assert s[("pigsty_backup_repo_bytes", cls)] == 3069803
    assert s[("pigsty_backup_max_age_seconds", cls)] == 25 * HOUR
    assert s[("pigsty_backup_schedule_start_time_seconds", cls)] == 1796170000.5
    assert s[("pigsty_backup_last_attempt_success", incr)] == 0
    assert s[("pigsty_backup_last_attempt_time_seconds", incr)] == 1796171500.25
    assert s[("pigsty_backup_collect_time_seconds", ())] == 1796172000.123
    # every metric documented once, and only the ones of the list
    assert text.count("# TYPE pigsty_backup_repo_backups gauge") == 1
    assert {name for name, _labels in s} <= set(M.HELP)
    # the same input, the same bytes
    assert M.render([("pg-test", summary, facts)], 1796172000.123) == text


def test_a_stanza_missing_from_the_repository_is_not_ok_and_has_no_counts():
    text = M.render([("pg-new", None, {"schedule": D.DEFAULTS["pgbackrest_schedule"],
                                       "schedule_start": 100})], 200)
    assert promtool_check(text)[0] == 0
    s = series(text)
    cls = (("cls", "pg-new"),)
    assert s[("pigsty_backup_stanza_ok", cls)] == 0 and s[("pigsty_backup_status_code", cls)] == -1
    assert not any(name == "pigsty_backup_repo_backups" for name, _l in s)
    assert s[("pigsty_backup_schedule_start_time_seconds", cls)] == 100   # PostgresBackupTooOld's clock


def test_a_new_stanza_without_backups_is_ok_with_zero_counts_and_no_newest_time():
    doc = json.loads(json.dumps(INFO))
    doc[0]["backup"] = []
    doc[0]["status"] = {"code": 2, "message": "no valid backups", "lock": {"backup": {"held": True}}}
    s = series(M.render([("pg-test", B.parse_info(doc, "pg-test"), {})], 10))
    cls = (("cls", "pg-test"),)
    assert s[("pigsty_backup_stanza_ok", cls)] == 1 and s[("pigsty_backup_status_code", cls)] == 2
    assert s[("pigsty_backup_running", cls)] == 1
    assert [v for (n, _l), v in s.items() if n == "pigsty_backup_repo_backups"] == [0, 0, 0]
    assert ("pigsty_backup_newest_time_seconds", cls) not in s


def test_a_backup_with_an_error_does_not_count_as_the_newest():
    doc = json.loads(json.dumps(INFO))
    doc[0]["backup"][1]["error"] = True          # the incr had page checksum errors
    s = series(M.render([("pg-test", B.parse_info(doc, "pg-test"), {})], 10))
    assert s[("pigsty_backup_newest_time_seconds", (("cls", "pg-test"),))] == 1796171222


def test_label_values_are_escaped_and_bad_values_refused():
    text = M.render([('pg-"x"', None, {})], 1)
    assert 'cls="pg-\\"x\\""' in text and promtool_check(text)[0] == 0
    with pytest.raises(ValueError):
        M.render([("pg-test", None, {"repo_bytes": float("nan")})], 1)


def test_the_file_is_replaced_atomically(tmp_path):
    path = tmp_path / "pigsty_backup.prom"
    path.write_text("old\n")
    M.write_atomic(str(path), "new\n")
    assert path.read_text() == "new\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path) == ["pigsty_backup.prom"]     # no temporary file left


def test_the_exporter_serves_the_text_files_only_on_loopback():
    argv = M.exporter_argv(9854)
    assert "--web.listen-address=127.0.0.1:9854" in argv and "--collector.disable-defaults" in argv
    assert "--collector.textfile.directory=%s" % M.TEXTFILE_DIR in argv


# ------------------------------------------------------------------ the repository host's module
def _meta_module(tmp_path, run):
    pillar = default_pillar(clusters=["pg-meta", "pg-test"])
    pillar["pigsty"]["vars"]["pgbackrest_repo"] = {"meta": {"path": str(tmp_path / "repo")}}
    return load_module("_modules/pigsty_backup.py", pillar=pillar, opts={"id": "meta"},
                       context={}, salt={"config.get": lambda key, default=None: default,
                                         "cmd.run_all": run})


def test_publish_metrics_writes_every_cluster_from_one_info_call(tmp_path):
    calls = []

    def run(argv, **kw):
        calls.append((argv, kw.get("runas")))
        return {"retcode": 0, "stdout": json.dumps(INFO), "stderr": ""}
    mod = _meta_module(tmp_path, run)
    if not mod.salt.utils.path.which("pgbackrest"):
        pytest.fail("pgbackrest is not installed (tests/run.sh installs the pgbackrest package)")
    wal = tmp_path / "repo" / "archive" / "pg-test" / "15-1"
    wal.mkdir(parents=True)
    (wal / "000000010000000000000001").write_bytes(b"x" * 1000)
    (tmp_path / "repo" / "backup" / "pg-test").mkdir(parents=True)
    (tmp_path / "repo" / "backup" / "pg-test" / "backup.info").write_bytes(b"y" * 24)
    out = mod.publish_metrics({"pg-test": {"schedule": D.DEFAULTS["pgbackrest_schedule"],
                                           "attempt": {"type": "full", "result": True,
                                                       "time": 5}}},
                              directory=str(tmp_path / "metrics"))
    # as the dbsu (runuser: the tests run as root)
    assert calls == [(["runuser", "-u", "postgres", "--", "pgbackrest", "--output=json", "info"], None)]
    # pg-meta is enabled but not in the repository (no stanza yet): reported, not an error
    assert out["result"] is True and out["clusters"] == 2, out
    s = series((tmp_path / "metrics" / M.TEXTFILE_NAME).read_text())
    assert s[("pigsty_backup_repo_bytes", (("cls", "pg-test"),))] == 1024
    assert s[("pigsty_backup_stanza_ok", (("cls", "pg-meta"),))] == 0
    assert s[("pigsty_backup_last_attempt_success", (("cls", "pg-test"), ("type", "full")))] == 1


def test_publish_metrics_marks_every_stanza_when_info_fails(tmp_path):
    mod = _meta_module(tmp_path, lambda argv, **kw: {"retcode": 1, "stdout": "",
                                                      "stderr": "ERROR: [041]: unable to open"})
    out = mod.publish_metrics(directory=str(tmp_path / "metrics"))
    assert out["result"] is False and "pgbackrest info failed" in out["comment"]
    s = series((tmp_path / "metrics" / M.TEXTFILE_NAME).read_text())
    assert s[("pigsty_backup_stanza_ok", (("cls", "pg-test"),))] == 0
    assert s[("pigsty_backup_stanza_ok", (("cls", "pg-meta"),))] == 0


def test_publish_metrics_runs_on_the_repository_host_only(tmp_path):
    mod = load_module("_modules/pigsty_backup.py", pillar=default_pillar(clusters=["pg-test"]),
                      opts={"id": "node-1"}, salt={})
    with pytest.raises(mod.salt.exceptions.CommandExecutionError, match="repository host meta"):
        mod.publish_metrics(directory=str(tmp_path))


def test_the_repository_host_runs_the_exporter_and_keeps_the_packages_node_exporter_off():
    with_cluster = test_backup._module("meta", ["pg-meta"])
    states = test_backup._render_sls("infra/backup_repo.sls", with_cluster, None)
    unit = states["pgbackrest-metrics-exporter-unit"]["file.managed"][1]["contents"]
    assert "ExecStart=%s\n" % " ".join(M.exporter_argv(9854)) in unit and "User=prometheus" in unit
    assert "pgbackrest-metrics-exporter" in states
    assert "pgbackrest-metrics-node-exporter-off" not in states      # pgsql.monitor's, on pg-meta
    pillar = default_pillar(clusters=["pg-test"])
    del pillar["pigsty"]["clusters"]["pg-meta"]                        # meta runs no cluster
    alone = load_module("_modules/pigsty_backup.py", pillar=pillar, opts={"id": "meta"},
                        salt={"config.get": lambda key, default=None: default})
    states = test_backup._render_sls("infra/backup_repo.sls", alone, None)
    assert {"enable": False} in states["pgbackrest-metrics-node-exporter-off"]["service.dead"]
    node = test_backup._module("node-1", ["pg-test"])
    assert test_backup._render_sls("infra/backup_repo.sls", node, None) == {}


# ------------------------------------------------------------------ the runner
@pytest.fixture
def runner(tmp_path, monkeypatch):
    mod = load_module("_runners/pigsty_backup.py", opts={"cachedir": str(tmp_path),
                                                         "pillar_roots": {}}, context={})
    inventory = {"clusters": {"pg-test": {}, "pg-off": {}}}
    monkeypatch.setattr(mod.pigsty_ha_inventory, "load", lambda opts: ({}, inventory))
    monkeypatch.setattr(mod.pigsty_ha_inventory, "members", lambda inv_, c: test_backup.MEMBERS)
    monkeypatch.setattr(mod.pigsty_inventory, "cluster_vars", lambda inv_, c: dict(
        D.DEFAULTS, pg_cluster=c, pgbackrest_enabled=(c == "pg-test")))
    monkeypatch.setattr(mod.pigsty_inventory, "meta_nodes", lambda inv_: ["meta"])
    return mod


def test_the_runner_records_each_attempt_and_sends_the_masters_facts(runner, monkeypatch):
    sent = []

    def call(minion, fun, arg=None, kwarg=None, timeout=None):
        assert (minion, fun) == ("meta", "pigsty_backup.publish_metrics")
        sent.append(kwarg["facts"])
        return {"result": True}
    monkeypatch.setattr(runner, "_call", call)       # salt-run pigsty_backup.metrics: waits

    def fire(opts, minions, fun, arg=None, kwarg=None):   # after a backup: started, not awaited
        assert (list(minions), fun) == (["meta"], "pigsty_backup.publish_metrics")
        sent.append(kwarg["facts"])
        return "20261203141500000000"
    monkeypatch.setattr(runner.pigsty_fanout, "fire", fire)
    monkeypatch.setattr(runner, "_backup", lambda c, t, w, ctx: {"result": False, "comment": "boom"})
    assert runner.backup("pg-test", "incr")["result"] is False
    facts = sent[-1]
    assert set(facts) == {"pg-test"}                           # pg-off has no backups
    assert facts["pg-test"]["attempt"]["type"] == "incr"
    assert facts["pg-test"]["attempt"]["result"] is False
    assert set(facts["pg-test"]["attempt"]) == {"type", "result", "time"}   # no comment sent
    assert facts["pg-test"]["schedule"] == D.DEFAULTS["pgbackrest_schedule"]
    monkeypatch.setattr(runner, "_backup", lambda c, t, w, ctx: {"result": True})
    runner.backup("pg-test", "full")
    assert sent[-1]["pg-test"]["attempt"]["result"] is True
    assert sent[-1]["pg-test"]["attempt"]["type"] == "full"

    def busy(c, t, w, ctx):
        raise runner.salt.exceptions.CommandExecutionError("backup (full) of pg-test is in progress")
    monkeypatch.setattr(runner, "_backup", busy)
    with pytest.raises(runner.salt.exceptions.CommandExecutionError):
        runner.backup("pg-test", "incr")
    runner.metrics()
    assert sent[-1]["pg-test"]["attempt"]["type"] == "full"    # the busy refusal is no attempt

    def broken(c, t, w, ctx):
        raise runner.salt.exceptions.CommandExecutionError("meta did not answer")
    monkeypatch.setattr(runner, "_backup", broken)
    with pytest.raises(runner.salt.exceptions.CommandExecutionError):
        runner.backup("pg-test", "diff")
    assert sent[-1]["pg-test"]["attempt"] == dict(sent[-1]["pg-test"]["attempt"], type="diff",
                                                  result=False)
    # bad input is refused before anything is recorded
    count = len(sent)
    assert runner.backup("pg-test", "weekly")["retcode"] == 1
    assert len(sent) == count


def test_metrics_sends_when_the_schedule_started(runner, monkeypatch):
    sent = []
    monkeypatch.setattr(runner, "_call", lambda m, f, arg=None, kwarg=None, timeout=None:
                        sent.append(kwarg["facts"]) or {"result": False, "comment": "x"})
    pigsty_backup_schedule.FileRecord(runner.__opts__["cachedir"], "pg-test").claim({"since": 1796170000.0})
    out = runner.metrics()
    assert sent[-1]["pg-test"]["schedule_start"] == 1796170000.0
    assert sent[-1]["pg-test"]["attempt"] is None
    assert out["result"] is False and runner.__context__["retcode"] == 1


def test_check_uses_the_alerts_threshold(runner, monkeypatch):
    answers = {"pigsty_backup.check": {"result": True},
               "pigsty_backup.info": B.parse_info(INFO, "pg-test"),
               "pigsty_backup.repo_bytes": 1}
    monkeypatch.setattr(runner, "_call", lambda m, f, arg=None, kwarg=None, timeout=600:
                        answers[f])
    monkeypatch.setattr(runner.time, "time", lambda: 1796171402 + 24 * HOUR)
    assert runner.check("pg-test")["result"] is True             # 24 h < 25 h allowed
    monkeypatch.setattr(runner.time, "time", lambda: 1796171402 + 26 * HOUR)
    out = runner.check("pg-test")
    assert out["result"] is False and "more than 25.0 h" in out["comment"]
