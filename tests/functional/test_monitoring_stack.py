"""Pigsty's monitoring, run for real on loopback.

1. The postgres exporter's query file (salt/pgsql/files/pg_exporter_queries.yml):
Debian's prometheus-postgres-exporter 0.11, run as salt/pgsql/monitor.sls runs it (the
monitor user with pg_monitor, --auto-discover-databases), against a throwaway PostgreSQL 15
primary (pg_stat_statements preloaded, archiving on, a physical slot, a database with a
table) and a streaming standby cloned from it. Every query returns rows where its feature
exists, no query fails, and every postgres metric that a dashboard, console or rule uses is
exported.

2. The whole stack: Debian's Prometheus (with Pigsty's rules and console templates) and
Alertmanager, scraping with Pigsty's target labels (cls, ins, ip, job, role) both postgres
exporters, the role's pgbouncer exporter in front of a real Pgbouncer, node_exporter, etcd and
HAProxy's /metrics (the last four from their unpacked Debian packages:
tests/support/fetch_exporters.sh), and the backup metrics' exporter (node_exporter, textfile
only, with a file rendered from pgBackRest's info). Every dashboard, console and rule expression returns at
least one series (an alert's expression: its metrics exist), every console page renders, and
every metric name of tests/support/exported_metrics.py is exported. Patroni is not run here:
its metric names are checked against its /metrics code from the Debian package."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

import psycopg2
import pytest
import yaml

import pigsty_backup
import pigsty_backup_metrics
import pigsty_consoles
import pigsty_inventory
import pigsty_monitor
from exported_metrics import EXPORTED
import promql
from pillar_fixture import default_pillar
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


# The exporters here speak plain HTTP on loopback: what they export is the subject. Their HTTPS
# with client certificates (--web.config.file, the pgbouncer exporter's --cert...) is run for
# real in test_exporters_https.py.
TRANSPORT_FLAGS = ("--web.listen-address", "--web.config.file")


def exporter_flags():
    """The exporter's flags as monitor.sls sets them, less the listen address, the TLS
    configuration and the path."""
    with open(MONITOR_SLS) as fh:
        text = fh.read()
    line = [a for a in re.findall(r'ARGS="([^"]*)"', text) if "--extend.query-path" in a][0]
    args = re.sub(r"\{\{.*?\}\}", "X", line).split()
    return [a for a in args if not a.startswith(TRANSPORT_FLAGS + ("--extend.query-path",))]


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
    # as monitor.sls runs it: the password in a libpq password file, none in the DSN, the
    # environment or a command line
    pgpass_dir = tempfile.mkdtemp(prefix="pigsty-exporter-pgpass-")
    os.chmod(pgpass_dir, 0o711)             # the exporter runs as postgres: it must reach the file
    pgpass = os.path.join(pgpass_dir, "pgpass")
    with open(pgpass, "w") as fh:
        fh.write("*:*:*:%s:%s\n" % (MON_USER, MON_PASSWORD))
    os.chmod(pgpass, 0o600)
    shutil.chown(pgpass, "postgres", "postgres")
    try:
        for name, inst in zip(("primary", "standby"), cluster):
            port = free_port()
            dsn = ("host=%s port=%d user=%s dbname=postgres sslmode=disable" % (inst.host, inst.port, MON_USER))
            proc = subprocess.Popen(
                ["runuser", "-u", "postgres", "--", EXPORTER,
                 "--web.listen-address=127.0.0.1:%d" % port, "--extend.query-path=" + QUERIES]
                + exporter_flags(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                env=dict(os.environ, DATA_SOURCE_NAME=dsn, PGPASSFILE=pgpass))
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
        shutil.rmtree(pgpass_dir, ignore_errors=True)


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
        used |= {m for m in promql.metric_names(expr) if m.startswith("pg_")}
    assert len(used) > 40
    missing = sorted(used - exported)
    assert not missing, missing


# ------------------------------------------------------------------ the whole stack
ROOT = os.environ.get("PIGSTY_TEST_ROOT", "/var/cache/pigsty-test-root")
VENV_PYTHON = sys.executable
CLS, INS_PRIMARY, INS_REPLICA = "pg-test", "pg-test-1", "pg-test-2"
# `pgbackrest info --output=json` of pgBackRest 2.45: a full and an incr backup of pg-test
BACKUP_INFO = [{"name": CLS, "status": {"code": 0, "message": "ok", "lock": {"backup": {"held": False}}},
                "archive": [{"id": "15-1", "min": "000000010000000000000001",
                             "max": "000000010000000000000008"}],
                "backup": [{"label": "20261202-002655F", "type": "full",
                            "timestamp": {"start": 1796171215, "stop": 1796171222},
                            "info": {"size": 23066293, "repository": {"size": 3057803}},
                            "archive": {"start": "000000010000000000000006",
                                        "stop": "000000010000000000000006"},
                            "lsn": {"start": "0/6000028", "stop": "0/6020460"}, "error": False},
                           {"label": "20261202-002655F_20261202-003000I", "type": "incr",
                            "timestamp": {"start": 1796171400, "stop": 1796171402},
                            "info": {"size": 23066293, "repository": {"size": 12000}},
                            "archive": {"start": "000000010000000000000008",
                                        "stop": "000000010000000000000008"},
                            "lsn": {"start": "0/8000028", "stop": "0/8000100"}, "error": False}]}]


def unpacked(path):
    full = os.path.join(ROOT, path.lstrip("/"))
    if not os.access(full, os.X_OK):
        pytest.fail("%s is missing: run tests/support/fetch_exporters.sh (tests/run.sh does)" % full)
    return full


class Stack:
    """Daemons started as the postgres user or root, stopped in reverse order."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="pigsty-mon-stack-")
        os.chmod(self.base, 0o777)
        self.procs = []

    def path(self, name):
        return os.path.join(self.base, name)

    def write(self, name, text):
        with open(self.path(name), "w") as fh:
            fh.write(text)
        os.chmod(self.path(name), 0o644)
        return self.path(name)

    def start(self, cmd, user=None, env=None):
        if user:
            cmd = ["runuser", "-u", user, "--", "env"] + ["%s=%s" % kv for kv in (env or {}).items()] + cmd
            env = None
        log = open(self.path("%d.log" % len(self.procs)), "w")
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.base)
        proc.log = log.name
        self.procs.append(proc)
        return proc

    def wait(self, url, proc, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("%s exited (rc %s):\n%s" % (proc.args, proc.returncode, open(proc.log).read()[-3000:]))
            try:
                status, _body = get(url)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail("%s did not answer within %ss:\n%s" % (url, timeout, open(proc.log).read()[-3000:]))

    def stop(self):
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.base, ignore_errors=True)


