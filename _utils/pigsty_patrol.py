"""The daily patrol report of a cluster: the pure part.

What each node answers (``pigsty_patrol.facts``: SQL below, the data directory's
filesystem), what Patroni's /cluster, the repository's ``pgbackrest info`` and Alertmanager
say, turned into checks (ok / warn / fail, each with the threshold it used), and the
readable table of ``salt-run pigsty.patrol``. No Salt imports: the collection is
_utils/pigsty_patrol_collect.py, the files on meta _utils/pigsty_patrol_store.py.

Bloat: a cheap estimate, the tables with the most dead tuples (pg_stat_user_tables on the
primary: replicas keep no such statistics), not a page-level estimate; the exporter's
planner-based estimate (pg_table_bloat_*) raises PostgresTableBloat, which shows among the
firing alerts.
"""
import datetime

import pigsty_backup_metrics
import pigsty_defaults as D
import pigsty_patroni

STATUSES = ("ok", "warn", "fail")
CHECKS = ("members", "lag", "nodes", "backup", "archive", "xid_age", "disk", "bloat", "alerts")
THRESHOLD_KEYS = tuple(k for k in D.PATROL if k not in ("dir", "retention_days", "hour",
                                                         "node_timeout", "log_max_bytes"))
OK_STATES = ("running", "streaming")
TRANSIENT_STATES = ("starting", "restarting", "creating replica", "in archive recovery")
SEVERITY = {"CRIT": "fail", "WARN": "warn"}     # the rules' severities (INFO: listed, ok)

# ------------------------------------------------------------------ SQL of a node's facts
# Every value is cast to a type that Salt's return serialises (int, float, text). Only
# DEAD_SQL takes a parameter (psycopg2 reads '%' as a placeholder there alone).
NODE_SQL = """
SELECT pg_is_in_recovery(), current_setting('data_directory'), current_setting('archive_mode'),
       (SELECT coalesce(sum(pg_database_size(oid)), 0)::float8 FROM pg_database),
       (SELECT coalesce(sum(size), 0)::float8 FROM pg_ls_waldir()),
       (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready')::int
"""
ARCHIVER_SQL = """
SELECT archived_count, last_archived_wal, extract(epoch FROM last_archived_time)::float8,
       failed_count, last_failed_wal, extract(epoch FROM last_failed_time)::float8,
       extract(epoch FROM stats_reset)::float8
  FROM pg_stat_archiver
"""
ARCHIVER_KEYS = ("archived_count", "last_archived_wal", "last_archived_time", "failed_count",
                 "last_failed_wal", "last_failed_time", "stats_reset")
XID_SQL = """
SELECT datname::text, age(datfrozenxid)::int8, datallowconn AND NOT datistemplate
  FROM pg_database ORDER BY 2 DESC, 1
"""
DEAD_SQL = """
SELECT current_database()::text, (schemaname || '.' || relname)::text, n_live_tup::int8,
       n_dead_tup::int8, extract(epoch FROM greatest(last_vacuum, last_autovacuum))::float8,
       pg_total_relation_size(relid)::float8
  FROM pg_stat_user_tables WHERE n_dead_tup > 0
 ORDER BY n_dead_tup DESC, 2 LIMIT %s
"""
DEAD_KEYS = ("datname", "table", "live", "dead", "last_vacuum", "bytes")


class PatrolError(ValueError):
    """Bad input to a patrol command, with the field named."""


def thresholds(overrides=None):
    """The checks' thresholds: pigsty_defaults.PATROL, ``overrides`` (a mapping) over them;
    PatrolError naming an unknown key or a value that is not a non-negative number."""
    out = {k: D.PATROL[k] for k in THRESHOLD_KEYS}
    for key, value in (overrides or {}).items():
        if key not in out:
            raise PatrolError("thresholds:%s: unknown threshold (expected one of: %s)" % (
                key, ", ".join(THRESHOLD_KEYS)))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PatrolError("thresholds:%s: expected a non-negative number, got %r" % (
                key, value))
        out[key] = value
    return out


# ------------------------------------------------------------------ formatting helpers
def size(n):
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return str(n)


def utc(epoch):
    if epoch is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def hours(seconds):
    return "%.1f h" % (seconds / 3600.0)


def _check(name, status, value, threshold, detail=""):
    assert status in STATUSES
    return {"check": name, "status": status, "value": value, "threshold": threshold,
            "detail": detail}


def worst(statuses):
    statuses = list(statuses)
    for s in ("fail", "warn"):
        if s in statuses:
            return s
    return "ok"


