"""_utils/pigsty_patrol.py: each check's status against its threshold, the report, its table
and summary line; a member that does not answer is a failed check, never an exception."""
import copy
import json

import pytest

import pigsty_defaults as D
import pigsty_patrol as P

NOW = 1796263200.0                      # 2026-12-03 02:00:00 UTC
HOUR = 3600
MEMBERS = [
    {"pg_instance": "pg-test-1", "minion": "node-1", "ip": "10.10.10.11", "pg_role": "primary"},
    {"pg_instance": "pg-test-2", "minion": "node-2", "ip": "10.10.10.12", "pg_role": "replica"},
    {"pg_instance": "pg-test-3", "minion": "node-3", "ip": "10.10.10.13", "pg_role": "replica"},
]
CONF = {"pgbackrest_enabled": True, "pgbackrest_schedule": D.DEFAULTS["pgbackrest_schedule"]}


def cluster_doc(lag2=0, lag3=0, state3="streaming", leader="pg-test-1"):
    members = [{"name": "pg-test-1", "role": "leader" if leader == "pg-test-1" else "replica",
                "state": "running", "host": "10.10.10.11", "timeline": 3}]
    members.append({"name": "pg-test-2", "role": "replica", "state": "streaming",
                    "host": "10.10.10.12", "timeline": 3, "lag": lag2})
    if state3 is not None:
        members.append({"name": "pg-test-3", "role": "replica", "state": state3,
                        "host": "10.10.10.13", "timeline": 3, "lag": lag3})
    return {"members": members}


def node(primary, pct=40.0, xid=1000, archiver=None, ready=0, dead=None):
    return {
        "in_recovery": not primary, "archive_mode": "on", "data_bytes": 50 << 20,
        "wal_bytes": 16 << 20, "archive_ready": ready, "errors": [],
        "archiver": archiver or {"archived_count": 10, "last_archived_wal": "000000030000000000000010",
                                 "last_archived_time": NOW - 60, "failed_count": 0,
                                 "last_failed_wal": None, "last_failed_time": None,
                                 "stats_reset": NOW - 86400 * 3},
        "xid": [{"datname": "postgres", "age": xid}, {"datname": "template0", "age": xid - 10}],
        "dead": dead if dead is not None else [],
        "data_directory": "/pg/data",
        "disk": {"path": "/pg/data", "total": 10 << 30, "used": int((10 << 30) * pct / 100),
                 "avail": int((10 << 30) * (100 - pct) / 100), "pct": pct},
    }


def facts(**over):
    out = {"node-1": node(True), "node-2": node(False), "node-3": node(False)}
    out.update(over)
    return out


def backups(age_hours=2.0, count=2):
    stop = NOW - age_hours * HOUR
    items = [{"label": "20261201-010000F", "type": "full", "start": stop - 86400 - 60,
              "stop": stop - 86400, "size": 1 << 30, "repo_size": 100 << 20, "error": False},
             {"label": "20261202-010000F_20261203-010000I", "type": "incr", "start": stop - 30,
              "stop": stop, "size": 1 << 30, "repo_size": 10 << 20, "error": False}][-count:]
    return {"stanza": "pg-test", "backups": items if count else [], "repo_size": 110 << 20}


ALERTS = [
    {"labels": {"alertname": "PgbouncerDown", "severity": "CRIT", "cls": "pg-test", "ins": "pg-test-3"},
     "status": {"state": "active"}, "startsAt": "2026-12-03T01:50:00Z",
     "annotations": {"summary": "Pgbouncer pg-test-3 is down"}},
    {"labels": {"alertname": "NodeCpuHigh", "severity": "WARN", "cls": "pg-meta", "ins": "pg-meta-1"},
     "status": {"state": "active"}},
    {"labels": {"alertname": "PostgresRestart", "severity": "INFO", "cls": "pg-test", "ins": "pg-test-1"},
     "status": {"state": "active"}},
    {"labels": {"alertname": "PostgresDown", "severity": "CRIT", "cls": "pg-test", "ins": "pg-test-2"},
     "status": {"state": "suppressed"}},
]


def report(doc="default", fcts=None, bk="default", alerts=(), conf=None, errors=(), over=None):
    return P.evaluate("pg-test", MEMBERS, conf or CONF, cluster_doc() if doc == "default" else doc,
                      list(errors), fcts if fcts is not None else facts(),
                      backups() if bk == "default" else bk, list(alerts) if alerts is not None
                      else None, NOW, over)


