"""The postgres exporter's query file (salt/pgsql/files/pg_exporter_queries.yml) for real:
Debian's prometheus-postgres-exporter 0.11, run as salt/pgsql/monitor.sls runs it (the
monitor user with pg_monitor, --auto-discover-databases), against a throwaway PostgreSQL 15
primary (pg_stat_statements preloaded, archiving on, a physical slot, a database with a
table) and a streaming standby cloned from it. Every query returns rows where its feature
exists, no query fails, and every postgres metric that a dashboard, console or rule uses is
exported.

A second Prometheus check (test_pgsql_expressions_return_data) lets Debian's Prometheus scrape
both exporters with Pigsty's target labels and evaluates every expression that uses only the
postgres exporter's metrics."""
import os
import re
import subprocess
import time

import psycopg2
import pytest
import yaml

import pigsty_monitor
from local_http import free_port, get, wait_http
from pg_server import HBA, REPO, start_instance

EXPORTER = "/usr/bin/prometheus-postgres-exporter"

QUERIES = os.path.join(REPO, "salt", "pgsql", "files", "pg_exporter_queries.yml")
MONITOR_SLS = os.path.join(REPO, "salt", "pgsql", "monitor.sls")
MON_USER, MON_PASSWORD = "dbuser_monitor", "Monitor.Test.1"
PRIMARY_SETTINGS = {"shared_preload_libraries": "'pg_stat_statements'", "archive_mode": "on",
                    "archive_command": "'/bin/true'", "wal_level": "replica",
                    "max_wal_senders": "4", "track_io_timing": "on"}
SLOT = "pg_test_2"


def load_queries():
    with open(QUERIES) as fh:
        return yaml.safe_load(fh)


def exporter_flags():
    """The exporter's flags as monitor.sls sets them, less the listen address and the path."""
    with open(MONITOR_SLS) as fh:
        text = fh.read()
    line = [a for a in re.findall(r'ARGS="([^"]*)"', text) if "--extend.query-path" in a][0]
    args = re.sub(r"\{\{.*?\}\}", "X", line).split()
    return [a for a in args if not a.startswith(("--web.listen-address", "--extend.query-path"))]


