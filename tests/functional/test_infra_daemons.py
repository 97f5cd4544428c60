"""The small daemons and query files the infra work ships, run for real on loopback:
the Alertmanager webhook sink (salt/infra/files/alert_sink.py) and the postgres exporter's
extra queries (salt/pgsql/files/pg_exporter_queries.yml) with Debian's postgres exporter 0.11
against the throwaway PostgreSQL 15 (see conftest)."""
import json
import os
import subprocess
import sys
import time

import pytest

from local_http import free_port, get, wait_http

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORTER = "/usr/bin/prometheus-postgres-exporter"


@pytest.fixture()
def daemon():
    procs = []

    def start(cmd, env=None):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_alert_sink_appends_each_post_as_one_json_line(daemon, tmp_path):
    out = tmp_path / "alerts.jsonl"
    port = free_port()
    proc = daemon([sys.executable, os.path.join(REPO, "salt", "infra", "files", "alert_sink.py"),
                   "--listen", "127.0.0.1:%d" % port, "--file", str(out)])
    status, body = wait_http("http://127.0.0.1:%d/" % port, proc)
    assert status == 200 and json.loads(body)["received"] == 0
    note = {"status": "firing", "alerts": [{"status": "firing", "labels": {
        "alertname": "PgbouncerDown", "ins": "pg-test-2"}}]}
    for status_ in ("firing", "resolved"):
        note["status"] = status_
        status, _ = get("http://127.0.0.1:%d/alerts" % port, json.dumps(note).encode())
        assert status == 200
    status, body = get("http://127.0.0.1:%d/alerts" % port, b"not json")
    assert status == 400
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert [l["body"]["status"] for l in lines] == ["firing", "resolved"]
    assert lines[0]["path"] == "/alerts" and lines[0]["body"]["alerts"][0]["labels"]["ins"] == "pg-test-2"
    assert json.loads(get("http://127.0.0.1:%d/" % port)[1])["received"] == 2


def test_postgres_exporter_exports_the_extra_queries(pg, daemon):
    if not os.access(EXPORTER, os.X_OK):
        pytest.fail("%s is missing (Debian package prometheus-postgres-exporter; tests/run.sh "
                    "installs it)" % EXPORTER)
    queries = os.path.join(REPO, "salt", "pgsql", "files", "pg_exporter_queries.yml")
    port = free_port()
    env = dict(os.environ, DATA_SOURCE_NAME="host=%s port=%d user=postgres dbname=postgres "
                                            "sslmode=disable" % (pg.host, pg.port))
    proc = daemon(["runuser", "-u", "postgres", "--", "env",
                   "DATA_SOURCE_NAME=" + env["DATA_SOURCE_NAME"], EXPORTER,
                   "--web.listen-address=127.0.0.1:%d" % port, "--extend.query-path=" + queries],
                  env=env)
    url = "http://127.0.0.1:%d/metrics" % port
    wait_http(url, proc)
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline:      # the first scrape may precede the connection
        text = get(url, timeout=10)[1]
        if "pg_database_xid_age{" in text and "\npg_up 1" in text:
            break
        time.sleep(0.5)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    for name in ("pg_up", "pg_postmaster_start_time_seconds", "pg_replication_lag",
                 "pg_database_xid_age", "pg_stat_activity_count", "pg_settings_max_connections",
                 "pg_database_size_bytes", "pg_stat_database_xact_commit", "pg_locks_count",
                 "pg_stat_bgwriter_checkpoints_timed_total"):
        assert name in names, name
    assert "pg_exporter_user_queries_load_error{" in text
    assert [l for l in text.splitlines() if l.startswith("pg_exporter_user_queries_load_error{")][0].endswith(" 0")
    assert "\npg_replication_lag{" in text and 'pg_database_xid_age{datname="postgres"' in text


