#!/usr/bin/env python3
"""Generate Pigsty's Grafana dashboards (salt/infra/files/dashboards/*.json) from the specs
below. The JSON files are committed; tests/unit/test_monitor.py checks that they are what
this script writes, so edit the specs here and rerun:

    python3 scripts/gen_dashboards.py

Every expression uses only metrics that the deployed exporters export (see
_utils/pigsty_monitor.py) and the target labels cls, ins, ip, job, role.
"""
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "salt", "infra", "files", "dashboards")
DS = {"type": "prometheus", "uid": "prometheus"}
RI = "$__rate_interval"


def var(name, query, label=None):
    q = "label_values(%s, %s)" % (query, name)
    return {"name": name, "label": label or name, "type": "query", "datasource": DS,
            "query": q, "definition": q, "refresh": 2, "sort": 1, "current": {},
            "includeAll": False, "multi": False, "hide": 0}


def panel(title, exprs, unit="short", kind="timeseries", w=12, h=8, legend="{{ins}}"):
    targets = []
    for i, e in enumerate(exprs):
        expr, fmt = (e if isinstance(e, tuple) else (e, legend))
        targets.append({"refId": chr(ord("A") + i), "expr": expr, "legendFormat": fmt,
                        "datasource": DS})
    return {"type": kind, "title": title, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {}, "_w": w, "_h": h}


def layout(panels):
    x = y = row_h = 0
    out = []
    for i, p in enumerate(panels, 1):
        w, h = p.pop("_w"), p.pop("_h")
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p["id"] = i
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x += w
        row_h = max(row_h, h)
        out.append(p)
    return out


def dashboard(uid, title, variables, panels, description):
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["pigsty"], "editable": False, "timezone": "browser",
        "schemaVersion": 36, "version": 1, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": layout(panels),
    }


def pgsql_cluster():
    c = 'cls="$cls"'
    return dashboard("pigsty-pgsql-cluster", "PGSQL Cluster", [var("cls", "pg_up")], [
        panel("Instances up", ["pg_up{%s}" % c], kind="stat", w=8, h=5),
        panel("Primary (Patroni)", ["patroni_master{%s}" % c], kind="stat", w=8, h=5),
        panel("Timeline", ["max by (ins) (patroni_postgres_timeline{%s})" % c], kind="stat", w=8, h=5),
        panel("Commits per second", [
            "sum by (ins) (rate(pg_stat_database_xact_commit{%s}[%s]))" % (c, RI)], unit="ops"),
        panel("Connections", ["sum by (ins) (pg_stat_activity_count{%s})" % c]),
        panel("Replication lag (bytes, seen by the primary)", [
            ("pg_stat_replication_pg_wal_lsn_diff{%s}" % c, "{{application_name}}")], unit="bytes"),
        panel("Database size", ["sum by (ins) (pg_database_size_bytes{%s})" % c], unit="bytes"),
        panel("Pgbouncer active clients", ["sum by (ins) (pgbouncer_pools_cl_active{%s})" % c]),
        panel("Transactions through Pgbouncer", [
            "sum by (ins) (rate(pgbouncer_stats_total_xact_count{%s}[%s]))" % (c, RI)], unit="ops"),
    ], "A PostgreSQL cluster: members, roles, throughput, replication, size")


def pgsql_instance():
    i = 'ins="$ins"'
    return dashboard("pigsty-pgsql-instance", "PGSQL Instance",
                     [var("cls", "pg_up"), var("ins", 'pg_up{cls="$cls"}')], [
        panel("PostgreSQL up", ["pg_up{%s}" % i], kind="stat", w=6, h=5),
        panel("Uptime", ["time() - patroni_postmaster_start_time{%s}" % i], unit="s",
              kind="stat", w=6, h=5),
        panel("Connection usage", ["pg:ins:conn_usage{%s}" % i], unit="percentunit",
              kind="stat", w=6, h=5),
        panel("max_connections", ["pg_settings_max_connections{%s}" % i], kind="stat", w=6, h=5),
        panel("Connections by state", [
            ("sum by (state) (pg_stat_activity_count{%s})" % i, "{{state}}")]),
        panel("Commits and rollbacks per second", [
            ("sum(rate(pg_stat_database_xact_commit{%s}[%s]))" % (i, RI), "commit"),
            ("sum(rate(pg_stat_database_xact_rollback{%s}[%s]))" % (i, RI), "rollback")],
              unit="ops"),
        panel("Tuples per second", [
            ("sum(rate(pg_stat_database_tup_fetched{%s}[%s]))" % (i, RI), "fetched"),
            ("sum(rate(pg_stat_database_tup_inserted{%s}[%s]))" % (i, RI), "inserted"),
            ("sum(rate(pg_stat_database_tup_updated{%s}[%s]))" % (i, RI), "updated"),
            ("sum(rate(pg_stat_database_tup_deleted{%s}[%s]))" % (i, RI), "deleted")], unit="ops"),
        panel("Blocks per second", [
            ("sum(rate(pg_stat_database_blks_hit{%s}[%s]))" % (i, RI), "hit"),
            ("sum(rate(pg_stat_database_blks_read{%s}[%s]))" % (i, RI), "read")], unit="ops"),
        panel("Database sizes", [("pg_database_size_bytes{%s}" % i, "{{datname}}")], unit="bytes"),
        panel("Locks by mode", [("sum by (mode) (pg_locks_count{%s})" % i, "{{mode}}")]),
        panel("Checkpoints", [
            ("rate(pg_stat_bgwriter_checkpoints_timed_total{%s}[%s])" % (i, RI), "timed"),
            ("rate(pg_stat_bgwriter_checkpoints_req_total{%s}[%s])" % (i, RI), "requested")],
              unit="ops"),
        panel("Pgbouncer pools", [
            ("sum(pgbouncer_pools_cl_active{%s})" % i, "clients active"),
            ("sum(pgbouncer_pools_cl_waiting{%s})" % i, "clients waiting"),
            ("sum(pgbouncer_pools_sv_active{%s})" % i, "servers active"),
            ("sum(pgbouncer_pools_sv_idle{%s})" % i, "servers idle")]),
    ], "One PostgreSQL instance: connections, throughput, tuples, cache, sizes, locks, Pgbouncer")