def metric_lines(text):
    """{metric name: [(labels text, value)]} of an exposition text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2) or "", m.group(3)))
    return out


@pytest.fixture(scope="module")
def cluster():
    """(primary, standby) with what the collectors read: a slot the standby streams from,
    archiving, pg_stat_statements in postgres, a database `test` with a bloated table."""
    primary, stop_primary = start_instance(PRIMARY_SETTINGS, hba=HBA + "local replication postgres trust\n",
                                           prefix="pigsty-pg-obs-")
    stops = [stop_primary]
    try:
        primary.query("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE pg_monitor" % (MON_USER, MON_PASSWORD))
        primary.query("CREATE EXTENSION pg_stat_statements")
        primary.query("CREATE DATABASE test")
        primary.query("CREATE TABLE pgbench_like (id int PRIMARY KEY, v text)", dbname="test")
        primary.query("INSERT INTO pgbench_like SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g",
                      dbname="test")
        primary.query("DELETE FROM pgbench_like WHERE id % 2 = 0", dbname="test")
        primary.query("ANALYZE pgbench_like", dbname="test")
        # what Pigsty's default privileges give dbrole_readonly (the monitor user's role):
        # pg_stats shows a column's statistics only to a user who may read it
        primary.query("GRANT SELECT ON pgbench_like TO %s" % MON_USER, dbname="test")
        primary.query("SELECT pg_create_physical_replication_slot(%s)", (SLOT,))
        primary.query("SELECT pg_switch_wal()")
        standby, stop_standby = start_instance({"primary_slot_name": "'%s'" % SLOT},
                                               basebackup_from=primary, prefix="pigsty-pg-obs-stby-")
        stops.insert(0, stop_standby)
        deadline = time.monotonic() + 30
        while not primary.query("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'"):
            assert time.monotonic() < deadline, "the standby does not stream"
            time.sleep(0.2)
        yield primary, standby
    finally:
        for stop in stops:
            stop()


@pytest.fixture(scope="module")
def exporters(cluster):
    """{'primary': (url, process), 'standby': ...}: the exporter on each, as the monitor user."""
    procs = []
    out = {}
    try:
        for name, inst in zip(("primary", "standby"), cluster):
            port = free_port()
            dsn = ("host=%s port=%d user=%s password=%s dbname=postgres sslmode=disable"
                   % (inst.host, inst.port, MON_USER, MON_PASSWORD))
            proc = subprocess.Popen(
                ["runuser", "-u", "postgres", "--", "env", "DATA_SOURCE_NAME=" + dsn, EXPORTER,
                 "--web.listen-address=127.0.0.1:%d" % port, "--extend.query-path=" + QUERIES]
                + exporter_flags(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            procs.append(proc)
            url = "http://127.0.0.1:%d/metrics" % port
            wait_http(url, proc)
            out[name] = (url, proc)
        yield out
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


def scrape(url):
    """Metrics of a scrape once the exporter is connected (the first may precede it)."""
    deadline = time.monotonic() + 20
    while True:
        status, text = get(url, timeout=15)
        metrics = metric_lines(text)
        if status == 200 and metrics.get("pg_up", [("", "0")])[0][1] == "1" and "pg_wal_lsn" in metrics:
            return metrics
        assert time.monotonic() < deadline, "exporter not ready: %s\n%s" % (status, text[-2000:])
        time.sleep(0.5)


@pytest.fixture(scope="module")
def scraped(exporters):
    return {name: scrape(url) for name, (url, _proc) in exporters.items()}


def test_monitor_sls_discovers_databases():
    flags = exporter_flags()
    assert "--auto-discover-databases" in flags
    assert "--exclude-databases=template0,template1" in flags


def test_no_query_fails_and_none_is_rejected(scraped):
    for name, metrics in scraped.items():
        assert metrics["pg_exporter_last_scrape_error"] == [("", "0")], name
        errors = metrics.get("pg_exporter_user_queries_load_error", [])
        assert errors and all(v == "0" for _l, v in errors), (name, errors)


def test_every_query_returns_rows_where_its_feature_exists(scraped):
    # features only one side has: a replica's WAL receiver, the primary's slot
    only = {"pg_recv": "standby", "pg_slot": "primary"}
    for query, spec in load_queries().items():
        sides = [only[query]] if query in only else ["primary", "standby"]
        for col in [list(m)[0] for m in spec["metrics"]]:
            if list(m for m in spec["metrics"] if col in m)[0][col]["usage"] == "LABEL":
                continue
            for side in sides:
                assert "%s_%s" % (query, col) in scraped[side], (side, query, col)


def test_collectors_report_what_the_servers_do(scraped):
    p, s = scraped["primary"], scraped["standby"]

    def one(metrics, name, *labels):
        rows = [(lab, float(v)) for lab, v in metrics[name] if all(x in lab for x in labels)]
        assert rows, (name, labels, metrics.get(name))
        return rows[0][1]

    assert one(p, "pg_recovery_in_recovery") == 0 and one(s, "pg_recovery_in_recovery") == 1
    assert one(p, "pg_slot_active", 'slot_name="%s"' % SLOT, 'slot_type="physical"') == 1
    assert one(s, "pg_recv_flush_lsn", 'state="streaming"', 'slot_name="%s"' % SLOT) > 0
    assert one(p, "pg_wal_lsn") >= one(s, "pg_recv_flush_lsn") > 0
    assert one(p, "pg_archiver_enabled") == 1
    assert one(p, "pg_checkpoint_age_seconds") >= 0
    assert one(p, "pg_backend_count", 'type="walsender"') >= 1
    assert one(s, "pg_backend_count", 'type="walreceiver"') == 1
    assert one(p, "pg_wait_count", 'event_type="Lock"') == 0
    # per database: the table of `test`, seen on both sides, its estimated bloat about half
    assert one(p, "pg_table_live_tup", 'datname="test"', 'relname="public.pgbench_like"') == 10000
    assert one(s, "pg_table_size_bytes", 'datname="test"', 'relname="public.pgbench_like"') > 0
    ratio = one(p, "pg_table_bloat_ratio", 'datname="test"', 'relname="public.pgbench_like"')
    assert 0.3 < ratio < 0.7, ratio
    # pg_stat_statements, every database, read from postgres only (master: true): no duplicate
    assert any('datname="test"' in lab for lab, _v in p["pg_query_calls"])
    assert len(p["pg_query_calls"]) == len(set(lab for lab, _v in p["pg_query_calls"]))


def test_pg_query_has_no_rows_and_no_error_without_the_extension_loaded(pg):
    """On a server that does not preload pg_stat_statements, with and without the extension
    created in the database: no rows, and the statement never reaches the view."""
    sql = load_queries()["pg_query"]["query"]
    assert pg.query("SELECT count(*) FROM (%s) q" % sql)[0][0] == 0
    pg.query("CREATE DATABASE obs_no_preload")
    try:
        pg.query("CREATE EXTENSION pg_stat_statements", dbname="obs_no_preload")
        with pytest.raises(psycopg2.Error):           # the view itself would fail here
            pg.query("SELECT count(*) FROM pg_stat_statements", dbname="obs_no_preload")
        rows = pg.query("SELECT count(*) FROM (%s) q" % sql, dbname="obs_no_preload")
        assert rows[0][0] == 0
    finally:
        pg.query("DROP DATABASE obs_no_preload")


def test_every_postgres_metric_the_dashboards_consoles_and_rules_use_is_exported(scraped):
    exported = set(scraped["primary"]) | set(scraped["standby"])
    used = set()
    for _where, expr in pigsty_monitor.all_exprs():
        used |= {m for m in pigsty_monitor.metric_names(expr) if m.startswith("pg_")}
    assert len(used) > 40
    missing = sorted(used - exported)
    assert not missing, missing
