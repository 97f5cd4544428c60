"""_utils/pigsty_patrol_store.py (the reports on meta: files, retention, when one is due),
_utils/pigsty_patrol_collect.py and the thin runner functions pigsty.patrol / patrol_due,
with Salt, Patroni and Alertmanager replaced by answers given here."""
import json
import os
import stat

import pytest
import salt.exceptions

import pigsty_inventory
import pigsty_patrol as P
import pigsty_patrol_collect as C
import pigsty_patrol_store as S
from loader import load_module
from pillar_fixture import default_pillar
from test_patrol_report import NOW, backups, cluster_doc, facts

DAY = 86400


def rep(cluster="pg-test", when=NOW, status="ok"):
    return {"cluster": cluster, "time": when, "date": P.date_of(when), "status": status,
            "counts": {"ok": 9, "warn": 0, "fail": 0}, "checks": []}


def test_write_keeps_the_day_file_and_latest_private(tmp_path):
    path = S.write(str(tmp_path), rep())
    assert path == str(tmp_path / "pg-test" / "2026-12-03.json")
    assert json.load(open(path))["time"] == NOW
    assert S.read(str(tmp_path), "pg-test")["date"] == "2026-12-03"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "pg-test").st_mode) == 0o750
    S.write(str(tmp_path), rep(when=NOW + 3600, status="fail"))      # same day: replaced
    S.write(str(tmp_path), rep(when=NOW + DAY))
    assert S.dates(str(tmp_path), "pg-test") == ["2026-12-03", "2026-12-04"]
    assert S.read(str(tmp_path), "pg-test", "2026-12-03")["status"] == "fail"
    assert S.read(str(tmp_path), "pg-test")["date"] == "2026-12-04"
    assert sorted(os.listdir(tmp_path / "pg-test")) == ["2026-12-03.json", "2026-12-04.json", "latest.json"]


def test_read_of_nothing_or_of_garbage_is_none_and_a_bad_name_is_refused(tmp_path):
    assert S.read(str(tmp_path), "pg-test") is None
    (tmp_path / "pg-test").mkdir()
    (tmp_path / "pg-test" / "latest.json").write_text("{not json")
    assert S.read(str(tmp_path), "pg-test") is None
    (tmp_path / "pg-test" / "latest.json").write_text(json.dumps(rep(cluster="pg-other")))
    assert S.read(str(tmp_path), "pg-test") is None
    for bad in ("../etc", "PG", "", None, "pg_test"):
        with pytest.raises(P.PatrolError, match="^cluster: expected a cluster name"):
            S.read(str(tmp_path), bad)


def test_retention_removes_old_days_and_gone_clusters_only_once_expired(tmp_path):
    base = str(tmp_path)
    for days_ago in (0, 1, 30, 31, 45):
        S.write(base, rep(when=NOW - days_ago * DAY))
    S.write(base, rep(cluster="pg-old", when=NOW - 40 * DAY))
    S.write(base, rep(cluster="pg-gone", when=NOW - 2 * DAY))
    (tmp_path / "pg-test" / "notes.txt").write_text("kept")
    assert S.expired(["2026-11-03.json", "2026-11-02.json", "latest.json", "x.json"], NOW, 30) == \
        ["2026-11-02.json"]
    planned = S.prune(base, NOW, 30, {"pg-test"}, test=True)
    assert len(planned) == 3 and os.path.exists(tmp_path / "pg-old")              # test: nothing removed
    removed = S.prune(base, NOW, 30, {"pg-test"})
    assert removed == planned
    assert sorted(os.listdir(tmp_path)) == ["pg-gone", "pg-test"]                  # pg-old: all expired
    assert S.dates(base, "pg-test") == ["2026-11-03", "2026-12-02", "2026-12-03"]
    assert (tmp_path / "pg-test" / "notes.txt").exists() and S.read(base, "pg-test")["date"] == "2026-12-03"
    for bad in (0, -1, "30", 1.5, True, None):
        with pytest.raises(P.PatrolError, match="^retention_days: expected a whole number"):
            S.prune(base, NOW, bad, {"pg-test"})


def test_due_daily_from_the_hour_or_by_age():
    at = NOW - 2 * 3600 + 90 * 60                  # 2026-12-03 01:30 UTC
    yesterday = rep(when=NOW - DAY)
    assert S.due(None, at, 2) is True                  # a cluster's first: at once
    assert S.due(yesterday, at, 2) is False            # before 02:00 UTC
    assert S.due(yesterday, NOW, 2) is True
    assert S.due(rep(when=NOW), NOW + 3600, 2) is False     # today's is there
    assert S.due(rep(when=NOW), NOW + 29, 2, max_age=30) is False
    assert S.due(rep(when=NOW), NOW + 30, 2, max_age=30) is True


# ------------------------------------------------------------------ collection and runner
INV = pigsty_inventory.index(pigsty_inventory.inventory(default_pillar()))


