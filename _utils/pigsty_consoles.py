"""Prometheus console templates in Pigsty's shape: an overview of every cluster, one cluster,
one instance. Prometheus serves them itself (``--web.console.templates``, with the library
``--web.console.libraries``) at ``/consoles/pigsty-overview.html``,
``/consoles/pigsty-cluster.html?cls=pg-test`` and ``/consoles/pigsty-instance.html?ins=pg-test-1``
(through Nginx: ``http://p.pigsty/consoles/...``): something to look at where no Grafana is
installed. Graphs are drawn in the browser by Prometheus' own console JavaScript
(PromConsole.Graph); tables are evaluated by Prometheus when the page is served.

The pages are generated from the specs below (scripts/gen_consoles.py writes them to
salt/infra/files/consoles/, and tests/unit/test_consoles.py checks the committed files are what
this module renders). Expressions are written like the Grafana dashboards': ``$cls`` and
``$ins`` are the page's parameters, ``%s`` in a table column is the row's label, and
``$__rate_interval`` becomes 1m. :func:`exprs` lists them all, with values substituted, for the
tests that run them against a Prometheus.

Pure Python (no Salt imports).
"""
import html
import re

RATE = "1m"
PAGE_TITLE = {"pigsty-overview.html": "Pigsty Overview", "pigsty-cluster.html": "PGSQL Cluster",
              "pigsty-instance.html": "PGSQL Instance"}
FORMATS = {   # unit -> (template for table cells, PromConsole formatter for graphs, axis unit)
    "short": ("humanize", "humanizeNoSmallPrefix", ""),
    "bytes": ("humanize1024", "humanize1024", "B"),
    "Bps": ("humanize1024", "humanize1024", "B/s"),
    "ops": ("humanize", "humanizeNoSmallPrefix", "/s"),
    "s": ("humanizeDuration", "humanizeNoSmallPrefix", "s"),
    "percentunit": ("humanizePercentage", "humanizeNoSmallPrefix", ""),
    "role": ("pigsty_role", "humanizeNoSmallPrefix", ""),
    "updown": ("pigsty_updown", "humanizeNoSmallPrefix", ""),
}


class Table:
    """A table with one row per series of ``rows`` (a PromQL expression evaluated when the page
    is served), keyed by label ``key``; ``link`` names the console a row links to.
    ``columns``: (title, expr with %s for the row's key, unit)."""

    def __init__(self, title, rows, key, columns, link=None):
        self.title, self.rows, self.key, self.columns, self.link = title, rows, key, columns, link


class Graph:
    """A graph: (expr, legend) pairs, legends with {{label}} like Grafana's."""

    def __init__(self, title, exprs, unit="short", stack=False):
        self.title, self.exprs, self.unit, self.stack = title, exprs, unit, stack


def _c(expr):
    return expr.replace("$__rate_interval", RATE)


