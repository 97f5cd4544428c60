"""pigsty_patrol.facts (_modules/pigsty_patrol_node.py) through pigsty_pg.read against real
PostgreSQL 15 instances (see conftest): a primary with dead tuples, one whose
archive_command fails and its streaming standby; the report's checks on what they answer."""
import functools
import time

import pytest
from salt.exceptions import CommandExecutionError

import pigsty_patrol as P
from loader import load_module
from pg_server import start_instance

MEMBER = [{"pg_instance": "pg-x-1", "minion": "here", "ip": "127.0.0.1", "pg_role": "primary"}]
CONF = {"pgbackrest_enabled": True, "pgbackrest_schedule": []}


def patrol_mod(pg_mod, inst):
    return load_module("_modules/pigsty_patrol_node.py",
                       salt={"pigsty_pg.read": functools.partial(pg_mod.read, **inst.conn)})


def wait_for(check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError("not within %ss: %r" % (timeout, last))


def test_read_runs_in_a_read_only_transaction(pg, pg_mod):
    assert pg_mod.read("SELECT 1, 'a'::text", **pg.conn) == [[1, "a"]]
    assert pg_mod.read("SELECT %s::int + 1", args=[41], **pg.conn) == [[42]]
    with pytest.raises(CommandExecutionError, match="read-only transaction"):
        pg_mod.read("CREATE TABLE patrol_nope (id int)", **pg.conn)
    assert pg.query("SELECT to_regclass('patrol_nope') IS NULL")[0][0] is True


def test_facts_of_a_primary_with_dead_tuples(pg, pg_mod):
    pg.query("DROP DATABASE IF EXISTS patrol_app")
    pg.query("CREATE DATABASE patrol_app")
    pg.query("CREATE TABLE churn (id int) WITH (autovacuum_enabled = false)", dbname="patrol_app")
    pg.query("INSERT INTO churn SELECT generate_series(1, 20000)", dbname="patrol_app")
    pg.query("DELETE FROM churn WHERE id <= 15000", dbname="patrol_app")
    mod = patrol_mod(pg_mod, pg)
    assert mod.__virtual__() == "pigsty_patrol"
    f = wait_for(lambda: (lambda x: x if x["dead"] else None)(mod.facts()))
    assert f["in_recovery"] is False and f["data_directory"] == pg.data
    assert f["archive_mode"] == "off" and f["archive_ready"] == 0
    assert f["data_bytes"] > 1 << 20 and f["wal_bytes"] >= 16 << 20
    assert {"postgres", "template0", "template1", "patrol_app"} <= {r["datname"] for r in f["xid"]}
    assert all(isinstance(r["age"], int) and r["age"] > 0 for r in f["xid"])
    assert 0 < f["disk"]["pct"] < 100 and f["disk"]["total"] > f["disk"]["avail"] > 0
    top = f["dead"][0]
    assert (top["datname"], top["table"], top["dead"], top["live"]) == ("patrol_app", "public.churn", 15000, 5000)
    assert top["bytes"] > 0 and top["last_vacuum"] is None and f["errors"] == []
    report = P.evaluate("pg-x", MEMBER, CONF, None, [], {"here": f}, {"backups": []}, [], time.time())
    bloat = next(c for c in report["checks"] if c["check"] == "bloat")
    assert bloat["status"] == "fail" and bloat["value"] == "patrol_app.public.churn: 15000 dead (75%)"
    pg.query("DROP DATABASE patrol_app")


def test_a_failing_archive_command_is_a_failed_archive_check_and_a_standby_lists_no_tables(pg_mod):
    primary, stop = start_instance({"archive_mode": "on", "archive_command": "'/bin/false'",
                                    "wal_level": "replica", "max_wal_senders": "4"},
                                   hba="local all postgres trust\nlocal replication postgres trust\n")
    try:
        primary.query("CREATE TABLE w (id int)")
        primary.query("INSERT INTO w SELECT generate_series(1, 1000)")
        primary.query("SELECT pg_switch_wal()")
        f = wait_for(lambda: (lambda x: x if x["archiver"]["failed_count"] else None)(
            patrol_mod(pg_mod, primary).facts()), 60)
        assert f["archive_mode"] == "on" and f["archiver"]["last_archived_time"] is None
        assert f["archiver"]["last_failed_wal"] and f["archive_ready"] >= 1
        report = P.evaluate("pg-x", MEMBER, CONF, None, [], {"here": f}, {"backups": []}, [], time.time())
        archive = next(c for c in report["checks"] if c["check"] == "archive")
        assert archive["status"] == "fail" and archive["value"].startswith("failing since")
        assert f["archiver"]["last_failed_wal"] in archive["detail"]
        standby, stop_standby = start_instance(basebackup_from=primary)
        try:
            s = patrol_mod(pg_mod, standby).facts()
            assert s["in_recovery"] is True and s["dead"] == [] and s["data_directory"] == standby.data
            assert s["xid"] and "disk" in s
        finally:
            stop_standby()
    finally:
        stop()


def test_postgres_not_answering_is_reported_not_raised(pg, pg_mod):
    mod = load_module("_modules/pigsty_patrol_node.py", salt={
        "pigsty_pg.read": functools.partial(pg_mod.read, host=pg.host, port=1),
        "pigsty.config": lambda: {"pg_data": pg.data}})
    f = mod.facts()
    assert "cannot connect to PostgreSQL" in f["pg_error"]
    assert f["data_directory"] == pg.data and f["disk"]["pct"] > 0
    with pytest.raises(CommandExecutionError, match="unexpected argument"):
        mod.facts(dbname="x")
