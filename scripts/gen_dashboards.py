#!/usr/bin/env python3
"""Generate Pigsty's Grafana dashboards (salt/infra/files/dashboards/*.json) with grafanalib.
The JSON files are committed; tests/unit/test_dashboards.py checks that they are what this
script writes, so edit the specs here and rerun:

    /opt/pigsty/venv/bin/python scripts/gen_dashboards.py

The structure is Pigsty's: a home page, PGSQL overview / cluster / instance, service (HAProxy),
pgbouncer, replication, database, tables, queries, persistence, activity, backup, Patroni, alerts,
NODE overview / instance, INFRA Prometheus / Alertmanager / etcd. They share the variables
``cls`` (cluster) and ``ins`` (instance): the dashboard links keep them, and graphs link each
series to the dashboard of its cluster or instance.

Every expression uses only metrics the deployed exporters export (node_exporter 1.5,
postgres_exporter 0.11 with salt/pgsql/files/pg_exporter_queries.yml, the role's pgbouncer
exporter, HAProxy 2.6, Patroni 3.0.2, etcd 3.4, Prometheus, Alertmanager) and the target
labels cls, ins, ip, job, role (_utils/pigsty_monitor.py).
"""
import json
import os
import sys

from grafanalib import core as G
from grafanalib._gen import DashboardEncoder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "salt", "infra", "files", "dashboards")
DS = {"type": "prometheus", "uid": "prometheus"}
RI = "$__rate_interval"
C = 'cls="$cls"'
I = 'ins="$ins"'
D = 'ins="$ins",datname=~"$datname"'
PRIMARY = 'role="primary"'


# ------------------------------------------------------------------ links between dashboards
def url(uid, *variables):
    """A data link to dashboard ``uid`` with each variable taken from the series' labels."""
    params = "".join("&var-%s=${__field.labels.%s}" % (v, v) for v in variables)
    return "/d/%s?${__url_time_range}%s" % (uid, params)


TO_CLUSTER = [{"title": "PGSQL Cluster ${__field.labels.cls}", "url": url("pgsql-cluster", "cls")}]
TO_INSTANCE = [{"title": "PGSQL Instance ${__field.labels.ins}",
                "url": url("pgsql-instance", "cls", "ins")}]
TO_NODE = [{"title": "NODE Instance ${__field.labels.ins}", "url": url("node-instance", "cls", "ins")}]
TO_BACKUP = [{"title": "PGSQL Backup ${__field.labels.cls}", "url": url("pgsql-backup", "cls")}]
TO_DATABASE = [{"title": "PGSQL Database ${__field.labels.datname}",
                "url": url("pgsql-database", "cls", "ins", "datname")}]


# ------------------------------------------------------------------ panels
class Panel:
    """A panel spec: kind (timeseries, stat, table), title, [(expr, legend)], unit, size."""

    def __init__(self, kind, title, exprs, unit="short", w=12, h=8, legend="{{ins}}",
                 links=None, description="", stack=False, instant=False):
        self.kind, self.title, self.unit, self.w, self.h = kind, title, unit, w, h
        self.exprs = [e if isinstance(e, tuple) else (e, legend) for e in exprs]
        self.links, self.description, self.stack, self.instant = links, description, stack, instant

    def build(self, pid, x, y):
        targets = [G.Target(expr=expr, legendFormat=fmt, refId=chr(ord("A") + n), datasource=DS,
                            instant=self.instant or self.kind == "table",
                            format="table" if self.kind == "table" else "time_series")
                   for n, (expr, fmt) in enumerate(self.exprs)]
        extra = {"fieldConfig": {"defaults": {"links": self.links}}} if self.links else None
        common = dict(title=self.title, dataSource=DS, targets=targets, id=pid,
                      gridPos=G.GridPos(h=self.h, w=self.w, x=x, y=y),
                      description=self.description, extraJson=extra)
        if self.kind == "stat":
            return G.Stat(format=self.unit, reduceCalc="lastNotNull", graphMode="area",
                          colorMode="value", thresholds=[{"color": "green", "value": None}],
                          **common)
        if self.kind == "table":
            # one row per series, one column per query, named by its legend
            rename = {("Value #%s" % t.refId if len(targets) > 1 else "Value"): fmt
                      for t, (_e, fmt) in zip(targets, self.exprs)}
            return G.Table(unit=self.unit, transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True,
                                                                 "job": True, "instance": True,
                                                                 "server": True},
                                               "renameByName": rename}}],
                **common)
        return G.TimeSeries(unit=self.unit, fillOpacity=10 if self.stack else 0,
                            stacking={"mode": "normal"} if self.stack else {},
                            legendDisplayMode="table", legendPlacement="right"
                            if self.w >= 16 else "bottom", tooltipMode="multi", **common)


def ts(title, exprs, unit="short", **kw):
    return Panel("timeseries", title, exprs, unit, **kw)


def stat(title, expr, unit="short", w=4, h=4, **kw):
    return Panel("stat", title, [expr], unit, w=w, h=h, **kw)


def table(title, exprs, unit="short", w=24, h=8, **kw):
    return Panel("table", title, exprs, unit, w=w, h=h, **kw)


class Row:
    def __init__(self, title):
        self.title = title


def layout(items):
    """grafanalib panels with ids and grid positions: panels fill rows of 24 columns; a Row
    starts a new line with a row header."""
    panels, x, y, row_h, pid = [], 0, 0, 0, 1
    for item in items:
        if isinstance(item, Row):
            y += row_h
            panels.append(G.RowPanel(title=item.title, id=pid, gridPos=G.GridPos(h=1, w=24, x=0, y=y)))
            pid, x, y, row_h = pid + 1, 0, y + 1, 0
            continue
        if x + item.w > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(item.build(pid, x, y))
        pid, x, row_h = pid + 1, x + item.w, max(row_h, item.h)
    return panels


# ------------------------------------------------------------------ variables
def var(name, query, label=None, include_all=False, hide=0):
    q = "label_values(%s, %s)" % (query, name)
    return G.Template(name=name, label=label or name, query=q, dataSource=DS, refresh=2,
                      sort=1, includeAll=include_all, multi=False, hide=hide,
                      allValue=".*" if include_all else None)


CLS = var("cls", "pg_up", "cluster")
INS = var("ins", 'pg_up{cls="$cls"}', "instance")
DATNAME = var("datname", 'pg_stat_database_xact_commit{ins="$ins",datname!~"template.*|"}',
              "database", include_all=True)