def check(rep, name):
    return next(c for c in rep["checks"] if c["check"] == name)


def test_a_healthy_cluster_is_ok_on_every_check_each_with_its_threshold():
    rep = report()
    assert [c["check"] for c in rep["checks"]] == list(P.CHECKS)
    assert rep["status"] == "ok" and rep["counts"] == {"ok": 9, "warn": 0, "fail": 0}, rep["checks"]
    assert all(c["threshold"] for c in rep["checks"])
    assert rep["primary"] == "pg-test-1" and rep["date"] == "2026-12-03"
    assert check(rep, "members")["value"] == "3/3 running, leader pg-test-1"
    json.dumps(rep)                                          # kept as JSON on meta


@pytest.mark.parametrize("lag, status", [(0, "ok"), (16 << 20, "ok"), ((16 << 20) + 1, "warn"),
                                         ((1 << 30) + 1, "fail"), ("unknown", "fail"), (None, "fail")])
def test_lag_against_16_mib_and_1_gib(lag, status):
    c = check(report(doc=cluster_doc(lag3=lag)), "lag")
    assert c["status"] == status and c["threshold"] == "warn > 16.0 MiB, fail > 1.0 GiB or not streaming"
    assert "pg-test-3" in c["detail"]


def test_members_missing_stopped_starting_or_leaderless():
    assert check(report(doc=cluster_doc(state3=None)), "members")["status"] == "fail"
    c = check(report(doc=cluster_doc(state3="stopped")), "members")
    assert c["status"] == "fail" and "pg-test-3 is stopped" in c["detail"]
    assert check(report(doc=cluster_doc(state3="starting")), "members")["status"] == "warn"
    c = check(report(doc=cluster_doc(leader=None)), "members")
    assert c["status"] == "fail" and "no leader" in c["detail"]


def test_patroni_not_answering_fails_members_and_lag_and_the_primary_comes_from_facts():
    rep = report(doc=None, errors=["10.10.10.11:8008: refused", "10.10.10.12:8008: refused"])
    assert check(rep, "members")["status"] == "fail" and "refused" in check(rep, "members")["detail"]
    assert check(rep, "lag")["status"] == "fail"
    assert rep["primary"] == "pg-test-1" and check(rep, "archive")["status"] == "ok"
    assert [m["state"] for m in rep["members"]] == ["absent"] * 3


def test_a_member_that_does_not_answer_is_a_failed_check_not_a_crash():
    rep = report(fcts=facts(**{"node-3": None}))
    c = check(rep, "nodes")
    assert c["status"] == "fail" and "pg-test-3 (node-3): no answer" in c["detail"]
    assert check(rep, "disk")["status"] == "fail" and "pg-test-3: unknown" in check(rep, "disk")["detail"]
    assert check(rep, "xid_age")["status"] == "ok"          # the others answered
    rep = report(fcts=facts(**{"node-2": "ERROR: 'pigsty_patrol.facts' is not available."}))
    assert "is not available" in check(rep, "nodes")["detail"]
    pg_down = dict(node(False), pg_error="pigsty_pg: cannot connect to PostgreSQL")
    c = check(report(fcts=facts(**{"node-2": pg_down})), "nodes")
    assert c["status"] == "fail" and "cannot connect" in c["detail"]


def test_the_primary_not_answering_fails_archive_and_bloat():
    rep = report(fcts=facts(**{"node-1": None}))
    for name in ("archive", "bloat"):
        c = check(rep, name)
        assert c["status"] == "fail" and "pg-test-1 did not answer" in c["detail"]
    assert P.table(rep)                                    # still printable


def test_no_member_answering_at_all():
    rep = report(doc=None, fcts={})
    assert rep["status"] == "fail" and rep["primary"] is None
    assert check(rep, "xid_age")["value"] == "unknown"
    assert "(none)" in check(rep, "archive")["detail"]