PAGES = {
    "pigsty-overview.html": {
        "param": None,
        "heading": "Pigsty: every cluster",
        "items": [
            Table("Clusters", "count by (cls) (pg_up)", "cls", [
                ("instances", "count(pg_up{cls='%s'})", "short"),
                ("up", "sum(pg_up{cls='%s'})", "short"),
                ("commits/s", "sum(rate(pg_stat_database_xact_commit{cls='%s'}[$__rate_interval]))", "ops"),
                ("connections", "sum(pg_stat_activity_count{cls='%s'})", "short"),
                ("max lag", "max(pg_replication_lag{cls='%s'})", "s"),
                ("size (primary)", "sum(pg_database_size_bytes{cls='%s',role='primary'})", "bytes"),
            ], link="pigsty-cluster.html?cls="),
            Table("Alerts firing", "ALERTS{alertstate='firing'}", "alertname", [
                ("series firing", "count(ALERTS{alertstate='firing',alertname='%s'})", "short"),
            ]),
            Table("Infra", "up{job=~'prometheus|alertmanager|etcd'}", "job", [
                ("up", "min(up{job='%s'})", "updown"),
            ]),
            Graph("Commits per second by cluster", [
                ("sum by (cls) (rate(pg_stat_database_xact_commit[$__rate_interval]))", "{{cls}}")], "ops"),
            Graph("Connections by cluster", [("sum by (cls) (pg_stat_activity_count)", "{{cls}}")]),
            Graph("Replication lag by instance", [("pg_replication_lag", "{{ins}}")], "s"),
            Graph("WAL written by cluster", [
                ("sum by (cls) (rate(pg_wal_bytes_total{role='primary'}[$__rate_interval]))", "{{cls}}")], "Bps"),
            Graph("Node CPU usage", [("node:ins:cpu_usage", "{{ins}}")], "percentunit"),
        ],
    },
    "pigsty-cluster.html": {
        "param": "cls",
        "heading": "PGSQL Cluster",
        "items": [
            Table("Members (live role from PostgreSQL)", "pg_up{cls='$cls'}", "ins", [
                ("role", "pg_recovery_in_recovery{ins='%s'}", "role"),
                ("up", "pg_up{ins='%s'}", "updown"),
                ("patroni", "patroni_postgres_running{ins='%s'}", "updown"),
                ("lag", "pg_replication_lag{ins='%s'}", "s"),
                ("connections", "sum(pg_stat_activity_count{ins='%s'})", "short"),
                ("commits/s", "sum(rate(pg_stat_database_xact_commit{ins='%s'}[$__rate_interval]))", "ops"),
                ("cpu", "node:ins:cpu_usage{ins='%s'}", "percentunit"),
            ], link="pigsty-instance.html?ins="),
            Graph("Commits per second", [
                ("sum by (ins) (rate(pg_stat_database_xact_commit{cls='$cls'}[$__rate_interval]))", "{{ins}}")],
                "ops"),
            Graph("Connections", [("sum by (ins) (pg_stat_activity_count{cls='$cls'})", "{{ins}}")]),
            Graph("Replication lag (seconds, on the replicas)", [
                ("pg_replication_lag{cls='$cls'}", "{{ins}}")], "s"),
            Graph("Replication lag (bytes, seen by the primary)", [
                ("pg_stat_replication_pg_wal_lsn_diff{cls='$cls'}", "{{application_name}}")], "bytes"),
            Graph("WAL written", [("rate(pg_wal_bytes_total{cls='$cls'}[$__rate_interval])", "{{ins}}")],
                  "Bps"),
            Graph("Pgbouncer clients", [
                ("sum by (ins) (pgbouncer_pools_cl_active{cls='$cls'})", "{{ins}} active"),
                ("sum by (ins) (pgbouncer_pools_cl_waiting{cls='$cls'})", "{{ins}} waiting")]),
            Graph("Node CPU usage", [("node:ins:cpu_usage{cls='$cls'}", "{{ins}}")], "percentunit"),
            Graph("Node memory usage", [("node:ins:mem_usage{cls='$cls'}", "{{ins}}")], "percentunit"),
            # the repository on meta (pigsty_backup_*) and each member's archiver
            Table("Backups in the repository (newest of each type)",
                  "pigsty_backup_repo_backups{cls='$cls'}", "type", [
                      ("backups", "pigsty_backup_repo_backups{cls='$cls',type='%s'}", "short"),
                      ("age", "time() - pigsty_backup_last_time_seconds{cls='$cls',type='%s'}", "s"),
                      ("duration", "pigsty_backup_last_duration_seconds{cls='$cls',type='%s'}", "s"),
                      ("size", "pigsty_backup_last_size_bytes{cls='$cls',type='%s'}", "bytes"),
                      ("in the repository", "pigsty_backup_last_repo_size_bytes{cls='$cls',type='%s'}",
                       "bytes"),
                      ("last attempt ok", "pigsty_backup_last_attempt_success{cls='$cls',type='%s'}",
                       "updown"),
                  ]),
            Table("Archiving", "pg_archiver_enabled{cls='$cls'}", "ins", [
                ("archived", "pg_stat_archiver_archived_count{ins='%s'}", "short"),
                ("failed", "pg_stat_archiver_failed_count{ins='%s'}", "short"),
                ("failing now", "pg_archiver_failing{ins='%s'}", "short"),
                ("waiting", "pg_archiver_pending_files{ins='%s'}", "short"),
            ], link="pigsty-instance.html?ins="),
            Graph("Newest backup age (and the age its schedule allows)", [
                ("time() - pigsty_backup_newest_time_seconds{cls='$cls'}", "age"),
                ("pigsty_backup_max_age_seconds{cls='$cls'}", "allowed")], "s"),
            Graph("Repository bytes (backups and archived WAL)", [
                ("pigsty_backup_repo_bytes{cls='$cls'}", "{{cls}}")], "bytes"),
        ],
    },
    "pigsty-instance.html": {
        "param": "ins",
        "heading": "PGSQL Instance",
        "items": [
            Table("Instance", "pg_up{ins='$ins'}", "ins", [
                ("role", "pg_recovery_in_recovery{ins='%s'}", "role"),
                ("uptime", "time() - pg_postmaster_start_time_seconds{ins='%s'}", "s"),
                ("connection usage", "pg:ins:conn_usage{ins='%s'}", "percentunit"),
                ("oldest transaction", "pg_xact_oldest_age_seconds{ins='%s'}", "s"),
                ("last checkpoint", "pg_checkpoint_age_seconds{ins='%s'}", "s"),
                ("pg_wal", "pg_wal_dir_bytes{ins='%s'}", "bytes"),
                ("blocked sessions", "pg_lock_blocked_sessions{ins='%s'}", "short"),
            ]),
            Table("Databases", "pg_database_size_bytes{ins='$ins',datname!~'template.*'}", "datname", [
                ("size", "pg_database_size_bytes{ins='$ins',datname='%s'}", "bytes"),
                ("commits/s", "rate(pg_stat_database_xact_commit{ins='$ins',datname='%s'}[$__rate_interval])", "ops"),
                ("backends", "pg_stat_database_numbackends{ins='$ins',datname='%s'}", "short"),
                ("xid age", "pg_database_xid_age{ins='$ins',datname='%s'}", "short"),
            ]),
            Graph("Commits and rollbacks per second", [
                ("sum(rate(pg_stat_database_xact_commit{ins='$ins'}[$__rate_interval]))", "commit"),
                ("sum(rate(pg_stat_database_xact_rollback{ins='$ins'}[$__rate_interval]))", "rollback")], "ops"),
            Graph("Tuples per second", [
                ("sum(rate(pg_stat_database_tup_fetched{ins='$ins'}[$__rate_interval]))", "fetched"),
                ("sum(rate(pg_stat_database_tup_inserted{ins='$ins'}[$__rate_interval]))", "inserted"),
                ("sum(rate(pg_stat_database_tup_updated{ins='$ins'}[$__rate_interval]))", "updated"),
                ("sum(rate(pg_stat_database_tup_deleted{ins='$ins'}[$__rate_interval]))", "deleted")], "ops"),
            Graph("Connections by state", [
                ("sum by (state) (pg_stat_activity_count{ins='$ins'})", "{{state}}")], stack=True),
            Graph("Locks by mode", [("sum by (mode) (pg_locks_count{ins='$ins'})", "{{mode}}")]),
            Graph("WAL written", [("rate(pg_wal_bytes_total{ins='$ins'}[$__rate_interval])", "WAL")], "Bps"),
            Graph("Checkpoints", [
                ("increase(pg_stat_bgwriter_checkpoints_timed_total{ins='$ins'}[$__rate_interval])", "timed"),
                ("increase(pg_stat_bgwriter_checkpoints_req_total{ins='$ins'}[$__rate_interval])", "requested")]),
            Graph("Pgbouncer pools", [
                ("sum(pgbouncer_pools_cl_active{ins='$ins'})", "clients active"),
                ("sum(pgbouncer_pools_cl_waiting{ins='$ins'})", "clients waiting"),
                ("sum(pgbouncer_pools_sv_active{ins='$ins'})", "servers active")]),
            Graph("Node CPU and memory usage", [
                ("node:ins:cpu_usage{ins='$ins'}", "cpu"), ("node:ins:mem_usage{ins='$ins'}", "memory")],
                "percentunit"),
        ],
    },
}