BACKUP_CLS = var("cls", "pigsty_backup_repo_backups", "cluster")
NODE_CLS = var("cls", 'node_uname_info', "cluster")
NODE_INS = var("ins", 'node_uname_info{cls="$cls"}', "node")


def dashboard(uid, title, description, variables, items, tags=()):
    return G.Dashboard(
        uid=uid, title=title, description=description, tags=["pigsty"] + list(tags),
        editable=False, timezone="browser", refresh="30s", schemaVersion=36, version=1,
        time=G.Time("now-1h", "now"), graphTooltip=1,
        templating=G.Templating(list=variables),
        links=[G.DashboardLink(asDropdown=True, includeVars=True, keepTime=True, tags=["pigsty"],
                               title="Pigsty", type="dashboards")]
        + [G.DashboardLink(asDropdown=True, includeVars=True, keepTime=True, tags=[t],
                           title=t.upper(), type="dashboards") for t in tags],
        panels=layout(items),
    )


# ------------------------------------------------------------------ home and overviews
def home():
    return dashboard("pigsty", "Pigsty Home", "The whole deployment: clusters, instances, nodes, "
                     "alerts, infra; every other dashboard is one click away", [], [
        stat("Clusters", "count(count by (cls) (pg_up))"),
        stat("PostgreSQL up", 'sum(pg_up)'),
        stat("Nodes up", 'sum(up{job="node"})'),
        stat("Primaries (Patroni)", "sum(patroni_primary)"),
        stat("Alerts firing", 'count(ALERTS{alertstate="firing"}) or vector(0)'),
        stat("Targets down", "count(up == 0) or vector(0)"),
        table("Clusters", [("count by (cls) (pg_up)", "instances"),
                           ("sum by (cls) (pg_up)", "up")], links=TO_CLUSTER, w=12),
        table("Infra", [('up{job=~"prometheus|alertmanager|etcd"}', "{{job}}")], w=12),
        ts("Transactions per second by cluster",
           [("sum by (cls) (rate(pg_stat_database_xact_commit{%s}[%s]))" % (PRIMARY, RI), "{{cls}}")],
           "ops", links=TO_CLUSTER),
        ts("Alerts firing by severity",
           [('count by (severity) (ALERTS{alertstate="firing"}) or on() label_replace(vector(0), "severity", "none", "", "")',
             "{{severity}}")]),
    ])


def pgsql_overview():
    return dashboard("pgsql-overview", "PGSQL Overview", "Every PostgreSQL cluster side by side",
                     [], [
        stat("Instances", "count(pg_up)"),
        stat("Instances up", "sum(pg_up)"),
        stat("Replicas streaming", "sum(pg:cls:replicas_streaming)"),
        stat("Max replication lag", "max(pg_replication_lag)", "s"),
        stat("Total size", "sum(pg_database_size_bytes)", "bytes"),
        stat("Connections", "sum(pg_stat_activity_count)"),
        table("Instances", [("pg_up", "up"), ("pg_recovery_in_recovery", "in recovery"),
                            ("pg:ins:conn_usage", "conn usage")], links=TO_INSTANCE, h=10),
        ts("Commits per second by cluster",
           [("sum by (cls) (rate(pg_stat_database_xact_commit[%s]))" % RI, "{{cls}}")], "ops",
           links=TO_CLUSTER),
        ts("Connection usage by instance", ["pg:ins:conn_usage"], "percentunit", links=TO_INSTANCE),
        ts("Replication lag (s) by instance", ["pg_replication_lag"], "s", links=TO_INSTANCE),
        ts("WAL written by cluster",
           [("sum by (cls) (rate(pg_wal_bytes_total{%s}[%s]))" % (PRIMARY, RI), "{{cls}}")], "Bps",
           links=TO_CLUSTER),
        ts("Database size by cluster",
           [('sum by (cls) (pg_database_size_bytes{%s})' % PRIMARY, "{{cls}}")], "bytes",
           links=TO_CLUSTER),
        ts("Pgbouncer clients waiting", ["sum by (cls, ins) (pgbouncer_pools_cl_waiting)"],
           links=TO_INSTANCE),
    ], tags=("pgsql",))


def pgsql_cluster():
    c = C
    return dashboard("pgsql-cluster", "PGSQL Cluster", "A PostgreSQL cluster: members and live "
                     "roles, throughput, replication, size, services", [CLS], [
        stat("Instances up", "sum(pg_up{%s})" % c),
        stat("Primary (Patroni)", "sum(patroni_primary{%s})" % c),
        stat("Replicas (Patroni)", "sum(patroni_replica{%s})" % c),
        stat("Timeline", "max(patroni_postgres_timeline{%s})" % c),
        stat("Max lag", "max(pg_replication_lag{%s})" % c, "s"),
        stat("Size", "sum(pg_database_size_bytes{%s,%s})" % (c, PRIMARY), "bytes"),
        table("Members (live role: Patroni)", [
            ("patroni_primary{%s}" % c, "primary"), ("pg_up{%s}" % c, "up"),
            ("pg_recovery_in_recovery{%s}" % c, "in recovery"),
            ("pg_replication_lag{%s}" % c, "lag"), ("pg:ins:conn_usage{%s}" % c, "conn usage")],
              links=TO_INSTANCE),
        ts("Commits per second", [
            "sum by (ins) (rate(pg_stat_database_xact_commit{%s}[%s]))" % (c, RI)], "ops",
           links=TO_INSTANCE),
        ts("Connections", ["sum by (ins) (pg_stat_activity_count{%s})" % c], links=TO_INSTANCE),
        ts("Replication lag (bytes, seen by the primary)", [
            ("pg_stat_replication_pg_wal_lsn_diff{%s}" % c, "{{application_name}}")], "bytes"),
        ts("Replication lag (seconds, on the replicas)", ["pg_replication_lag{%s}" % c], "s"),
        ts("WAL written", ["rate(pg_wal_bytes_total{%s}[%s])" % (c, RI)], "Bps"),
        ts("Database size", ["sum by (ins) (pg_database_size_bytes{%s})" % c], "bytes"),
        ts("Pgbouncer active clients", ["sum by (ins) (pgbouncer_pools_cl_active{%s})" % c]),
        ts("Transactions through Pgbouncer", [
            "sum by (ins) (rate(pgbouncer_stats_total_xact_count{%s}[%s]))" % (c, RI)], "ops"),
        ts("Node CPU usage", ["node:ins:cpu_usage{%s}" % c], "percentunit", links=TO_NODE),
        ts("Node memory usage", ["node:ins:mem_usage{%s}" % c], "percentunit", links=TO_NODE),
        ts("Newest backup age", [
            ("time() - pigsty_backup_newest_time_seconds{%s}" % c, "age"),
            ("pigsty_backup_max_age_seconds{%s}" % c, "allowed")], "s", links=TO_BACKUP),
    ], tags=("pgsql",))