def node():
    n = 'ip="$ip"'
    return dashboard("pigsty-node", "Node", [var("ip", 'node_uname_info')], [
        panel("CPU usage", ["node:ins:cpu_usage{%s}" % n], unit="percentunit", w=8),
        panel("Memory usage", ["node:ins:mem_usage{%s}" % n], unit="percentunit", w=8),
        panel("Load", [("node_load1{%s}" % n, "load1"), ("node_load5{%s}" % n, "load5"),
                       ("node_load15{%s}" % n, "load15")], w=8),
        panel("Memory", [("node_memory_MemTotal_bytes{%s}" % n, "total"),
                         ("node_memory_MemAvailable_bytes{%s}" % n, "available")], unit="bytes"),
        panel("Network", [
            ("rate(node_network_receive_bytes_total{%s,device!=\"lo\"}[%s])" % (n, RI), "rx {{device}}"),
            ("rate(node_network_transmit_bytes_total{%s,device!=\"lo\"}[%s])" % (n, RI), "tx {{device}}")],
              unit="Bps"),
        panel("Clock offset from the meta node", [
            ("node_time_seconds{%s} - timestamp(node_time_seconds{%s})" % (n, n), "offset")], unit="s"),
        panel("Uptime", [("time() - node_boot_time_seconds{%s}" % n, "uptime")], unit="s"),
    ], "A node: CPU, memory, load, network, clock")


def haproxy():
    i = 'ins="$ins"'
    return dashboard("pigsty-haproxy", "HAProxy Service",
                     [var("cls", 'up{job="haproxy"}'),
                      var("ins", 'up{job="haproxy",cls="$cls"}')], [
        panel("Backend up (per service)", [
            ("haproxy_backend_status{%s,state=\"UP\"}" % i, "{{proxy}}")], kind="stat", w=24, h=5),
        panel("Active servers per service", [
            ("haproxy_backend_active_servers{%s}" % i, "{{proxy}}")]),
        panel("Backup servers per service", [
            ("haproxy_backend_backup_servers{%s}" % i, "{{proxy}}")]),
        panel("Server status (UP = 1)", [
            ("haproxy_server_status{%s,state=\"UP\"}" % i, "{{proxy}} {{server}}")]),
        panel("Current sessions per service", [
            ("haproxy_backend_current_sessions{%s}" % i, "{{proxy}}")]),
        panel("Bytes in per service", [
            ("rate(haproxy_backend_bytes_in_total{%s}[%s])" % (i, RI), "{{proxy}}")], unit="Bps"),
        panel("Sessions per second per service", [
            ("rate(haproxy_backend_sessions_total{%s}[%s])" % (i, RI), "{{proxy}}")], unit="ops"),
    ], "HAProxy services of a database node: backend and server states, sessions, traffic")


def patroni():
    c = 'cls="$cls"'
    return dashboard("pigsty-patroni", "Patroni HA", [var("cls", "patroni_postgres_running")], [
        panel("Leader", ["patroni_master{%s}" % c], kind="stat", w=8, h=5),
        panel("Replicas", ["patroni_replica{%s}" % c], kind="stat", w=8, h=5),
        panel("PostgreSQL running", ["patroni_postgres_running{%s}" % c], kind="stat", w=8, h=5),
        panel("Timeline", ["patroni_postgres_timeline{%s}" % c]),
        panel("WAL position (primary written, replicas replayed)", [
            ("patroni_xlog_location{%s}" % c, "{{ins}} written"),
            ("patroni_xlog_replayed_location{%s}" % c, "{{ins}} replayed")], unit="bytes"),
        panel("Seconds since the DCS was last seen", [
            "time() - patroni_dcs_last_seen{%s}" % c], unit="s"),
        panel("Pending restart", ["patroni_pending_restart{%s}" % c]),
        panel("etcd has a leader", [("etcd_server_has_leader", "{{ins}}")], w=6),
        panel("etcd leader", [("etcd_server_is_leader", "{{ins}}")], w=6),
    ], "Patroni HA of a cluster: leader, replicas, timeline, WAL positions, DCS")


DASHBOARDS = {
    "pgsql-cluster.json": pgsql_cluster,
    "pgsql-instance.json": pgsql_instance,
    "node.json": node,
    "haproxy.json": haproxy,
    "patroni.json": patroni,
}


def render():
    """{file name: JSON text}."""
    return {name: json.dumps(build(), indent=2, sort_keys=True) + "\n"
            for name, build in DASHBOARDS.items()}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, text in render().items():
        with open(os.path.join(OUT, name), "w") as fh:
            fh.write(text)
        print("wrote", os.path.join(OUT, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