def node_exporter_flags():
    with open(MONITOR_SLS) as fh:
        line = [a for a in re.findall(r'ARGS="([^"]*)"', fh.read()) if "--collector" in a][0]
    return [a for a in re.sub(r"\{\{.*?\}\}", "X", line).split() if not a.startswith(TRANSPORT_FLAGS)]


HAPROXY_CFG = """global
    maxconn 100
defaults
    mode tcp
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    timeout check 3s
listen admin
    bind 127.0.0.1:{admin}
    mode http
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /
listen pg-test-primary
    bind 127.0.0.1:{primary}
    balance roundrobin
    server pg-test-1 127.0.0.1:{pgbouncer} check inter 1s
listen pg-test-replica
    bind 127.0.0.1:{replica}
    balance roundrobin
    server pg-test-2 127.0.0.1:{pgbouncer} check inter 1s
    server pg-test-1 127.0.0.1:{pgbouncer} check inter 1s backup
"""


@pytest.fixture(scope="module")
def stack(cluster, exporters):
    """Every daemon up and scraped by Prometheus; yields (prometheus url, stack)."""
    primary, _standby = cluster
    st = Stack()
    try:
        ports = {k: free_port() for k in ("pgbouncer", "pgb_exporter", "node", "etcd", "etcd_peer",
                                          "haproxy_admin", "haproxy_primary", "haproxy_replica",
                                          "alertmanager", "prometheus", "backup")}
        # Pgbouncer in front of the primary, and the role's exporter on its console
        st.write("userlist.txt", '"postgres" ""\n')
        pgb_ini = st.write("pgbouncer.ini", (
            "[databases]\ntest = host=%s port=%d dbname=test\npostgres = host=%s port=%d dbname=postgres\n"
            "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir = %s\n"
            "auth_type = trust\nauth_file = %s\nadmin_users = postgres\nstats_users = postgres\n"
            "pool_mode = transaction\nlogfile = %s\n") % (
            primary.host, primary.port, primary.host, primary.port, ports["pgbouncer"], st.base,
            st.path("userlist.txt"), st.path("pgbouncer.log")))
        pgb = st.start([unpacked("/usr/sbin/pgbouncer"), pgb_ini], user="postgres",
                       env={"LD_LIBRARY_PATH": os.path.join(ROOT, "usr/lib/x86_64-linux-gnu")})
        deadline = time.monotonic() + 15
        while True:
            try:
                conn = psycopg2.connect(host=st.base, port=ports["pgbouncer"], user="postgres", dbname="test",
                                        connect_timeout=2)
                break
            except psycopg2.Error:
                assert pgb.poll() is None and time.monotonic() < deadline, open(pgb.log).read()
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cur:           # traffic, so that pools and stats have rows
            for _ in range(20):
                cur.execute("SELECT count(*) FROM pgbench_like")
        st.pgb_conn = conn
        exp = st.start([VENV_PYTHON, os.path.join(REPO, "salt", "pgsql", "files", "pgbouncer_exporter.py"),
                        "--listen", "127.0.0.1:%d" % ports["pgb_exporter"], "--socket-dir", st.base,
                        "--port", str(ports["pgbouncer"]), "--user", "postgres"], user="postgres")
        st.wait("http://127.0.0.1:%d/metrics" % ports["pgb_exporter"], exp)
        # node_exporter with the role's flags
        node = st.start([unpacked("/usr/bin/prometheus-node-exporter"),
                         "--web.listen-address=127.0.0.1:%d" % ports["node"]] + node_exporter_flags())
        st.wait("http://127.0.0.1:%d/metrics" % ports["node"], node)
        # the backup metrics' exporter (node_exporter, textfile only) with the file the
        # repository host writes, from pgBackRest 2.45's info of pg-test (a full and an incr
        # backup; tests/functional/test_backup_pitr.py writes it from a real repository)
        os.makedirs(st.path("backup-metrics"))
        pigsty_backup_metrics.write_atomic(
            os.path.join(st.path("backup-metrics"), pigsty_backup_metrics.TEXTFILE_NAME),
            pigsty_backup_metrics.render([(CLS, pigsty_backup.parse_info(BACKUP_INFO, CLS), {
                "schedule": [{"type": "full", "cron": "0 1 * * 0"}], "schedule_start": time.time(),
                "attempt": {"type": "full", "result": True, "time": time.time()},
                "repo_bytes": 3069803, "status_code": 0})], time.time()))
        backup = st.start(pigsty_backup_metrics.exporter_argv(
            ports["backup"], st.path("backup-metrics"), unpacked("/usr/bin/prometheus-node-exporter")))
        st.wait("http://127.0.0.1:%d/metrics" % ports["backup"], backup)
        # etcd, with a key written (proposals, keys)
        etcd = st.start([unpacked("/usr/bin/etcd"), "--name", "meta", "--data-dir", st.path("etcd"),
                         "--listen-client-urls", "http://127.0.0.1:%d" % ports["etcd"],
                         "--advertise-client-urls", "http://127.0.0.1:%d" % ports["etcd"],
                         "--listen-peer-urls", "http://127.0.0.1:%d" % ports["etcd_peer"],
                         "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % ports["etcd_peer"],
                         "--initial-cluster", "meta=http://127.0.0.1:%d" % ports["etcd_peer"],
                         "--enable-v2=true"])
        st.wait("http://127.0.0.1:%d/health" % ports["etcd"], etcd)
        status, _ = get("http://127.0.0.1:%d/v2/keys/pigsty" % ports["etcd"], data=b"value=1")
        # HAProxy with a primary and a replica service through Pgbouncer, /metrics on its admin port
        cfg = st.write("haproxy.cfg", HAPROXY_CFG.format(
            admin=ports["haproxy_admin"], primary=ports["haproxy_primary"],
            replica=ports["haproxy_replica"], pgbouncer=ports["pgbouncer"]))
        ha = st.start([unpacked("/usr/sbin/haproxy"), "-db", "-f", cfg],
                      env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(ROOT, "usr/lib/x86_64-linux-gnu")))
        st.wait("http://127.0.0.1:%d/metrics" % ports["haproxy_admin"], ha)
        # Alertmanager: a receiver that sends nowhere
        am_cfg = st.write("alertmanager.yml", pigsty_monitor.dump(
            {"route": {"receiver": "default"}, "receivers": [{"name": "default"}]}))
        am = st.start(["/usr/bin/prometheus-alertmanager", "--config.file=" + am_cfg,
                       "--web.listen-address=127.0.0.1:%d" % ports["alertmanager"],
                       "--cluster.listen-address=", "--storage.path=" + st.path("am")])
        st.wait("http://127.0.0.1:%d/-/ready" % ports["alertmanager"], am)
        # Prometheus: Pigsty's rules (from the default pillar) and consoles, the targets
        # labelled as _utils/pigsty_monitor.py labels them
        rules = st.write("pigsty-rules.yml", pigsty_monitor.rules_file(
            pigsty_inventory.inventory(default_pillar())))
        urls = {"primary": exporters["primary"][0], "standby": exporters["standby"][0]}

        def target(addr, job, cls=CLS, ins=INS_PRIMARY, role="primary"):
            return {"targets": [addr], "labels": {"cls": cls, "ins": ins, "ip": "127.0.0.1",
                                                  "job": job, "role": role}}
        hostport = lambda url: url.split("/")[2]  # noqa: E731
        groups = [
            target(hostport(urls["primary"]), "pgsql"),
            target(hostport(urls["standby"]), "pgsql", ins=INS_REPLICA, role="replica"),
            target("127.0.0.1:%d" % ports["pgb_exporter"], "pgbouncer"),
            target("127.0.0.1:%d" % ports["node"], "node"),
            target("127.0.0.1:%d" % ports["haproxy_admin"], "haproxy"),
            target("127.0.0.1:%d" % ports["etcd"], "etcd", cls="etcd", ins="meta", role="dcs"),
            target("127.0.0.1:%d" % ports["alertmanager"], "alertmanager", cls="infra", ins="meta", role="infra"),
            target("127.0.0.1:%d" % ports["prometheus"], "prometheus", cls="infra", ins="meta", role="infra"),
        ]
        targets = st.write("targets.yml", pigsty_monitor.dump(groups))
        shutil.copytree(os.path.join(REPO, "salt", "infra", "files", "consoles"), st.path("consoles"))
        shutil.copytree(os.path.join(REPO, "salt", "infra", "files", "console_libraries"),
                        st.path("console_libraries"))
        prom_cfg = st.write("prometheus.yml", pigsty_monitor.dump({
            # 2 s: the postgres exporter's scrape (every database) may take over 1 s on a busy machine
            "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"},
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [
                "127.0.0.1:%d" % ports["alertmanager"]]}]}]},
            "rule_files": [rules],
            "scrape_configs": [{"job_name": "pigsty", "file_sd_configs": [{"files": [targets]}]},
                               # as pigsty_monitor's job "backup": the series keep their cls
                               {"job_name": "backup", "honor_labels": True, "static_configs": [{
                                   "targets": ["127.0.0.1:%d" % ports["backup"]],
                                   "labels": {"cls": "infra", "ins": "meta", "ip": "127.0.0.1",
                                              "job": "backup", "role": "infra"}}]}],
        }))
        prom = st.start(["/usr/bin/prometheus", "--config.file=" + prom_cfg,
                         "--storage.tsdb.path=" + st.path("tsdb"),
                         "--web.listen-address=127.0.0.1:%d" % ports["prometheus"],
                         "--web.console.templates=" + st.path("consoles"),
                         "--web.console.libraries=" + st.path("console_libraries")])
        url = "http://127.0.0.1:%d" % ports["prometheus"]
        st.wait(url + "/-/ready", prom)
        yield url, st
    finally:
        conn = getattr(st, "pgb_conn", None)
        if conn is not None:
            conn.close()
        st.stop()


