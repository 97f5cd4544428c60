"""Observability against the real sandbox (after orch.site): every expression of every
Grafana dashboard, Prometheus console and rule returns at least one series from the sandbox's
Prometheus (an alert, which fires only on a fault: its metrics exist), the postgres exporter's
queries run without errors on every instance, the console pages render with the live roles,
and the portal links them.

The local twin of these checks runs in tests/functional/test_monitoring_stack.py.
Traffic goes to 10.10.10.0/24 only; every wait is bounded."""

import pytest

from meta_http import http, prom_query, prometheus
from sandbox_cli import salt_run, wait_for
import patroni_rest
from pg import query, user_password
import promql

import pigsty_monitor  # noqa: E402

META = "10.10.10.10"
CLUSTER = "pg-test"
PROBE_DB, PROBE_TABLE = "test", "pigsty_obs_probe"


def live_members():
    """{instance: (role, host)} from Patroni."""
    doc = patroni_rest.get("10.10.10.11", "/cluster", timeout=3)
    return {m["name"]: (m["role"], m["host"]) for m in doc["members"]}


def live_primary():
    return [(n, host) for n, (role, host) in live_members().items()
            if role in ("leader", "master", "primary")][0]


@pytest.fixture(scope="module")
def observed(sandbox):
    """Prometheus up, and a table in pg-test's database `test` (created by the admin user, so
    the monitor user may read its statistics), so the per-table collectors have a row."""
    wait_for(lambda: prometheus("/-/ready")[0] == 200, 60)
    ins, host = wait_for(live_primary, 60)
    dba = ("dbuser_dba", user_password(CLUSTER, "dbuser_dba"))
    for sql in ("CREATE TABLE IF NOT EXISTS %s (id int PRIMARY KEY, v text)" % PROBE_TABLE,
                "INSERT INTO %s SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g "
                "ON CONFLICT DO NOTHING" % PROBE_TABLE,
                "DELETE FROM %s WHERE id %% 2 = 0" % PROBE_TABLE,
                "ANALYZE %s" % PROBE_TABLE):
        query(host, 5432, dba[0], dba[1], sql, dbname=PROBE_DB)
    yield ins
    query(host, 5432, dba[0], dba[1], "DROP TABLE IF EXISTS %s" % PROBE_TABLE, dbname=PROBE_DB)


@pytest.fixture(scope="module")
def backed_up(observed):
    """A full backup of pg-test taken by the runner (its result is the last attempt's), so
    the backup dashboard, console and rules have their series (pigsty_backup_*)."""
    full = 'pigsty_backup_last_attempt_success{cls="%s",type="full"} == 1' % CLUSTER
    if not prom_query(full):
        data, code, res = salt_run("pigsty_backup.backup", "cluster=%s" % CLUSTER, "type=full",
                                   timeout=1800)
        assert code == 0, res.stdout + res.stderr
        wait_for(lambda: prom_query(full), 120, interval=5)     # the runner refreshes the file
    return observed


def test_exporter_queries_run_without_errors_everywhere(observed):
    def clean():
        errors = prom_query('pg_exporter_last_scrape_error{job="pgsql"} != 0 '
                            'or pg_exporter_user_queries_load_error{job="pgsql"} != 0')
        ups = prom_query('pg_up{job="pgsql"} == 1')
        return not errors and len(ups) >= 4 and ups
    wait_for(clean, 60, interval=5)


def test_every_dashboard_console_and_rule_expression_returns_data(observed, backed_up):
    exprs = pigsty_monitor.all_exprs({"cls": CLUSTER, "ins": observed})
    assert len(exprs) > 300
    last = []

    def empty():
        bad = []
        for where, expr in exprs:
            names = promql.metric_names(expr)
            if where.startswith("alert ") or names <= {"ALERTS"}:
                # fires only on a fault: its metrics exist (ALERTS: the rules are loaded)
                probes = ['count({__name__="%s"})' % n for n in sorted(names - {"ALERTS"})]
                if "ALERTS" in names:
                    probes.append("sum(prometheus_rule_group_rules) > 0")
            else:
                probes = [expr]
            bad += [(where, p) for p in probes if not prom_query(p)]
        last[:] = bad
        return not bad

    try:
        wait_for(empty, 180, interval=15)    # a scrape (10 s) and a 1m rate window
    except AssertionError:
        raise AssertionError("expressions without data:\n%s" % "\n".join(
            "%s: %s" % item for item in last))


