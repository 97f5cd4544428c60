"""Scheduled retention: _utils/pigsty_cleanup.py, the nodes' pigsty_cleanup.logs
(_modules/pigsty_cleanup_node.py) on files here, the runner's pigsty.cleanup, and the
master's schedule entries."""
import os

import pytest
import salt.exceptions
import yaml

import pigsty_cleanup as CL
import pigsty_inventory
import pigsty_patrol_store as S
from loader import load_module
from pillar_fixture import REPO, default_pillar
from test_patrol_store import DAY, NOW, rep

MIB = 1024 ** 2
INV = pigsty_inventory.index(pigsty_inventory.inventory(default_pillar()))


def test_rotate_plan_takes_only_files_over_the_limit():
    files = [("/l/pg-test-archive-push.log", 65 * MIB), ("/l/pg-test-backup.log", 64 * MIB),
             ("/l/all-server.log", 70 * MIB)]
    assert CL.rotate_plan(files, 64 * MIB) == ["/l/all-server.log", "/l/pg-test-archive-push.log"]
    assert CL.max_bytes_of(None) == 64 * MIB
    for bad in (0, 1000, "64M", True, 1.5):
        with pytest.raises(CL.pigsty_patrol.PatrolError, match="^max_bytes: expected a whole number"):
            CL.max_bytes_of(bad)


@pytest.fixture
def node_mod(tmp_path):
    logdir = tmp_path / "pgbackrest"
    logdir.mkdir()
    return load_module("_modules/pigsty_cleanup_node.py", salt={
        "pigsty_backup.settings": lambda: {"pgbackrest_log_dir": str(logdir)}}), logdir


def test_node_logs_rotates_pgbackrest_logs_and_the_sink_file_keeping_one_copy(tmp_path, node_mod):
    mod, logdir = node_mod
    big = logdir / "pg-test-archive-push.log"
    big.write_bytes(b"x" * (MIB + 1))
    (logdir / "pg-test-archive-push.log.1").write_bytes(b"old")
    (logdir / "pg-test-backup.log").write_bytes(b"small")
    (logdir / "not-a-log.txt").write_bytes(b"y" * (2 * MIB))
    sink = tmp_path / "alerts.jsonl"
    sink.write_bytes(b"{}\n" * MIB)
    planned = mod.logs(max_bytes=MIB, test=True, extra=[str(sink)])
    assert planned["result"] is None and planned["rotated"] == sorted([str(big), str(sink)])
    assert big.stat().st_size == MIB + 1                                  # test: nothing moved
    done = mod.logs(max_bytes=MIB, extra=[str(sink)])
    assert done["result"] is True and done["checked"] == 3 and done["rotated"] == planned["rotated"]
    assert not big.exists() and (logdir / "pg-test-archive-push.log.1").stat().st_size == MIB + 1
    assert (logdir / "pg-test-backup.log").read_bytes() == b"small" and (tmp_path / "alerts.jsonl.1").exists()
    assert mod.logs(max_bytes=MIB, extra=[])["rotated"] == []           # idempotent
    with pytest.raises(salt.exceptions.SaltInvocationError, match="^max_bytes:"):
        mod.logs(max_bytes=10)


def test_node_logs_without_a_log_dir_or_inventory_does_nothing(tmp_path):
    def no_inventory():
        raise salt.exceptions.CommandExecutionError("no meta node in the inventory")
    mod = load_module("_modules/pigsty_cleanup_node.py", salt={"pigsty_backup.settings": no_inventory})
    out = mod.logs(extra=[str(tmp_path / "absent")])
    assert out == {"result": True, "rotated": [], "checked": 0, "log_dir": None,
                   "comment": "0 of 0 file(s) rotated (over 67108864 bytes)"}


def _reports(base):
    for days_ago in (0, 31):
        S.write(base, rep(when=NOW - days_ago * DAY))


def test_run_prunes_reports_and_asks_the_backup_nodes_and_meta(tmp_path):
    base = str(tmp_path / "patrol")
    _reports(base)
    asked = []

    def fan_out(minions, fun, kwarg):
        asked.append((minions, fun, kwarg))
        return {m: {"result": True, "rotated": ["/pg/log/pgbackrest/x.log"] if m == "node-1" else []}
                for m in minions if m != "node-3"}
    out = CL.run({"pigsty_patrol_dir": base}, INV, fan_out, now=NOW)
    assert asked == [(["meta", "node-1", "node-2", "node-3"], "pigsty_cleanup.logs",
                      {"max_bytes": 64 * MIB, "test": False})]
    assert out["result"] is False and out["nodes"]["node-3"] == "no answer"
    assert out["reports_removed"] == [os.path.join(base, "pg-test", "2026-11-02.json")]
    assert out["comment"] == ("1 patrol report removed (older than 30 days); 1 log file rotated "
                              "(over 64.0 MiB); no answer from node-3")
    assert "expire-auto" in out["not_here"]["backups"] and "logs_vacuum" in out["not_here"]["collected logs"]
    assert S.dates(base, "pg-test") == ["2026-12-03"]


def test_run_in_test_mode_removes_nothing_and_bad_retention_is_refused_first(tmp_path):
    base = str(tmp_path / "patrol")
    _reports(base)
    out = CL.run({"pigsty_patrol_dir": base}, INV, lambda m, f, k: {x: {"rotated": []} for x in m},
                 test=True, now=NOW)
    assert out["result"] is None and "would be removed" in out["comment"]
    assert S.dates(base, "pg-test") == ["2026-11-02", "2026-12-03"]
    asked = []
    with pytest.raises(CL.pigsty_patrol.PatrolError, match="^retention_days:"):
        CL.run({"pigsty_patrol_dir": base}, INV, lambda *a: asked.append(a), retention_days=0)
    assert asked == [] and S.dates(base, "pg-test") == ["2026-11-02", "2026-12-03"]


def test_runner_cleanup_refuses_bad_input_with_the_field_named(tmp_path, monkeypatch):
    mod = load_module("_runners/pigsty.py", opts={"pigsty_patrol_dir": str(tmp_path),
                                                   "cachedir": str(tmp_path), "pillar_roots": {}},
                      context={})
    monkeypatch.setattr(mod, "_cached_inventory", lambda max_age=300: ({}, INV))
    assert mod.cleanup(test="no")["comment"] == "test: expected True or False, got 'no'"
    out = mod.cleanup(max_bytes="big")
    assert out["result"] is False and out["comment"].startswith("max_bytes: expected")
    assert mod.__context__["retcode"] == 1


def test_the_master_schedules_patrol_and_cleanup_beside_the_existing_entries():
    with open(os.path.join(REPO, "master.d", "reactor.conf")) as fh:
        schedule = yaml.safe_load(fh)["schedule"]
    assert schedule["pigsty-patrol-due"]["function"] == "pigsty.patrol_due"
    assert schedule["pigsty-patrol-due"]["minutes"] == 10
    assert schedule["pigsty-cleanup"] == {"function": "pigsty.cleanup", "hours": 24,
                                          "maxrunning": 1, "return_job": False}
    assert schedule["pigsty-logs-vacuum"]["function"] == "pigsty.logs_vacuum"     # not duplicated