def prom_query(url, expr):
    status, body = get("%s/api/v1/query?%s" % (url, urllib.parse.urlencode({"query": expr})), timeout=10)
    assert status == 200, (expr, body)
    return json.loads(body)["data"]["result"]


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if not last:
            return
        time.sleep(2)
    pytest.fail("%s after %ss: %s" % (what, timeout, json.dumps(last, indent=1)[:6000]))


PATRONI_API = os.path.join(ROOT, "usr", "lib", "python3", "dist-packages", "patroni", "api.py")


def stack_covers(names):
    """Whether this stack exports every metric of ``names`` (no Patroni here)."""
    return not any(n.startswith("patroni_") for n in names)


def test_every_exported_metric_name_is_real(stack):
    url, _st = stack

    def missing():
        have = set(json.loads(get(url + "/api/v1/label/__name__/values", timeout=10)[1])["data"])
        return sorted(n for n in EXPORTED if not n.startswith("patroni_") and n not in have)

    wait_until(missing, 60, "metric names of exported_metrics.py that no exporter exports")
    if not os.path.exists(PATRONI_API):
        pytest.fail("%s is missing: run tests/support/fetch_exporters.sh" % PATRONI_API)
    with open(PATRONI_API) as fh:
        patroni = set(re.findall(r"patroni_[a-z_]+", fh.read()))
    assert {n for n in EXPORTED if n.startswith("patroni_")} <= patroni