def pgsql_instance():
    i = I
    return dashboard("pgsql-instance", "PGSQL Instance", "One PostgreSQL instance: connections, "
                     "throughput, tuples, cache, WAL, locks, transactions, Pgbouncer",
                     [CLS, INS], [
        stat("PostgreSQL up", "pg_up{%s}" % i),
        stat("In recovery", "pg_recovery_in_recovery{%s}" % i),
        stat("Uptime", "time() - pg_postmaster_start_time_seconds{%s}" % i, "s"),
        stat("Connection usage", "pg:ins:conn_usage{%s}" % i, "percentunit"),
        stat("max_connections", "pg_settings_max_connections{%s}" % i),
        stat("Oldest transaction", "pg_xact_oldest_age_seconds{%s}" % i, "s"),
        Row("Activity"),
        ts("Connections by state", [("sum by (state) (pg_stat_activity_count{%s})" % i, "{{state}}")],
           stack=True),
        ts("Commits and rollbacks per second", [
            ("sum(rate(pg_stat_database_xact_commit{%s}[%s]))" % (i, RI), "commit"),
            ("sum(rate(pg_stat_database_xact_rollback{%s}[%s]))" % (i, RI), "rollback")], "ops"),
        ts("Tuples per second", [
            ("sum(rate(pg_stat_database_tup_fetched{%s}[%s]))" % (i, RI), "fetched"),
            ("sum(rate(pg_stat_database_tup_inserted{%s}[%s]))" % (i, RI), "inserted"),
            ("sum(rate(pg_stat_database_tup_updated{%s}[%s]))" % (i, RI), "updated"),
            ("sum(rate(pg_stat_database_tup_deleted{%s}[%s]))" % (i, RI), "deleted")], "ops"),
        ts("Buffer cache hit ratio", [
            ("sum(rate(pg_stat_database_blks_hit{%s}[%s])) / (sum(rate(pg_stat_database_blks_hit{%s}[%s])) "
             "+ sum(rate(pg_stat_database_blks_read{%s}[%s])) > 0)" % (i, RI, i, RI, i, RI), "hit ratio")],
           "percentunit"),
        Row("Storage and WAL"),
        ts("Database sizes", [("pg_database_size_bytes{%s}" % i, "{{datname}}")], "bytes",
           links=TO_DATABASE),
        ts("WAL written", [("rate(pg_wal_bytes_total{%s}[%s])" % (i, RI), "WAL")], "Bps"),
        ts("Checkpoints", [
            ("rate(pg_stat_bgwriter_checkpoints_timed_total{%s}[%s])" % (i, RI), "timed"),
            ("rate(pg_stat_bgwriter_checkpoints_req_total{%s}[%s])" % (i, RI), "requested")], "ops"),
        ts("pg_wal size", [("pg_wal_dir_bytes{%s}" % i, "pg_wal")], "bytes"),
        Row("Locks and transactions"),
        ts("Locks by mode", [("sum by (mode) (pg_locks_count{%s})" % i, "{{mode}}")]),
        ts("Waiting and blocked", [("pg_lock_waiting{%s}" % i, "lock requests waiting"),
                                   ("pg_lock_blocked_sessions{%s}" % i, "sessions blocked")]),
        ts("Transaction age", [("pg_xact_oldest_age_seconds{%s}" % i, "oldest transaction"),
                               ("pg_xact_idle_in_xact_age_seconds{%s}" % i, "idle in transaction")],
           "s"),
        ts("XID age (wraparound)", [("pg_database_xid_age{%s}" % i, "{{datname}}")]),
        Row("Pgbouncer"),
        ts("Pgbouncer pools", [
            ("sum(pgbouncer_pools_cl_active{%s})" % i, "clients active"),
            ("sum(pgbouncer_pools_cl_waiting{%s})" % i, "clients waiting"),
            ("sum(pgbouncer_pools_sv_active{%s})" % i, "servers active"),
            ("sum(pgbouncer_pools_sv_idle{%s})" % i, "servers idle")], w=24),
    ], tags=("pgsql",))


# ------------------------------------------------------------------ services and pooling
def pgsql_service():
    i = I
    return dashboard("pgsql-service", "PGSQL Service", "HAProxy services of a database node "
                     "(primary 5433, replica 5434, default 5436, offline 5438): backends, "
                     "servers, sessions, traffic", [var("cls", 'haproxy_process_nbthread'),
                                                    var("ins", 'haproxy_process_nbthread{cls="$cls"}')], [
        table("Backends up", [('haproxy_backend_status{%s,state="UP"}' % i, "{{proxy}}")], h=6),
        ts("Active servers per service", [("haproxy_backend_active_servers{%s}" % i, "{{proxy}}")]),
        ts("Backup servers per service", [("haproxy_backend_backup_servers{%s}" % i, "{{proxy}}")]),
        ts("Server UP (1) per service", [
            ('haproxy_server_status{%s,state="UP"}' % i, "{{proxy}} {{server}}")]),
        ts("Current sessions per service", [("haproxy_backend_current_sessions{%s}" % i, "{{proxy}}")]),
        ts("Sessions per second per service", [
            ("rate(haproxy_backend_sessions_total{%s}[%s])" % (i, RI), "{{proxy}}")], "ops"),
        ts("Traffic per service", [
            ("rate(haproxy_backend_bytes_in_total{%s}[%s])" % (i, RI), "{{proxy}} in"),
            ("rate(haproxy_backend_bytes_out_total{%s}[%s])" % (i, RI), "{{proxy}} out")], "Bps"),
        ts("Frontend sessions", [("haproxy_frontend_current_sessions{%s}" % i, "{{proxy}}")]),
        ts("Server check failures", [
            ("increase(haproxy_server_check_failures_total{%s}[%s])" % (i, RI), "{{proxy}} {{server}}")]),
    ], tags=("pgsql",))