# ------------------------------------------------------------------ the checks
def check_members(members, doc, errors):
    """Every inventory member is in Patroni's /cluster, running or streaming, one leader."""
    threshold = "fail: a member absent or not %s, or no leader; warn: a member %s" % (
        "/".join(OK_STATES), "/".join(TRANSIENT_STATES))
    if doc is None:
        return _check("members", "fail", "Patroni did not answer", threshold,
                      "; ".join(errors[-3:]))
    live = {m["name"]: m for m in pigsty_patroni.members(doc)}
    leader = pigsty_patroni.leader(doc)
    problems, status = [], "ok"
    for m in members:
        got = live.get(m["pg_instance"])
        if got is None:
            problems.append("%s is not in the cluster" % m["pg_instance"])
            status = "fail"
        elif got["state"] not in OK_STATES:
            problems.append("%s is %s" % (m["pg_instance"], got["state"]))
            status = worst([status, "warn" if got["state"] in TRANSIENT_STATES else "fail"])
    if leader is None:
        problems.append("no leader")
        status = "fail"
    running = sum(1 for m in members if (live.get(m["pg_instance"]) or {}).get("state") in OK_STATES)
    value = "%d/%d running, leader %s" % (running, len(members), leader["name"] if leader else "none")
    return _check("members", status, value, threshold, "; ".join(problems))


def check_lag(doc, t):
    """Each replica's lag (bytes behind the leader, Patroni's /cluster)."""
    threshold = "warn > %s, fail > %s or not streaming" % (size(t["lag_warn_bytes"]),
                                                           size(t["lag_fail_bytes"]))
    if doc is None:
        return _check("lag", "fail", "unknown (Patroni did not answer)", threshold)
    replicas = [m for m in pigsty_patroni.members(doc)
                if m["role"] not in ("primary", "standby_leader")]
    if not replicas:
        return _check("lag", "ok", "no replica", threshold)
    status, parts, most, unknown = "ok", [], 0, 0
    for m in replicas:
        lag = m["lag"]
        if not isinstance(lag, int) or isinstance(lag, bool):
            status, unknown = "fail", unknown + 1
            parts.append("%s: %s" % (m["name"], lag if lag not in (None, "") else "unknown"))
            continue
        most = max(most, lag)
        if lag > t["lag_fail_bytes"]:
            status = "fail"
        elif lag > t["lag_warn_bytes"]:
            status = worst([status, "warn"])
        parts.append("%s: %s" % (m["name"], size(lag)))
    value = "max %s" % size(most) + (", %d not streaming" % unknown if unknown else "")
    return _check("lag", status, value, threshold, ", ".join(parts))


def check_nodes(members, facts):
    """Every member's minion answered pigsty_patrol.facts, with its PostgreSQL's facts."""
    missing = []
    for m in members:
        f = facts.get(m["minion"])
        if not isinstance(f, dict):
            missing.append("%s (%s): %s" % (m["pg_instance"], m["minion"], _short(f)))
        elif f.get("pg_error"):
            missing.append("%s (%s): PostgreSQL: %s" % (m["pg_instance"], m["minion"],
                                                        f["pg_error"]))
    return _check("nodes", "fail" if missing else "ok",
                  "%d/%d answered" % (len(members) - len(missing), len(members)),
                  "fail: a member's minion or PostgreSQL does not answer pigsty_patrol.facts",
                  "; ".join(missing))


def _short(answer):
    if answer is None:
        return "no answer"
    text = str(answer).strip().splitlines()
    return (text[-1] if text else "empty answer")[:300]


def check_backup(enabled, schedule, backups, now, t):
    """The newest backup's age against the schedule (``backups``: parse_info's summary, or
    the repository's error as text)."""
    if not enabled:
        return _check("backup", "warn", "no backups", "pgbackrest_enabled: true",
                      "pgbackrest_enabled: false: no archive, no backup of this cluster")
    # the PostgresBackupTooOld alert's limit (pigsty_backup_metrics): warn past it, fail when
    # one more whole gap of the schedule has gone by without a backup
    gap = pigsty_backup_metrics.schedule_gap_seconds(schedule or [])
    allowed = pigsty_backup_metrics.max_age_seconds(
        schedule or [], pigsty_backup_metrics.longest_backup(backups) if isinstance(backups, dict) else 0)
    if gap is None:
        threshold = "warn: no backup (no pgbackrest_schedule)"
    else:
        threshold = "warn > %s, fail > %s (schedule every %s at most)" % (
            hours(allowed), hours(allowed + gap), hours(gap))
    if not isinstance(backups, dict):
        return _check("backup", "fail", "repository did not answer", threshold, _short(backups))
    done = [b for b in backups.get("backups") or [] if not b.get("error")]
    if not done:
        return _check("backup", "fail" if gap is not None else "warn", "no backup yet", threshold)
    newest = done[-1]
    age = now - newest["stop"]
    status = "ok"
    if gap is not None and age > allowed + gap:
        status = "fail"
    elif gap is not None and age > allowed:
        status = "warn"
    return _check("backup", status, "%s old" % hours(age), threshold,
                  "newest %s (%s) ended %s; %d backups, %s in the repository" % (
                      newest["label"], newest["type"], utc(newest["stop"]), len(done),
                      size(backups.get("repo_size"))))