def test_backup_age_against_the_schedule_s_longest_gap():
    """The PostgresBackupTooOld alert's limit (pigsty_backup_metrics.max_age_seconds) warns;
    one more whole gap of the schedule fails."""
    for age, status in ((2, "ok"), (25, "ok"), (25.5, "warn"), (49.5, "fail")):
        c = check(report(bk=backups(age_hours=age)), "backup")
        assert c["status"] == status, (age, c)
        assert c["threshold"] == "warn > 25.0 h, fail > 49.0 h (schedule every 24.0 h at most)"
    c = check(report(bk=backups(count=0)), "backup")
    assert (c["status"], c["value"]) == ("fail", "no backup yet")
    c = check(report(bk="ERROR: pgbackrest info failed: stanza missing"), "backup")
    assert c["status"] == "fail" and "stanza missing" in c["detail"]
    c = check(report(bk=None), "backup")
    assert c["status"] == "fail" and c["value"] == "repository did not answer"


def test_backups_disabled_warn_and_a_cluster_without_schedule_only_needs_one():
    c = check(report(conf={"pgbackrest_enabled": False, "pgbackrest_schedule": []}), "backup")
    assert c["status"] == "warn" and "pgbackrest_enabled: false" in c["detail"]
    conf = {"pgbackrest_enabled": True, "pgbackrest_schedule": []}
    assert check(report(conf=conf, bk=backups(age_hours=500)), "backup")["status"] == "ok"
    assert check(report(conf=conf, bk=backups(count=0)), "backup")["status"] == "warn"


def _archiver(ok_ago, bad_ago, failed=3):
    return {"archived_count": 10, "last_archived_wal": "0000000300000000000000A0",
            "last_archived_time": NOW - ok_ago if ok_ago is not None else None,
            "failed_count": failed, "last_failed_wal": "0000000300000000000000A1",
            "last_failed_time": NOW - bad_ago if bad_ago is not None else None, "stats_reset": None}


def test_archive_failing_now_recently_backlog_or_off():
    c = check(report(fcts=facts(**{"node-1": node(True, archiver=_archiver(600, 30))})), "archive")
    assert c["status"] == "fail" and c["value"].startswith("failing since")
    assert "0000000300000000000000A1" in c["detail"] and "pg-test-1" in c["detail"]
    c = check(report(fcts=facts(**{"node-1": node(True, archiver=_archiver(None, 30))})), "archive")
    assert c["status"] == "fail"
    c = check(report(fcts=facts(**{"node-1": node(True, archiver=_archiver(30, 600))})), "archive")
    assert c["status"] == "warn" and "works again" in c["value"]
    c = check(report(fcts=facts(**{"node-1": node(True, archiver=_archiver(30, 25 * HOUR))})), "archive")
    assert c["status"] == "ok"
    assert check(report(fcts=facts(**{"node-1": node(True, ready=65)})), "archive")["status"] == "warn"
    off = dict(node(True), archive_mode="off")
    assert check(report(fcts=facts(**{"node-1": off})), "archive")["status"] == "fail"
    c = check(report(fcts=facts(**{"node-1": off}), conf={"pgbackrest_enabled": False,
                                                           "pgbackrest_schedule": []}), "archive")
    assert c["status"] == "ok" and c["value"] == "off"


@pytest.mark.parametrize("age, status", [(499999999, "ok"), (500000000, "warn"), (1000000000, "fail")])
def test_xid_age_is_the_maximum_over_members_and_databases(age, status):
    c = check(report(fcts=facts(**{"node-3": node(False, xid=age)})), "xid_age")
    assert (c["status"], c["value"]) == (status, str(age))
    assert c["detail"] == "database postgres on pg-test-3" and c["threshold"] == "warn >= 500 M, fail >= 1000 M"


@pytest.mark.parametrize("pct, status", [(79.9, "ok"), (80, "warn"), (90, "fail")])
def test_disk_of_the_data_directory(pct, status):
    c = check(report(fcts=facts(**{"node-2": node(False, pct=pct)})), "disk")
    assert c["status"] == status and "pg-test-2: %.0f%% of 10.0 GiB" % pct in c["detail"]


def _dead(table, live, dead, datname="meta"):
    return {"datname": datname, "table": table, "live": live, "dead": dead,
            "last_vacuum": None, "bytes": 8192.0}