def pgsql_pgbouncer():
    i = I
    return dashboard("pgsql-pgbouncer", "PGSQL Pgbouncer", "Pgbouncer of an instance: pools, "
                     "clients, servers, transactions, wait time", [CLS, INS], [
        stat("Pgbouncer up", "pgbouncer_up{%s}" % i),
        stat("Clients active", "sum(pgbouncer_pools_cl_active{%s})" % i),
        stat("Clients waiting", "sum(pgbouncer_pools_cl_waiting{%s})" % i),
        stat("Servers active", "sum(pgbouncer_pools_sv_active{%s})" % i),
        stat("Servers idle", "sum(pgbouncer_pools_sv_idle{%s})" % i),
        stat("Max wait", "max(pgbouncer_pools_maxwait{%s})" % i, "s"),
        ts("Clients per pool", [
            ("pgbouncer_pools_cl_active{%s}" % i, "{{database}}/{{user}} active"),
            ("pgbouncer_pools_cl_waiting{%s}" % i, "{{database}}/{{user}} waiting")]),
        ts("Servers per pool", [
            ("pgbouncer_pools_sv_active{%s}" % i, "{{database}}/{{user}} active"),
            ("pgbouncer_pools_sv_idle{%s}" % i, "{{database}}/{{user}} idle"),
            ("pgbouncer_pools_sv_used{%s}" % i, "{{database}}/{{user}} used")]),
        ts("Transactions per second", [
            ("rate(pgbouncer_stats_total_xact_count{%s}[%s])" % (i, RI), "{{database}}")], "ops"),
        ts("Queries per second", [
            ("rate(pgbouncer_stats_total_query_count{%s}[%s])" % (i, RI), "{{database}}")], "ops"),
        ts("Traffic", [
            ("rate(pgbouncer_stats_total_received{%s}[%s])" % (i, RI), "{{database}} received"),
            ("rate(pgbouncer_stats_total_sent{%s}[%s])" % (i, RI), "{{database}} sent")], "Bps"),
        ts("Average wait per transaction (us)", [
            ("rate(pgbouncer_stats_total_wait_time{%s}[%s]) / (rate(pgbouncer_stats_total_xact_count{%s}[%s]) > 0)"
             % (i, RI, i, RI), "{{database}}")], "µs"),
        ts("Server connections per database", [
            ("pgbouncer_databases_current_connections{%s}" % i, "{{name}}")]),
    ], tags=("pgsql",))


# ------------------------------------------------------------------ replication and HA
def pgsql_replication():
    c = C
    return dashboard("pgsql-replication", "PGSQL Replication", "Streaming replication of a "
                     "cluster: lag, slots, WAL receivers, WAL positions", [CLS], [
        stat("Replicas streaming", "pg:cls:replicas_streaming{%s}" % c),
        stat("Slots", "count(pg_slot_active{%s})" % c),
        stat("Inactive slots", "count(pg_slot_active{%s} == 0) or vector(0)" % c),
        stat("Max lag", "max(pg_replication_lag{%s})" % c, "s"),
        ts("Lag seen by the primary (bytes)", [
            ("pg_stat_replication_pg_wal_lsn_diff{%s}" % c, "{{application_name}}")], "bytes"),
        ts("Replay lag on the replicas (seconds)", ["pg_replication_lag{%s}" % c], "s", links=TO_INSTANCE),
        ts("Received but not replayed (bytes)", ["pg_recovery_replay_lag_bytes{%s}" % c], "bytes"),
        ts("WAL retained by slots", [("pg_slot_retained_bytes{%s}" % c, "{{ins}} {{slot_name}}")],
           "bytes"),
        ts("WAL position", ["pg_wal_lsn{%s}" % c], "bytes"),
        ts("WAL receiver: seconds since the last message", [
            ("pg_recv_last_msg_age_seconds{%s}" % c, "{{ins}} <- {{sender_host}}")], "s"),
        ts("Replication slots active", [("pg_slot_active{%s}" % c, "{{ins}} {{slot_name}}")]),
        ts("Replicas' timeline", [("pg_recv_timeline{%s}" % c, "{{ins}}")]),
    ], tags=("pgsql",))


def pgsql_patroni():
    c = C
    return dashboard("pgsql-patroni", "PGSQL Patroni", "Patroni HA of a cluster: leader, "
                     "replicas, timeline, WAL positions, DCS", [var("cls", "patroni_postgres_running")], [
        stat("Leader", "sum(patroni_primary{%s})" % c, w=6),
        stat("Replicas", "sum(patroni_replica{%s})" % c, w=6),
        stat("PostgreSQL running", "sum(patroni_postgres_running{%s})" % c, w=6),
        stat("Paused", "max(patroni_is_paused{%s})" % c, w=6),
        ts("Role (1 = primary)", ["patroni_primary{%s}" % c], links=TO_INSTANCE),
        ts("Timeline", ["patroni_postgres_timeline{%s}" % c]),
        ts("WAL position (primary written, replicas replayed)", [
            ("patroni_xlog_location{%s}" % c, "{{ins}} written"),
            ("patroni_xlog_replayed_location{%s}" % c, "{{ins}} replayed")], "bytes"),
        ts("Seconds since the DCS was last seen", ["time() - patroni_dcs_last_seen{%s}" % c], "s"),
        ts("Pending restart", ["patroni_pending_restart{%s}" % c]),
        ts("Postmaster start time", ["patroni_postmaster_start_time{%s}" % c], "dateTimeAsIso"),
        ts("etcd has a leader", [("etcd_server_has_leader", "{{ins}}")], w=12),
        ts("etcd leader changes", [("increase(etcd_server_leader_changes_seen_total[1h])", "{{ins}}")],
           w=12),
    ], tags=("pgsql",))