def primary_of(members, doc, facts):
    """The member that is the primary: Patroni's leader, else the one whose Postgres is not
    in recovery (facts), else None."""
    leader = pigsty_patroni.leader(doc) if doc else None
    by_name = {m["pg_instance"]: m for m in members}
    if leader and leader["name"] in by_name:
        return by_name[leader["name"]]
    for m in members:
        f = facts.get(m["minion"])
        if isinstance(f, dict) and f.get("in_recovery") is False:
            return m
    return None


def check_archive(enabled, primary, facts, now, t):
    """The primary's pg_stat_archiver: failing now, failed recently, or a backlog."""
    threshold = "fail: the last failure is newer than the last success; warn: a failure in " \
                "the last %d h or more than %d segments waiting" % (
                    t["archive_recent_hours"], t["archive_ready_warn"])
    f = facts.get(primary["minion"]) if primary else None
    if not isinstance(f, dict):
        return _check("archive", "fail", "unknown", threshold, "the primary %s did not answer" % (
            primary["pg_instance"] if primary else "(none)"))
    a = f.get("archiver") or {}
    where = primary["pg_instance"]
    if f.get("archive_mode") not in ("on", "always"):
        if enabled:
            return _check("archive", "fail", "archive_mode %s" % f.get("archive_mode"), threshold,
                          "%s does not archive although pgbackrest_enabled is true (restart "
                          "pending?)" % where)
        return _check("archive", "ok", "off", threshold, "pgbackrest_enabled: false")
    last_ok, last_bad = a.get("last_archived_time"), a.get("last_failed_time")
    ready = f.get("archive_ready") or 0
    detail = "%s: %s archived, last %s at %s; %s failed%s; %d waiting" % (
        where, a.get("archived_count"), a.get("last_archived_wal") or "-", utc(last_ok),
        a.get("failed_count"), ", last %s at %s" % (a.get("last_failed_wal"), utc(last_bad))
        if last_bad else "", ready)
    if last_bad is not None and (last_ok is None or last_bad > last_ok):
        return _check("archive", "fail", "failing since %s" % utc(last_bad), threshold, detail)
    if last_bad is not None and now - last_bad < t["archive_recent_hours"] * 3600:
        return _check("archive", "warn", "failed %s ago, works again" % hours(now - last_bad),
                      threshold, detail)
    if ready > t["archive_ready_warn"]:
        return _check("archive", "warn", "%d segments waiting" % ready, threshold, detail)
    return _check("archive", "ok", "working", threshold, detail)