# ------------------------------------------------------------------ rendering
def _go_string(text):
    """A Go template string literal."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def _page_expr(expr):
    """An expression of a page: $cls / $ins become the request's parameters, for JavaScript."""
    return re.sub(r"\$(cls|ins)\b", r"{{ .Params.\1 }}", _c(expr))


def _printf_expr(expr, param):
    """A Go template pipeline that builds ``expr`` with the page parameter and/or the row key."""
    expr = _c(expr)
    parts = re.split(r"(\$(?:cls|ins)\b|%s)", expr)
    fmt, args = "", []
    for part in parts:
        if part == "%s":
            fmt, args = fmt + "%s", args + ["$key"]
        elif part in ("$cls", "$ins"):
            fmt, args = fmt + "%s", args + ["$.Params.%s" % part[1:]]
        else:
            fmt += part.replace("%", "%%")
    if not args:
        return _go_string(fmt)
    return "(printf %s %s)" % (_go_string(fmt), " ".join(args))


def _table(t):
    out = ['<h3>%s</h3>' % html.escape(t.title),
           '<table class="table table-sm table-bordered table-striped pigsty-table">',
           "<tr><th>%s</th>%s</tr>" % (html.escape(t.key), "".join(
               "<th>%s</th>" % html.escape(c[0]) for c in t.columns))]
    # one row per key: right after a switchover a member's series with its old role label is
    # still in the lookback window beside the new one (seen: each member listed twice)
    rows = _printf_expr("count by (%s) (%s)" % (t.key, t.rows), None)
    out.append('{{ range query %s | sortByLabel %s }}{{ $key := .Labels.%s }}' % (
        rows, _go_string(t.key), t.key))
    if t.link:
        first = '<td><a href="%s{{ $key }}">{{ $key }}</a></td>' % t.link
    else:
        first = "<td>{{ $key }}</td>"
    cells = "".join('<td>{{ template "pigsty_value" (args %s %s) }}</td>' % (
        _printf_expr(expr, None), _go_string(FORMATS[unit][0])) for _t, expr, unit in t.columns)
    out.append("<tr>%s%s</tr>" % (first, cells))
    out.append('{{ else }}<tr><td colspan="%d">none</td></tr>{{ end }}' % (len(t.columns) + 1))
    out.append("</table>")
    return "\n".join(out)