@pytest.fixture
def world(tmp_path, monkeypatch):
    """The repository's inventory; node-3 does not answer, Patroni answers on node-2 only."""
    calls = []
    monkeypatch.setattr(C.pigsty_inventory_cache, "load", lambda opts, max_age=300: ({}, INV))

    def fan_out(opts, minions, fun, arg=None, kwarg=None, timeout=5):
        calls.append((tuple(minions), fun, arg))
        if fun == "pigsty_patrol.facts":
            return {m: f for m, f in facts().items() if m in minions and m != "node-3"}
        if fun == "pigsty_backup.info":
            return {"meta": backups()}
        raise AssertionError(fun)

    def get_json(host, port, path, timeout=2, access=None, **_kw):
        if host != "10.10.10.12":
            raise C.pigsty_patroni.PatroniError("%s:%s%s: refused" % (host, port, path))
        assert (port, path) == (8008, "/cluster") and access.scheme == "https"
        return cluster_doc(state3="stopped", lag3="unknown")

    monkeypatch.setattr(C.pigsty_fanout, "fan_out", fan_out)
    monkeypatch.setattr(C.pigsty_patroni, "get_json", get_json)
    monkeypatch.setattr(C, "firing_alerts", lambda port: [] if port == 9093 else "wrong port")
    opts = {"pigsty_patrol_dir": str(tmp_path / "patrol"), "cachedir": str(tmp_path)}
    return opts, calls


def test_take_collects_everything_and_keeps_a_report_with_failed_checks(world):
    opts, calls = world
    report, path = C.take(opts, "pg-test", now=NOW)
    assert path.endswith("/patrol/pg-test/2026-12-03.json") and os.path.exists(path)
    status = {c["check"]: c["status"] for c in report["checks"]}
    assert status == {"members": "fail", "lag": "fail", "nodes": "fail", "backup": "ok",
                      "archive": "ok", "xid_age": "ok", "disk": "fail", "bloat": "ok", "alerts": "ok"}
    assert "pg-test-3 (node-3): no answer" in report["checks"][2]["detail"]
    assert (("node-1", "node-2", "node-3"), "pigsty_patrol.facts", None) in calls
    assert (("meta",), "pigsty_backup.info", ["pg-test"]) in calls


def test_an_unknown_cluster_is_refused_naming_the_field_before_asking_anyone(world):
    opts, calls = world
    with pytest.raises(salt.exceptions.SaltInvocationError) as err:
        C.take(opts, "pg-nope")
    assert str(err.value) == "cluster: 'pg-nope' is not a cluster of the inventory (expected one of: pg-meta, pg-test)"
    assert calls == [] and not os.path.exists(opts["pigsty_patrol_dir"])


def test_due_takes_each_cluster_that_needs_one_and_survives_a_failing_one(world, monkeypatch):
    opts, _calls = world
    real = C.take
    monkeypatch.setattr(C, "take", lambda o, c, **kw: (_ for _ in ()).throw(RuntimeError("boom"))
                        if c == "pg-meta" else real(o, c, now=NOW))
    out = C.due(opts, now=NOW)
    assert out["pg-meta"] == "patrol failed: boom" and out["pg-test"].startswith("patrol of pg-test")
    assert C.due(opts, now=NOW + 60) == {"pg-meta": "patrol failed: boom"}     # pg-test: today's is there


@pytest.fixture
def runner(world):
    opts, _calls = world
    mod = load_module("_runners/pigsty.py", opts=dict(opts, pillar_roots={}), context={})
    mod.pigsty_patrol_collect = C
    return mod


def test_runner_patrol_prints_the_newest_report_or_takes_one(runner):
    out = runner.patrol(cluster="pg-test")
    assert out["result"] is False and "pg-test has no patrol report yet" in out["comment"]
    text = runner.patrol(cluster="pg-test", run=True)
    assert text.startswith("patrol of pg-test at ") and "FAIL" in text.splitlines()[0]
    assert "nodes:   pg-test-3 (node-3): no answer" in text
    assert runner.patrol(cluster="pg-test") == text.replace(
        text.splitlines()[0].rsplit(" [", 1)[1], "%s/pg-test/latest.json]" % runner.__opts__["pigsty_patrol_dir"])
    lines = runner.patrol().splitlines()
    assert lines[0] == "pg-meta: no report yet" and lines[1].startswith("pg-test: FAIL at ")
    # refused with retcode 1 (salt-run exits 0 when a runner raises SaltInvocationError)
    out = runner.patrol(cluster="pg-nope")
    assert out["result"] is False and out["comment"].startswith("cluster: 'pg-nope' is not a cluster")
    assert runner.__context__["retcode"] == 1


def test_runner_refuses_bad_arguments_naming_them(runner):
    assert runner.patrol(cluster="pg-test", run="yes")["comment"] == "run: expected True or False, got 'yes'"
    out = runner.patrol_due(max_age="soon")
    assert out["result"] is False and out["comment"].startswith("max_age: expected seconds")
    for bad in (24, -1, "2", True):
        assert runner.patrol_due(hour=bad)["comment"].startswith("hour: expected an hour of the day 0-23")
    assert not os.path.exists(runner.__opts__["pigsty_patrol_dir"])         # nothing taken