def check_xid(members, facts, t):
    """The oldest unfrozen XID of any database (age(datfrozenxid)), on every member."""
    threshold = "warn >= %d M, fail >= %d M" % (t["xid_warn"] // 10 ** 6, t["xid_fail"] // 10 ** 6)
    best = None
    for m in members:
        f = facts.get(m["minion"])
        for row in (f.get("xid") or []) if isinstance(f, dict) else []:
            if best is None or row["age"] > best[0]:
                best = (row["age"], row["datname"], m["pg_instance"])
    if best is None:
        return _check("xid_age", "fail", "unknown", threshold, "no member answered")
    age = best[0]
    status = "fail" if age >= t["xid_fail"] else "warn" if age >= t["xid_warn"] else "ok"
    return _check("xid_age", status, "%d" % age, threshold,
                  "database %s on %s" % (best[1], best[2]))


def check_disk(members, facts, t):
    """The filesystem of each member's data directory."""
    threshold = "warn >= %d%%, fail >= %d%% used" % (t["disk_warn_pct"], t["disk_fail_pct"])
    status, parts, most = "ok", [], None
    for m in members:
        f = facts.get(m["minion"])
        disk = f.get("disk") if isinstance(f, dict) else None
        if not isinstance(disk, dict):
            status = "fail"
            parts.append("%s: unknown (%s)" % (m["pg_instance"], "no answer" if not isinstance(
                f, dict) else (f.get("disk_error") or "no disk facts")))
            continue
        pct = disk["pct"]
        most = pct if most is None else max(most, pct)
        status = worst([status, "fail" if pct >= t["disk_fail_pct"] else
                        "warn" if pct >= t["disk_warn_pct"] else "ok"])
        parts.append("%s: %.0f%% of %s (data %s, WAL %s)" % (
            m["pg_instance"], pct, size(disk["total"]), size(f.get("data_bytes")),
            size(f.get("wal_bytes"))))
    return _check("disk", status, "max %.0f%%" % most if most is not None else "unknown",
                  threshold, "; ".join(parts))


def top_dead(primary, facts, t):
    f = facts.get(primary["minion"]) if primary else None
    rows = (f.get("dead") or []) if isinstance(f, dict) else []
    rows = sorted(rows, key=lambda r: (-r["dead"], r["datname"], r["table"]))
    return rows[:int(t["top_tables"])]


def dead_ratio(row):
    total = (row["live"] or 0) + (row["dead"] or 0)
    return row["dead"] / float(total) if total else 0.0


def check_bloat(primary, facts, t):
    """The primary's tables with the most dead tuples (a cheap bloat estimate)."""
    threshold = "tables with >= %d dead tuples: warn > %d%% dead, fail > %d%% dead" % (
        t["dead_min"], t["dead_warn_ratio"] * 100, t["dead_fail_ratio"] * 100)
    f = facts.get(primary["minion"]) if primary else None
    if not isinstance(f, dict):
        return _check("bloat", "fail", "unknown", threshold, "the primary %s did not answer" % (
            primary["pg_instance"] if primary else "(none)"))
    rows = top_dead(primary, facts, t)
    if not rows:
        return _check("bloat", "ok", "no dead tuples", threshold, "; ".join(f.get("errors") or []))
    status = "ok"
    for r in rows:
        if r["dead"] >= t["dead_min"]:
            ratio = dead_ratio(r)
            status = worst([status, "fail" if ratio > t["dead_fail_ratio"] else
                            "warn" if ratio > t["dead_warn_ratio"] else "ok"])
    top = rows[0]
    return _check("bloat", status, "%s.%s: %d dead (%.0f%%)" % (
        top["datname"], top["table"], top["dead"], dead_ratio(top) * 100), threshold,
        "; ".join(f.get("errors") or []))


def cluster_alerts(alerts, cluster):
    """Alertmanager's alerts (GET /api/v2/alerts) of the cluster (label cls), firing only."""
    out = []
    for a in alerts or []:
        labels = a.get("labels") or {}
        state = (a.get("status") or {}).get("state", "active")
        if labels.get("cls") != cluster or state != "active":
            continue
        out.append({"alertname": labels.get("alertname"), "severity": labels.get("severity"),
                    "ins": labels.get("ins"), "since": a.get("startsAt"),
                    "summary": (a.get("annotations") or {}).get("summary")})
    return sorted(out, key=lambda x: (x["alertname"] or "", x["ins"] or ""))


def check_alerts(alerts, cluster):
    """Alerts firing for the cluster: CRIT fails, WARN warns, INFO is listed."""
    threshold = "fail: a CRIT alert fires; warn: a WARN alert fires"
    if not isinstance(alerts, list):
        return _check("alerts", "fail", "unknown (Alertmanager did not answer)", threshold,
                      _short(alerts))
    mine = cluster_alerts(alerts, cluster)
    status = worst(SEVERITY.get(a["severity"], "ok") for a in mine)
    return _check("alerts", status, "%d firing" % len(mine), threshold,
                  ", ".join("%s(%s)" % (a["alertname"], a["ins"] or "-") for a in mine))


# ------------------------------------------------------------------ the report
def evaluate(cluster, members, conf, doc, patroni_errors, facts, backups, alerts, now,
             overrides=None):
    """The report of ``cluster``: ``members`` (the inventory's), ``conf`` (the cluster's
    pgbackrest_enabled, pgbackrest_schedule), Patroni's /cluster document (None when no
    member answered; ``patroni_errors``), ``facts`` (minion -> pigsty_patrol.facts, or the
    error), ``backups`` (the stanza's parse_info, or the error), ``alerts`` (Alertmanager's
    list, or the error), ``now`` (epoch)."""
    t = thresholds(overrides)
    enabled = bool(conf.get("pgbackrest_enabled"))
    primary = primary_of(members, doc, facts)
    checks = [
        check_members(members, doc, patroni_errors),
        check_lag(doc, t),
        check_nodes(members, facts),
        check_backup(enabled, conf.get("pgbackrest_schedule"), backups if enabled else None,
                     now, t),
        check_archive(enabled, primary, facts, now, t),
        check_xid(members, facts, t),
        check_disk(members, facts, t),
        check_bloat(primary, facts, t),
        check_alerts(alerts, cluster),
    ]
    live = {m["name"]: m for m in pigsty_patroni.members(doc)} if doc else {}
    rows = []
    for m in members:
        got = live.get(m["pg_instance"]) or {}
        f = facts.get(m["minion"])
        f = f if isinstance(f, dict) else {}
        rows.append({"instance": m["pg_instance"], "minion": m["minion"], "ip": m["ip"],
                     "role": got.get("role") or "?", "state": got.get("state") or "absent",
                     "lag": got.get("lag") if got else None, "timeline": got.get("timeline"),
                     "disk_pct": (f.get("disk") or {}).get("pct"),
                     "xid_age": max((r["age"] for r in f.get("xid") or []), default=None)})
    counts = {s: sum(1 for c in checks if c["status"] == s) for s in STATUSES}
    return {
        "version": 1, "cluster": cluster, "time": now, "date": date_of(now),
        "status": worst(c["status"] for c in checks), "counts": counts,
        "primary": primary["pg_instance"] if primary else None,
        "checks": checks, "members": rows,
        "alerts": cluster_alerts(alerts, cluster) if isinstance(alerts, list) else [],
        "dead_tuples": top_dead(primary, facts, t),
        "thresholds": t,
    }


def date_of(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d")


# ------------------------------------------------------------------ the table
def _table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def headline(report):
    c = report["counts"]
    return "patrol of %s at %s: %s (%d fail, %d warn, %d ok)" % (
        report["cluster"], utc(report["time"]), report["status"].upper(), c["fail"], c["warn"],
        c["ok"])


def table(report, path=None):
    """The report as the operator reads it: the checks, then the members, the firing
    alerts and the tables with the most dead tuples."""
    lines = [headline(report) + (" [%s]" % path if path else "")]
    rows = [("check", "status", "value", "threshold")]
    rows += [(c["check"], c["status"].upper() if c["status"] != "ok" else "ok", c["value"],
              c["threshold"]) for c in report["checks"]]
    lines += _table(rows)
    details = [c for c in report["checks"] if c["detail"]]
    if details:
        lines.append("")
        lines += ["%-8s %s" % (c["check"] + ":", c["detail"]) for c in details]
    lines.append("")
    rows = [("member", "node", "role", "state", "lag", "timeline", "disk", "xid age")]
    for m in report["members"]:
        lag = m["lag"]
        rows.append((m["instance"], m["minion"], m["role"], m["state"],
                     size(lag) if isinstance(lag, int) and not isinstance(lag, bool) else (lag or "-"),
                     m["timeline"] if m["timeline"] is not None else "-",
                     "%.0f%%" % m["disk_pct"] if m["disk_pct"] is not None else "-",
                     m["xid_age"] if m["xid_age"] is not None else "-"))
    lines += _table(rows)
    if report["alerts"]:
        lines.append("")
        lines.append("firing alerts:")
        lines += ["  %s %s on %s since %s: %s" % (a["severity"] or "?", a["alertname"],
                                                   a["ins"] or "-", a["since"] or "?",
                                                   a["summary"] or "")
                  for a in report["alerts"]]
    if report["dead_tuples"]:
        lines.append("")
        rows = [("database", "table (most dead tuples)", "dead", "live", "dead %", "size",
                 "last vacuum")]
        rows += [(r["datname"], r["table"], r["dead"], r["live"], "%.0f%%" % (dead_ratio(r) * 100),
                  size(r["bytes"]), utc(r["last_vacuum"])) for r in report["dead_tuples"]]
        lines += _table(rows)
    return "\n".join(lines)


def summary_line(cluster, report, now):
    """One line per cluster (``salt-run pigsty.patrol`` without a cluster)."""
    if report is None:
        return "%s: no report yet" % cluster
    bad = ["%s %s" % (c["check"], c["status"]) for c in report["checks"] if c["status"] != "ok"]
    return "%s: %s at %s (%s ago)%s" % (
        cluster, report["status"].upper(), utc(report["time"]), hours(now - report["time"]),
        ": " + ", ".join(bad) if bad else "")