def test_per_table_and_statement_collectors_see_the_sandbox(observed):
    # the probe table is new: it shows once a scrape after its creation has run on every
    # member (10 s scrapes; the exporter's per-table query keeps its rows for a while),
    # so ask until it does, bounded
    seen = {}

    def collected():
        rows = prom_query('pg_table_live_tup{cls="%s",datname="%s",relname="public.%s"}'
                          % (CLUSTER, PROBE_DB, PROBE_TABLE))
        seen["tables"] = {r["metric"]["ins"] for r in rows}
        return seen["tables"] == set(live_members())                      # every member
    try:
        wait_for(collected, 120, interval=5)
    except AssertionError:
        raise AssertionError("pg_table_live_tup of the probe table from %s, expected every member: %s"
                             % (sorted(seen.get("tables", ())), sorted(live_members())))
    assert prom_query('pg_query_calls{ins="%s"}' % observed)             # pg_stat_statements
    assert prom_query('pg_slot_active{ins="%s"} == 1' % observed)        # Patroni's slots
    assert len(prom_query('pg_recv_flush_lsn{cls="%s"}' % CLUSTER)) == len(live_members()) - 1


def test_console_pages_show_the_live_roles(observed):
    status, body = http("https://%s/consoles/pigsty-overview.html" % META, host="p.pigsty")
    assert status == 200 and "pigsty-cluster.html?cls=pg-test" in body and "pg-meta" in body
    status, body = http("https://%s/consoles/pigsty-cluster.html?cls=%s" % (META, CLUSTER),
                        host="p.pigsty")
    assert status == 200 and "error executing template" not in body
    # the primary's row carries the primary mark, the others not
    for ins in live_members():
        row = body.split('pigsty-instance.html?ins=%s"' % ins)[1].split("</tr>")[0]
        assert ("pigsty-role-primary" in row) == (ins == observed), (ins, row)
    status, body = http("https://%s/consoles/pigsty-instance.html?ins=%s" % (META, observed),
                        host="p.pigsty")
    assert status == 200 and ">test</td>" in body and "new PromConsole.Graph(" in body
    status, _ = http("https://%s/classic/static/js/prom_console.js" % META, host="p.pigsty")
    assert status == 200


def test_portal_links_the_consoles(observed):
    status, body = http("https://%s/" % META, host="pigsty")
    assert status == 200
    assert '<a href="https://p.pigsty/consoles/pigsty-overview.html">' in body
    assert 'href="https://p.pigsty/consoles/pigsty-cluster.html?cls=pg-test"' in body
    assert 'href="https://p.pigsty/consoles/pigsty-instance.html?ins=pg-test-3"' in body


def test_backup_metrics_show_the_repository_on_meta(backed_up):
    """The backup exporter on meta (job backup) serves every cluster's facts with its own
    cls; pg-test's newest backup is within what its schedule allows; nothing is overdue."""
    def scraped():
        return prom_query('up{job="backup"} == 1') and prom_query(
            'time() - pigsty_backup_collect_time_seconds{job="backup"} < 180')
    wait_for(scraped, 150, interval=5)     # the master's schedule rewrites it every minute
    for cls in ("pg-test", "pg-meta"):
        assert prom_query('pigsty_backup_stanza_ok{cls="%s",job="backup"} == 1' % cls), cls
    assert prom_query('pigsty_backup_repo_backups{cls="%s",type="full"} >= 1' % CLUSTER)
    assert prom_query('pigsty_backup_repo_bytes{cls="%s"} > 1000000' % CLUSTER)
    assert prom_query('time() - pigsty_backup_newest_time_seconds{cls="%s"} '
                      '< pigsty_backup_max_age_seconds{cls="%s"}' % (CLUSTER, CLUSTER))
    assert not prom_query('ALERTS{alertname=~"PostgresBackup.*",cls="%s"}' % CLUSTER)
    # every member's archiver: pg-test's primary has archived, none is failing
    assert prom_query('pg_archiver_last_archived_age_seconds{cls="%s",role="primary"} >= 0' % CLUSTER)
    assert not prom_query('pg_archiver_failing{cls="%s"} == 1' % CLUSTER)