# ------------------------------------------------------------------ databases and objects
def pgsql_database():
    d = D
    return dashboard("pgsql-database", "PGSQL Database", "The databases of an instance: "
                     "throughput, tuples, cache, conflicts, temp files, size, XID age",
                     [CLS, INS, DATNAME], [
        ts("Commits per second", [
            ("rate(pg_stat_database_xact_commit{%s}[%s])" % (d, RI), "{{datname}}")], "ops"),
        ts("Rollbacks per second", [
            ("rate(pg_stat_database_xact_rollback{%s}[%s])" % (d, RI), "{{datname}}")], "ops"),
        ts("Rows returned", [
            ("rate(pg_stat_database_tup_returned{%s}[%s])" % (d, RI), "{{datname}}")], "ops"),
        ts("Rows changed", [
            ("rate(pg_stat_database_tup_inserted{%s}[%s]) + rate(pg_stat_database_tup_updated{%s}[%s]) "
             "+ rate(pg_stat_database_tup_deleted{%s}[%s])" % (d, RI, d, RI, d, RI), "{{datname}}")], "ops"),
        ts("Blocks read from disk", [
            ("rate(pg_stat_database_blks_read{%s}[%s])" % (d, RI), "{{datname}}")], "ops"),
        ts("Backends", [("pg_stat_database_numbackends{%s}" % d, "{{datname}}")]),
        ts("Deadlocks", [("increase(pg_stat_database_deadlocks{%s}[%s])" % (d, RI), "{{datname}}")]),
        ts("Temp files written", [
            ("rate(pg_stat_database_temp_bytes{%s}[%s])" % (d, RI), "{{datname}}")], "Bps"),
        ts("Recovery conflicts", [
            ("increase(pg_stat_database_conflicts{%s}[%s])" % (d, RI), "{{datname}}")]),
        ts("Size", [("pg_database_size_bytes{%s}" % d, "{{datname}}")], "bytes"),
        ts("XID age", [("pg_database_xid_age{%s}" % d, "{{datname}}")]),
        ts("Multixact age", [("pg_database_xid_multixact_age{%s}" % d, "{{datname}}")]),
    ], tags=("pgsql",))


def pgsql_tables():
    d = D
    return dashboard("pgsql-tables", "PGSQL Tables", "The 64 largest tables of each database: "
                     "size, scans, changes, dead rows, vacuum, estimated bloat",
                     [CLS, INS, DATNAME], [
        table("Tables", [("pg_table_size_bytes{%s}" % d, "size"),
                         ("pg_table_live_tup{%s}" % d, "live rows"),
                         ("pg_table_dead_tup{%s}" % d, "dead rows"),
                         ("pg_table_bloat_ratio{%s}" % d, "bloat")], h=10),
        ts("Size", [("topk(10, pg_table_size_bytes{%s})" % d, "{{datname}}.{{relname}}")], "bytes"),
        ts("Estimated bloat", [("topk(10, pg_table_bloat_bytes{%s})" % d, "{{datname}}.{{relname}}")],
           "bytes"),
        ts("Sequential scans", [
            ("topk(10, rate(pg_table_seq_scan{%s}[%s]))" % (d, RI), "{{datname}}.{{relname}}")], "ops"),
        ts("Index scans", [
            ("topk(10, rate(pg_table_idx_scan{%s}[%s]))" % (d, RI), "{{datname}}.{{relname}}")], "ops"),
        ts("Rows inserted, updated, deleted", [
            ("topk(10, rate(pg_table_tup_ins{%s}[%s]) + rate(pg_table_tup_upd{%s}[%s]) + rate(pg_table_tup_del{%s}[%s]))"
             % (d, RI, d, RI, d, RI), "{{datname}}.{{relname}}")], "ops"),
        ts("Dead rows", [("topk(10, pg_table_dead_tup{%s})" % d, "{{datname}}.{{relname}}")]),
        ts("Seconds since the last vacuum", [
            ("topk(10, pg_table_last_vacuum_age_seconds{%s})" % d, "{{datname}}.{{relname}}")], "s"),
        ts("Vacuums and analyzes", [
            ("sum by (datname) (increase(pg_table_vacuum_total{%s}[1h]))" % d, "{{datname}} vacuums"),
            ("sum by (datname) (increase(pg_table_analyze_total{%s}[1h]))" % d, "{{datname}} analyzes")]),
    ], tags=("pgsql",))


def pgsql_query():
    i = I
    return dashboard("pgsql-query", "PGSQL Query", "Statements of an instance from "
                     "pg_stat_statements (the 64 with the most execution time)", [CLS, INS], [
        table("Statements", [("pg_query_calls{%s}" % i, "calls"),
                             ("pg_query_exec_seconds{%s}" % i, "seconds"),
                             ("pg_query_rows{%s}" % i, "rows")], h=10),
        ts("Calls per second", [
            ("topk(10, rate(pg_query_calls{%s}[%s]))" % (i, RI), "{{datname}} {{queryid}}")], "ops"),
        ts("Execution time per second", [
            ("topk(10, rate(pg_query_exec_seconds{%s}[%s]))" % (i, RI), "{{datname}} {{queryid}}")], "s"),
        ts("Mean execution time", [
            ("topk(10, rate(pg_query_exec_seconds{%s}[%s]) / (rate(pg_query_calls{%s}[%s]) > 0))"
             % (i, RI, i, RI), "{{datname}} {{queryid}}")], "s"),
        ts("Rows per second", [
            ("topk(10, rate(pg_query_rows{%s}[%s]))" % (i, RI), "{{datname}} {{queryid}}")], "ops"),
        ts("Shared blocks read per second", [
            ("topk(10, rate(pg_query_blks_read{%s}[%s]))" % (i, RI), "{{datname}} {{queryid}}")], "ops"),
        ts("Statements tracked by database", [
            ("count by (datname) (pg_query_calls{%s})" % i, "{{datname}}")]),
    ], tags=("pgsql",))


def pgsql_persist():
    i = I
    return dashboard("pgsql-persist", "PGSQL Persist", "Durability of an instance: WAL, "
                     "checkpoints, background writer, archiving", [CLS, INS], [
        stat("Last checkpoint", "pg_checkpoint_age_seconds{%s}" % i, "s"),
        stat("pg_wal size", "pg_wal_dir_bytes{%s}" % i, "bytes"),
        stat("Archiving", "pg_archiver_enabled{%s}" % i),
        stat("Segments waiting to be archived", "pg_archiver_pending_files{%s}" % i),
        stat("Archive failures", "pg_stat_archiver_failed_count{%s}" % i),
        stat("Timeline", "pg_checkpoint_timeline{%s}" % i),
        ts("WAL bytes per second", [("rate(pg_wal_bytes_total{%s}[%s])" % (i, RI), "bytes")], "Bps"),
        ts("WAL records and full page images", [
            ("rate(pg_wal_records_total{%s}[%s])" % (i, RI), "records"),
            ("rate(pg_wal_fpi_total{%s}[%s])" % (i, RI), "full page images")], "ops"),
        ts("WAL writes and syncs", [
            ("rate(pg_wal_write_total{%s}[%s])" % (i, RI), "writes"),
            ("rate(pg_wal_sync_total{%s}[%s])" % (i, RI), "syncs"),
            ("rate(pg_wal_buffers_full_total{%s}[%s])" % (i, RI), "WAL buffers full")], "ops"),
        ts("pg_wal", [("pg_wal_dir_bytes{%s}" % i, "size")], "bytes"),
        ts("Checkpoints", [
            ("increase(pg_stat_bgwriter_checkpoints_timed_total{%s}[%s])" % (i, RI), "timed"),
            ("increase(pg_stat_bgwriter_checkpoints_req_total{%s}[%s])" % (i, RI), "requested")]),
        ts("Checkpoint write and sync time", [
            ("rate(pg_stat_bgwriter_checkpoint_write_time_total{%s}[%s]) / 1000" % (i, RI), "write"),
            ("rate(pg_stat_bgwriter_checkpoint_sync_time_total{%s}[%s]) / 1000" % (i, RI), "sync")],
           "percentunit"),
        ts("Buffers written", [
            ("rate(pg_stat_bgwriter_buffers_checkpoint_total{%s}[%s])" % (i, RI), "checkpoint"),
            ("rate(pg_stat_bgwriter_buffers_clean_total{%s}[%s])" % (i, RI), "bgwriter"),
            ("rate(pg_stat_bgwriter_buffers_backend_total{%s}[%s])" % (i, RI), "backends")], "ops"),
        ts("Archived segments", [
            ("increase(pg_stat_archiver_archived_count{%s}[%s])" % (i, RI), "archived"),
            ("increase(pg_stat_archiver_failed_count{%s}[%s])" % (i, RI), "failed")]),
    ], tags=("pgsql",))


