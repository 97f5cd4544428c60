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