def _graph(g, n):
    _cell, formatter, yunit = FORMATS[g.unit]
    exprs = ",\n    ".join('"%s"' % _page_expr(e).replace('"', "'") for e, _l in g.exprs)
    names = ", ".join("'%s'" % re.sub(r"\{\{\s*(\w+)\s*\}\}", r"[[ \1 ]]", legend).replace("'", "\\'")
                      for _e, legend in g.exprs)
    return """<h3>%s</h3>
<div id="graph%d"></div>
<script>
new PromConsole.Graph({
  node: document.querySelector("#graph%d"),
  expr: [
    %s
  ],
  name: [%s],
  renderer: '%s',
  min: 0,
  yAxisFormatter: PromConsole.NumberFormatter.%s,
  yHoverFormatter: PromConsole.NumberFormatter.%s,
  yUnits: "%s",
  yTitle: ''
})
</script>""" % (html.escape(g.title), n, n, exprs, names, "area" if g.stack else "line",
                formatter, formatter, yunit)


def render_page(name):
    page = PAGES[name]
    param = page["param"]
    heading = html.escape(page["heading"])
    title = heading + (" {{ .Params.%s }}" % param if param else "")
    out = ["{{/* Managed by Salt (Pigsty on Salt): generated by scripts/gen_consoles.py from "
           "_utils/pigsty_consoles.py; edit the specs there. */}}",
           '{{ template "pigsty_head" (args . %s) }}' % _go_string(PAGE_TITLE[name])]
    if param:
        out.append('{{ if not .Params.%s }}<div class="alert alert-warning">Add ?%s=NAME to the '
                   'address, or pick one on the <a href="pigsty-overview.html">overview</a>.</div>'
                   '{{ end }}' % (param, param))
    out.append("<h1>%s</h1>" % title)
    graphs = 0
    for item in page["items"]:
        if isinstance(item, Table):
            out.append(_table(item))
        else:
            graphs += 1
            out.append(_graph(item, graphs))
    out.append('{{ template "pigsty_tail" . }}')
    return "\n".join(out) + "\n"


INDEX = """{{/* Managed by Salt (Pigsty on Salt): Prometheus' Consoles link opens /consoles/index.html */}}
<!doctype html>
<html lang="en"><head><meta http-equiv="refresh" content="0; url=pigsty-overview.html"></head>
<body><a href="pigsty-overview.html">Pigsty overview</a></body></html>
"""


def render():
    """{file name: text} of every console page."""
    out = {name: render_page(name) for name in PAGES}
    out["index.html"] = INDEX
    return out


def exprs(values=None):
    """Every PromQL expression of the consoles, with the page parameters and the row keys
    replaced by ``values`` (cls, ins, and a row key per table key): a list of
    (page, title, expr)."""
    values = dict({"cls": "pg-test", "ins": "pg-test-1", "datname": "postgres",
                   "alertname": "PostgresDown", "job": "prometheus", "type": "full"},
                  **(values or {}))
    out = []
    for name, page in PAGES.items():
        for item in page["items"]:
            def sub(expr, key=None):
                expr = re.sub(r"\$(cls|ins)\b", lambda m: values[m.group(1)], _c(expr))
                return expr.replace("%s", values[key]) if key else expr
            if isinstance(item, Table):
                out.append((name, item.title + " (rows)", sub(item.rows)))
                for title, expr, _unit in item.columns:
                    out.append((name, "%s: %s" % (item.title, title), sub(expr, item.key)))
            else:
                for expr, _legend in item.exprs:
                    out.append((name, item.title, sub(expr)))
    return out