def pgsql_backup():
    c = C
    return dashboard("pgsql-backup", "PGSQL Backup", "Backups of a cluster in the pgBackRest "
                     "repository on meta (age against its schedule, the last attempt, sizes) "
                     "and the archiving of its members", [BACKUP_CLS], [
        stat("Newest backup age", "time() - pigsty_backup_newest_time_seconds{%s}" % c, "s",
             description="Since the end of the newest backup of any type"),
        stat("Allowed age", "pigsty_backup_max_age_seconds{%s}" % c, "s",
             description="The longest gap of pgbackrest_schedule + max(1 h, twice the longest "
                         "backup): PostgresBackupTooOld fires beyond it"),
        stat("Last attempt succeeded", "pigsty_backup_last_attempt_success{%s}" % c,
             description="1: the runner's last backup of the cluster succeeded, 0: it failed"),
        stat("Backups", "sum(pigsty_backup_repo_backups{%s})" % c),
        stat("Repository bytes", "pigsty_backup_repo_bytes{%s}" % c, "bytes",
             description="The stanza's backups and archived WAL on meta's disk"),
        stat("Recoverable since", "time() - pigsty_backup_oldest_time_seconds{%s}" % c, "s",
             description="The end of the oldest backup: the earliest time a restore can reach"),
        ts("Age of the newest backup of each type", [
            ("time() - pigsty_backup_last_time_seconds{%s}" % c, "{{type}}"),
            ("pigsty_backup_max_age_seconds{%s}" % c, "allowed")], "s"),
        ts("Backups in the repository", [("pigsty_backup_repo_backups{%s}" % c, "{{type}}")], stack=True),
        ts("Size of the newest backup of each type", [
            ("pigsty_backup_last_size_bytes{%s}" % c, "{{type}} database"),
            ("pigsty_backup_last_repo_size_bytes{%s}" % c, "{{type}} in the repository")], "bytes"),
        ts("Duration of the newest backup of each type", [
            ("pigsty_backup_last_duration_seconds{%s}" % c, "{{type}}")], "s"),
        ts("Repository bytes", [("pigsty_backup_repo_bytes{%s}" % c, "{{cls}}")], "bytes"),
        ts("Stanza and lock", [("pigsty_backup_stanza_ok{%s}" % c, "stanza ok"),
                               ("pigsty_backup_running{%s}" % c, "backup running")]),
        Row("Archiving (every member)"),
        ts("WAL segments archived and failed", [
            ("increase(pg_stat_archiver_archived_count{%s}[%s])" % (c, RI), "{{ins}} archived"),
            ("increase(pg_stat_archiver_failed_count{%s}[%s])" % (c, RI), "{{ins}} failed")],
           links=TO_INSTANCE),
        ts("Since the last archived segment", [
            ("pg_archiver_last_archived_age_seconds{%s} >= 0" % c, "{{ins}}")], "s",
           links=TO_INSTANCE),
        ts("Archiving failing (last attempt failed)", [("pg_archiver_failing{%s}" % c, "{{ins}}")],
           links=TO_INSTANCE),
        ts("Segments waiting to be archived", [("pg_archiver_pending_files{%s}" % c, "{{ins}}")],
           links=TO_INSTANCE),
    ], tags=("pgsql",))


def pgsql_activity():
    i = I
    return dashboard("pgsql-activity", "PGSQL Activity", "Sessions of an instance: states, "
                     "backend types, wait events, locks, transaction age", [CLS, INS], [
        stat("Sessions", "sum(pg_stat_activity_count{%s})" % i),
        stat("Idle in transaction", "pg_xact_idle_in_xact{%s}" % i),
        stat("Blocked sessions", "pg_lock_blocked_sessions{%s}" % i),
        stat("Oldest transaction", "pg_xact_oldest_age_seconds{%s}" % i, "s"),
        stat("Oldest snapshot (xids)", "pg_xact_oldest_snapshot_age{%s}" % i),
        stat("Prepared transactions", "pg_xact_prepared{%s}" % i),
        ts("Sessions by state", [("sum by (state) (pg_stat_activity_count{%s})" % i, "{{state}}")],
           stack=True),
        ts("Sessions by database", [("sum by (datname) (pg_stat_activity_count{%s})" % i, "{{datname}}")]),
        ts("Server processes by type", [("pg_backend_count{%s}" % i, "{{type}}")], stack=True),
        ts("Active sessions by wait event type", [("pg_wait_count{%s}" % i, "{{event_type}}")],
           stack=True),
        ts("Locks by mode", [("sum by (mode) (pg_locks_count{%s})" % i, "{{mode}}")]),
        ts("Lock requests waiting", [("pg_lock_waiting{%s}" % i, "waiting"),
                                     ("pg_lock_blocked_sessions{%s}" % i, "blocked sessions")]),
        ts("Longest transaction", [
            ("pg_xact_oldest_age_seconds{%s}" % i, "oldest transaction"),
            ("pg_xact_idle_in_xact_age_seconds{%s}" % i, "idle in transaction"),
            ("pg_xact_prepared_age_seconds{%s}" % i, "prepared transaction"),
            ("max(pg_stat_activity_max_tx_duration{%s})" % i, "exporter's view")], "s"),
        ts("Oldest snapshot (xids behind)", [("pg_xact_oldest_snapshot_age{%s}" % i, "snapshot"),
                                             ("max(pg_slot_xmin_age{%s})" % i, "slot xmin")]),
    ], tags=("pgsql",))