def _render_monitor_sls(pg_vars):
    """salt/pgsql/monitor.sls rendered as Salt would (Jinja, then YAML), map.jinja stubbed,
    the PKI functions from the real module."""
    import jinja2
    import yaml

    import pigsty_pki
    from loader import load_module
    with open(os.path.join(REPO, "salt", "pgsql", "monitor.sls")) as fh:
        text = fh.read()
    env = jinja2.Environment(loader=jinja2.DictLoader({
        "monitor.sls": text, "pgsql/map.jinja": "{% set pg = " + repr(pg_vars) + " %}"}))
    env.filters["json"] = json.dumps
    module = load_module("_modules/pigsty_pki.py", salt={"config.get": lambda key, default=None: default})
    salt = {"pigsty_pki.exporter_tls": module.exporter_tls,
            "pigsty_pki.request": lambda: {"paths": pigsty_pki.paths(), "group": pigsty_pki.SSL_GROUP}}
    return yaml.safe_load(env.get_template("monitor.sls").render(salt=salt))


def _contents(sls, state_id):
    return next(arg["contents"] for arg in sls[state_id]["file.managed"] if "contents" in arg)


# systemd's EnvironmentFile: a value in single quotes without ', \ or a line break is taken
# literally; so is an unquoted one without blanks, quotes, \ or $.
SAFE_ENV_LINE = r"^[A-Z_]+=('[^'\\\n]*'|\"[^\"\\$`\n]*\"|[^\s'\"\\$`]*)$"


@pytest.mark.parametrize("password", ["with space", "it's", 'dq"uote; x', "per%cent:co:lon",
                                      "back\\slash", " lead and trail ", "caf\u00e9,comma"])
def test_postgres_exporter_logs_in_with_a_hostile_monitor_password(pg, daemon, password):
    """The exporter's files as monitor.sls renders them: the password only in the pgpass
    file, escaped; the exporter logs in (pg_up 1) and never prints the password."""
    import re
    import pwd
    if not os.access(EXPORTER, os.X_OK):
        pytest.fail("%s is missing (Debian package prometheus-postgres-exporter; tests/run.sh "
                    "installs it)" % EXPORTER)
    user = "mon_%d" % abs(hash(password))
    pg.query('DROP ROLE IF EXISTS "%s"' % user)
    pg.query('CREATE ROLE "%s" LOGIN PASSWORD %%s' % user, (password,))
    sls = _render_monitor_sls({"pg_port": pg.port, "pg_monitor_username": user,
                               "pg_monitor_password": password, "node_ip": "127.0.0.1",
                               "pg_exporter_port": free_port(), "node_exporter_port": 9100,
                               "pgbouncer_exporter_port": 9631, "pgbouncer_port": 6432,
                               "pg_dbsu": "postgres"})
    env_file = _contents(sls, "pg-exporter-env")
    assert password not in env_file
    settings = {}
    for line in env_file.splitlines():
        if line and not line.startswith("#"):
            assert re.match(SAFE_ENV_LINE, line), line
            key, value = line.split("=", 1)
            settings[key] = value.strip("'\"")
    pgpass = os.path.join(pg.host, "exporter.pgpass")       # a directory postgres can read
    with open(pgpass, "w") as fh:
        fh.write(_contents(sls, "pg-exporter-pgpass"))
    postgres = pwd.getpwnam("postgres")
    os.chown(pgpass, postgres.pw_uid, postgres.pw_gid)
    os.chmod(pgpass, 0o600)
    dsn = settings["DATA_SOURCE_NAME"].replace("host=/var/run/postgresql", "host=" + pg.host)
    port = free_port()
    proc = daemon(["runuser", "-u", "postgres", "--", "env", "DATA_SOURCE_NAME=" + dsn,
                   "PGPASSFILE=%s" % pgpass, EXPORTER, "--web.listen-address=127.0.0.1:%d" % port])
    url = "http://127.0.0.1:%d/metrics" % port
    wait_http(url, proc)
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline and "\npg_up 1" not in text:
        text = get(url, timeout=10)[1]
        time.sleep(0.3)
    proc.terminate()
    _out, err = proc.communicate(timeout=10)
    assert "\npg_up 1" in text, err[-2000:].replace(password, "***")
    assert password not in err
    pg.query('DROP ROLE "%s"' % user)