def test_every_dashboard_console_and_rule_expression_returns_data(stack):
    """The local twin of tests/integration/test_observability.py: what a person would see."""
    url, _st = stack
    exprs = pigsty_monitor.all_exprs({"cls": CLS, "ins": INS_PRIMARY})
    assert len(exprs) > 300
    checked = [(w, e) for w, e in exprs if stack_covers(promql.metric_names(e))]
    assert len(checked) > 250

    def empty():
        bad = []
        for where, expr in checked:
            names = promql.metric_names(expr)
            if where.startswith("alert ") or names <= {"ALERTS"}:
                # fires only on a fault: its metrics exist (ALERTS: the rules are loaded)
                probes = ['count({__name__="%s"})' % n for n in names - {"ALERTS"}]
                if "ALERTS" in names:
                    probes.append("sum(prometheus_rule_group_rules)")
            else:
                probes = [expr]
            for probe in probes:
                if not prom_query(url, probe):
                    bad.append((where, probe))
        return bad

    wait_until(empty, 90, "expressions without data")


def test_console_pages_render_with_live_data(stack):
    url, _st = stack
    pages = {"pigsty-overview.html": [CLS, "pigsty-cluster.html?cls=" + CLS],
             "pigsty-cluster.html?cls=" + CLS: ["pigsty-instance.html?ins=" + INS_REPLICA, "primary", "replica"],
             "pigsty-instance.html?ins=" + INS_PRIMARY: ["postgres", "test"],
             "index.html": ["pigsty-overview.html"]}

    def wrong():
        bad = []
        for page, texts in pages.items():
            status, body = get("%s/consoles/%s" % (url, page), timeout=10)
            if status != 200 or "error executing template" in body:
                bad.append((page, status, body[-500:]))
                continue
            bad += [(page, "missing " + t) for t in texts if t not in body]
        return bad

    wait_until(wrong, 60, "console pages")
    for page in pigsty_consoles.PAGES:      # the page's assets are served by this Prometheus
        body = get("%s/consoles/%s" % (url, page))[1]
        for asset in re.findall(r'(?:src|href)="(/classic/static/[^"]+)"', body):
            assert get(url + asset)[0] == 200, asset