def pgsql_alert():
    return dashboard("pgsql-alert", "PGSQL Alerts", "Alerts of every cluster: firing and "
                     "pending, by severity, and the signals behind the core alerts", [], [
        stat("Firing", 'count(ALERTS{alertstate="firing"}) or vector(0)', w=6),
        stat("Pending", 'count(ALERTS{alertstate="pending"}) or vector(0)', w=6),
        stat("Critical", 'count(ALERTS{alertstate="firing",severity="CRIT"}) or vector(0)', w=6),
        stat("Rules loaded", "sum(prometheus_rule_group_rules)", w=6),
        table("Alerts firing", [('ALERTS{alertstate="firing"}', "{{alertname}}")]),
        ts("Alerts by name", [('count by (alertname) (ALERTS{alertstate="firing"}) or on() '
                               'label_replace(vector(0), "alertname", "none", "", "")', "{{alertname}}")]),
        ts("Notifications sent to Alertmanager", [
            ("rate(prometheus_notifications_sent_total[%s])" % RI, "sent"),
            ("rate(prometheus_notifications_errors_total[%s])" % RI, "errors")], "ops"),
        ts("Instances down", ['count by (job) (up == 0) or on() label_replace(vector(0), "job", "none", "", "")'],
           legend="{{job}}"),
        ts("Replication lag", ["pg_replication_lag"], "s", links=TO_INSTANCE),
        ts("Connection usage", ["pg:ins:conn_usage"], "percentunit", links=TO_INSTANCE),
    ], tags=("pgsql",))


# ------------------------------------------------------------------ nodes
def node_overview():
    return dashboard("node-overview", "NODE Overview", "Every node: CPU, memory, load, disk "
                     "space, network", [], [
        stat("Nodes", 'count(up{job="node"})'),
        stat("Nodes up", 'sum(up{job="node"})'),
        stat("CPU cores", "count(node_cpu_seconds_total{mode=\"idle\"})"),
        stat("Memory", "sum(node_memory_MemTotal_bytes)", "bytes"),
        stat("Max CPU usage", "max(node:ins:cpu_usage)", "percentunit"),
        stat("Max disk usage", "max(node:fs:space_usage)", "percentunit"),
        ts("CPU usage", ["node:ins:cpu_usage"], "percentunit", links=TO_NODE),
        ts("Memory usage", ["node:ins:mem_usage"], "percentunit", links=TO_NODE),
        ts("Load (1m)", ["node_load1"], links=TO_NODE),
        ts("Largest filesystem usage", ["max by (cls, ins) (node:fs:space_usage)"], "percentunit",
           links=TO_NODE),
        ts("Network received", [
            'sum by (ins) (rate(node_network_receive_bytes_total{device!="lo"}[%s]))' % RI], "Bps"),
        ts("Network sent", [
            'sum by (ins) (rate(node_network_transmit_bytes_total{device!="lo"}[%s]))' % RI], "Bps"),
    ], tags=("node",))


def node_instance():
    n = I
    return dashboard("node-instance", "NODE Instance", "A node: CPU, memory, load, disks, "
                     "filesystems, network, clock", [NODE_CLS, NODE_INS], [
        stat("Up", 'up{job="node",%s}' % n),
        stat("CPU cores", 'count(node_cpu_seconds_total{mode="idle",%s})' % n),
        stat("Memory", "node_memory_MemTotal_bytes{%s}" % n, "bytes"),
        stat("Uptime", "time() - node_boot_time_seconds{%s}" % n, "s"),
        stat("CPU usage", "node:ins:cpu_usage{%s}" % n, "percentunit"),
        stat("Memory usage", "node:ins:mem_usage{%s}" % n, "percentunit"),
        ts("CPU by mode", [
            ('sum by (mode) (rate(node_cpu_seconds_total{mode!="idle",%s}[%s]))' % (n, RI), "{{mode}}")],
           stack=True),
        ts("Memory", [("node_memory_MemTotal_bytes{%s}" % n, "total"),
                      ("node_memory_MemAvailable_bytes{%s}" % n, "available"),
                      ("node_memory_Cached_bytes{%s}" % n, "cached"),
                      ("node_memory_Buffers_bytes{%s}" % n, "buffers")], "bytes"),
        ts("Load", [("node_load1{%s}" % n, "load1"), ("node_load5{%s}" % n, "load5"),
                    ("node_load15{%s}" % n, "load15")]),
        ts("Filesystem usage", [("node:fs:space_usage{%s}" % n, "{{mountpoint}}")], "percentunit"),
        ts("Disk I/O", [
            ("rate(node_disk_read_bytes_total{%s}[%s])" % (n, RI), "{{device}} read"),
            ("rate(node_disk_written_bytes_total{%s}[%s])" % (n, RI), "{{device}} written")], "Bps"),
        ts("Disk busy", [("rate(node_disk_io_time_seconds_total{%s}[%s])" % (n, RI), "{{device}}")],
           "percentunit"),
        ts("Network", [
            ('rate(node_network_receive_bytes_total{%s,device!="lo"}[%s])' % (n, RI), "rx {{device}}"),
            ('rate(node_network_transmit_bytes_total{%s,device!="lo"}[%s])' % (n, RI), "tx {{device}}")],
           "Bps"),
        ts("TCP connections", [("node_netstat_Tcp_CurrEstab{%s}" % n, "established"),
                               ("node_sockstat_TCP_tw{%s}" % n, "time wait")]),
        ts("Context switches and interrupts", [
            ("rate(node_context_switches_total{%s}[%s])" % (n, RI), "context switches"),
            ("rate(node_intr_total{%s}[%s])" % (n, RI), "interrupts")], "ops"),
        ts("Clock offset from the meta node", [
            ("node_time_seconds{%s} - timestamp(node_time_seconds{%s})" % (n, n), "offset")], "s"),
    ], tags=("node",))