def test_bloat_ranks_dead_tuples_and_ignores_small_tables():
    small = [_dead("public.tiny", 10, 9000)]                   # 90 % but under dead_min
    assert check(report(fcts=facts(**{"node-1": node(True, dead=small)})), "bloat")["status"] == "ok"
    rows = [_dead("public.a", 100000, 30000), _dead("public.b", 10000, 60000, "app")]
    rep = report(fcts=facts(**{"node-1": node(True, dead=rows)}))
    c = check(rep, "bloat")
    assert c["status"] == "fail" and c["value"] == "app.public.b: 60000 dead (86%)"
    assert [r["table"] for r in rep["dead_tuples"]] == ["public.b", "public.a"]
    rows = [_dead("public.a", 100000, 30000)]
    assert check(report(fcts=facts(**{"node-1": node(True, dead=rows)})), "bloat")["status"] == "warn"
    c = check(report(), "bloat")
    assert (c["status"], c["value"]) == ("ok", "no dead tuples")


def test_alerts_of_the_cluster_only_by_severity():
    rep = report(alerts=ALERTS)
    c = check(rep, "alerts")
    assert c["status"] == "fail" and c["value"] == "2 firing"     # not pg-meta's, not suppressed
    assert c["detail"] == "PgbouncerDown(pg-test-3), PostgresRestart(pg-test-1)"
    assert check(report(alerts=ALERTS[2:3]), "alerts")["status"] == "ok"     # INFO: listed only
    warn = copy.deepcopy(ALERTS[1])
    warn["labels"]["cls"] = "pg-test"
    assert check(report(alerts=[warn]), "alerts")["status"] == "warn"
    c = check(report(alerts=None), "alerts")
    assert c["status"] == "fail" and c["value"].startswith("unknown")
    c = check(P.evaluate("pg-test", MEMBERS, CONF, cluster_doc(), [], facts(), backups(),
                         "Alertmanager 127.0.0.1:9093: [Errno 111] Connection refused", NOW), "alerts")
    assert c["status"] == "fail" and "Connection refused" in c["detail"]


def test_the_table_names_each_check_member_alert_and_table():
    rows = [_dead("public.b", 10000, 60000, "app")]
    rep = report(doc=cluster_doc(state3="stopped"), alerts=ALERTS,
                 fcts=facts(**{"node-1": node(True, dead=rows, archiver=_archiver(600, 30))}))
    text = P.table(rep, "/var/lib/pigsty/patrol/pg-test/2026-12-03.json")
    lines = text.splitlines()
    assert lines[0] == ("patrol of pg-test at 2026-12-03 02:00:00 UTC: FAIL (4 fail, 0 warn, 5 ok) "
                        "[/var/lib/pigsty/patrol/pg-test/2026-12-03.json]")
    assert lines[1].split() == ["check", "status", "value", "threshold"]
    archive = next(line for line in lines if line.startswith("archive "))
    assert "FAIL" in archive and "failing since 2026-12-03 01:59:30 UTC" in archive
    assert any(line.split()[:4] == ["pg-test-3", "node-3", "replica", "stopped"] for line in lines)
    assert "  CRIT PgbouncerDown on pg-test-3 since 2026-12-03T01:50:00Z: Pgbouncer pg-test-3 is down" in lines
    assert any(line.split()[:3] == ["app", "public.b", "60000"] for line in lines)


def test_summary_line_per_cluster():
    rep = report(doc=cluster_doc(state3="stopped", lag3="unknown"))
    assert P.summary_line("pg-test", rep, NOW + 3 * HOUR) == (
        "pg-test: FAIL at 2026-12-03 02:00:00 UTC (3.0 h ago): members fail, lag fail")
    assert P.summary_line("pg-meta", None, NOW) == "pg-meta: no report yet"
    assert P.summary_line("pg-test", report(), NOW) == "pg-test: OK at 2026-12-03 02:00:00 UTC (0.0 h ago)"


def test_thresholds_are_the_defaults_and_overrides_are_checked():
    assert P.thresholds()["lag_warn_bytes"] == 16 << 20 and "dir" not in P.thresholds()
    assert check(report(doc=cluster_doc(lag3=2 << 20), over={"lag_warn_bytes": 1 << 20}),
                 "lag")["status"] == "warn"
    with pytest.raises(P.PatrolError, match=r"^thresholds:lag_warn: unknown threshold"):
        P.thresholds({"lag_warn": 1})
    for bad in (-1, "10", True, None):
        with pytest.raises(P.PatrolError, match=r"^thresholds:disk_warn_pct: expected a non-negative number"):
            P.thresholds({"disk_warn_pct": bad})