# ------------------------------------------------------------------ infra
def infra_prometheus():
    return dashboard("infra-prometheus", "INFRA Prometheus", "Prometheus on the meta nodes: "
                     "targets, ingestion, storage, rules, notifications", [], [
        stat("Targets", "count(up)"),
        stat("Targets down", "count(up == 0) or vector(0)"),
        stat("Head series", "sum(prometheus_tsdb_head_series)"),
        stat("Samples per second", "sum(rate(prometheus_tsdb_head_samples_appended_total[%s]))" % RI, "ops"),
        stat("Storage", "sum(prometheus_tsdb_storage_blocks_bytes)", "bytes"),
        stat("Rules", "sum(prometheus_rule_group_rules)"),
        ts("Targets up by job", [("sum by (job) (up)", "{{job}}")]),
        ts("Scrape duration by job", [("max by (job) (scrape_duration_seconds)", "{{job}}")], "s"),
        ts("Samples scraped by job", [("sum by (job) (scrape_samples_scraped)", "{{job}}")]),
        ts("Head series", [("prometheus_tsdb_head_series", "{{ins}}")]),
        ts("Rule group evaluation time", [
            ("prometheus_rule_group_last_duration_seconds", "{{rule_group}}")], "s"),
        ts("Notifications", [("rate(prometheus_notifications_sent_total[%s])" % RI, "sent"),
                             ("rate(prometheus_notifications_dropped_total[%s])" % RI, "dropped")], "ops"),
        ts("Memory", [("process_resident_memory_bytes{job=\"prometheus\"}", "{{ins}}")], "bytes"),
        ts("Config reload OK", [("prometheus_config_last_reload_successful", "{{ins}}")]),
    ], tags=("infra",))


def infra_alertmanager():
    return dashboard("infra-alertmanager", "INFRA Alertmanager", "Alertmanager: alerts, "
                     "notifications per receiver integration, silences", [], [
        stat("Up", 'up{job="alertmanager"}', w=6),
        stat("Alerts active", 'sum(alertmanager_alerts{state="active"})', w=6),
        stat("Alerts suppressed", 'sum(alertmanager_alerts{state="suppressed"})', w=6),
        stat("Silences active", 'sum(alertmanager_silences{state="active"})', w=6),
        ts("Alerts by state", [("alertmanager_alerts", "{{state}}")]),
        ts("Alerts received", [("rate(alertmanager_alerts_received_total[%s])" % RI, "{{status}}")], "ops"),
        ts("Notifications by integration", [
            ("rate(alertmanager_notifications_total[%s])" % RI, "{{integration}}")], "ops"),
        ts("Failed notifications by integration", [
            ("rate(alertmanager_notifications_failed_total[%s])" % RI, "{{integration}}")], "ops"),
        ts("Notification latency (p99)", [
            ("histogram_quantile(0.99, sum by (le, integration) "
             "(rate(alertmanager_notification_latency_seconds_bucket[%s])))" % RI, "{{integration}}")], "s"),
        ts("Memory", [('process_resident_memory_bytes{job="alertmanager"}', "{{ins}}")], "bytes"),
    ], tags=("infra",))


def infra_etcd():
    return dashboard("infra-etcd", "INFRA etcd", "etcd, the DCS of Patroni and vip-manager: "
                     "leader, proposals, database size, disk latency", [], [
        stat("Members up", 'sum(up{job="etcd"})', w=6),
        stat("Has leader", "min(etcd_server_has_leader)", w=6),
        stat("Leader changes (1h)", "sum(increase(etcd_server_leader_changes_seen_total[1h]))", w=6),
        stat("DB size", "max(etcd_mvcc_db_total_size_in_bytes)", "bytes", w=6),
        ts("Leader", [("etcd_server_is_leader", "{{ins}}")]),
        ts("Proposals", [
            ("rate(etcd_server_proposals_committed_total[%s])" % RI, "{{ins}} committed"),
            ("rate(etcd_server_proposals_applied_total[%s])" % RI, "{{ins}} applied"),
            ("rate(etcd_server_proposals_failed_total[%s])" % RI, "{{ins}} failed")], "ops"),
        ts("Proposals pending", [("etcd_server_proposals_pending", "{{ins}}")]),
        ts("DB size", [("etcd_mvcc_db_total_size_in_bytes", "{{ins}}")], "bytes"),
        ts("WAL fsync (p99)", [
            ("histogram_quantile(0.99, sum by (le, ins) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[%s])))"
             % RI, "{{ins}}")], "s"),
        ts("Backend commit (p99)", [
            ("histogram_quantile(0.99, sum by (le, ins) "
             "(rate(etcd_disk_backend_commit_duration_seconds_bucket[%s])))" % RI, "{{ins}}")], "s"),
        ts("Client traffic", [
            ("rate(etcd_network_client_grpc_received_bytes_total[%s])" % RI, "{{ins}} received"),
            ("rate(etcd_network_client_grpc_sent_bytes_total[%s])" % RI, "{{ins}} sent")], "Bps"),
        ts("Keys", [("etcd_debugging_mvcc_keys_total", "{{ins}}")]),
    ], tags=("infra",))


DASHBOARDS = {
    "pigsty-home.json": home,
    "pgsql-overview.json": pgsql_overview,
    "pgsql-cluster.json": pgsql_cluster,
    "pgsql-instance.json": pgsql_instance,
    "pgsql-service.json": pgsql_service,
    "pgsql-pgbouncer.json": pgsql_pgbouncer,
    "pgsql-replication.json": pgsql_replication,
    "pgsql-patroni.json": pgsql_patroni,
    "pgsql-database.json": pgsql_database,
    "pgsql-tables.json": pgsql_tables,
    "pgsql-query.json": pgsql_query,
    "pgsql-persist.json": pgsql_persist,
    "pgsql-activity.json": pgsql_activity,
    "pgsql-backup.json": pgsql_backup,
    "pgsql-alert.json": pgsql_alert,
    "node-overview.json": node_overview,
    "node-instance.json": node_instance,
    "infra-prometheus.json": infra_prometheus,
    "infra-alertmanager.json": infra_alertmanager,
    "infra-etcd.json": infra_etcd,
}


def render():
    """{file name: JSON text}."""
    out = {}
    for name, build in DASHBOARDS.items():
        data = json.loads(json.dumps(build().to_json_data(), cls=DashboardEncoder))
        out[name] = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    texts = render()
    for name in os.listdir(OUT):           # dashboards no longer generated go away
        if name.endswith(".json") and name not in texts:
            os.remove(os.path.join(OUT, name))
            print("removed", os.path.join(OUT, name))
    for name, text in texts.items():
        with open(os.path.join(OUT, name), "w") as fh:
            fh.write(text)
        print("wrote", os.path.join(OUT, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
