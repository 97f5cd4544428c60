"""The exporters of a database node over HTTPS with client certificates, for real (issue 12).

Debian 12's node_exporter 1.5 (unpacked by tests/support/fetch_exporters.sh), Debian's postgres
exporter 0.11 and the role's pgbouncer exporter run on loopback with the arguments, the web
configuration and the unit line that salt/pgsql/monitor.sls renders for node-2 (its PKI
directory moved to a throwaway CA's files: the minion option pigsty_pki_dir; the listen
addresses moved to loopback ports). Each one:
- answers HTTPS with node-2's certificate, which verifies against the CA for the address;
- refuses a client without a certificate, and one with a certificate of another CA;
- gives no metrics to plain HTTP;
- serves a renewed certificate (new key too) at the next connection, without a restart.
Debian's Prometheus scrapes the three with the rendered `pgsql` job (its tls_config pointed at
the meta node's certificate of the same CA) over targets made by pigsty_monitor: up == 1,
before and after the renewal. The postgres exporter reads the functional tests' throwaway
PostgreSQL (pg_up 1); no pgbouncer runs (pgbouncer_up 0). What the exporters export is tested
in test_monitoring_stack.py."""
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time

import pytest
import yaml

import pigsty_inventory
import pigsty_monitor
import pigsty_pki
from loader import load_module
from local_http import free_port, get
from pillar_fixture import REPO, default_pillar
from render import render_state, state_arg
from throwaway_ca import CA

ROOT = os.environ.get("PIGSTY_TEST_ROOT", "/var/cache/pigsty-test-root")
NODE_EXPORTER = os.path.join(ROOT, "usr/bin/prometheus-node-exporter")
PG_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
PROMETHEUS = "/usr/bin/prometheus"
PGB_EXPORTER = os.path.join(REPO, "salt", "pgsql", "files", "pgbouncer_exporter.py")
QUERIES = os.path.join(REPO, "salt", "pgsql", "files", "pg_exporter_queries.yml")
# what each exporter exports whatever it monitors
METRIC = {"node": "node_exporter_build_info", "pgsql": "pg_up 1", "pgbouncer": "pgbouncer_up 0"}
NODE_NAMES = (["node-2"], ["10.10.10.12", "127.0.0.1"])


def _args(line):
    return shlex.split(re.search(r'ARGS="([^"]*)"', line).group(1))


def _rendered(pki_dir, ports):
    """monitor.sls for node-2 with its PKI in ``pki_dir`` and its exporters on ``ports``."""
    conf = pigsty_inventory.instance_config(default_pillar(), "node-2")
    conf.update(node_ip="127.0.0.1", node_exporter_port=ports["node"], pg_exporter_port=ports["pgsql"],
                pgbouncer_exporter_port=ports["pgbouncer"])
    module = load_module("_modules/pigsty_pki.py", salt={
        "config.get": lambda key, default=None: pki_dir if key == "pigsty_pki_dir" else default})
    salt = {"pigsty.config": lambda: conf, "pigsty_pki.exporter_tls": module.exporter_tls,
            "pigsty_pki.request": lambda: {"paths": pigsty_pki.paths(pki_dir), "group": pigsty_pki.SSL_GROUP}}
    return yaml.safe_load(render_state("pgsql/monitor.sls", salt))


def _context(ca_file, cert=None):
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert:
        ctx.load_cert_chain(cert["node_crt"], cert["node_key"])
    return ctx


def fetch(port, ctx, timeout=10):
    """(status, body, the server's certificate in DER) of GET /metrics over HTTPS."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        der = conn.sock.getpeercert(binary_form=True)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), der
    finally:
        conn.close()


def _der(path):
    with open(path) as fh:
        return ssl.PEM_cert_to_DER_cert(fh.read())


@pytest.fixture(scope="module")
def exporters(tmp_path_factory, pg):
    for binary in (NODE_EXPORTER, PG_EXPORTER, PROMETHEUS):
        if not os.access(binary, os.X_OK):
            pytest.fail("%s is missing (tests/run.sh installs it; fetch_exporters.sh unpacks node_exporter)"
                        % binary)
    tmp = tmp_path_factory.mktemp("exporters-https")
    ca = CA(str(tmp / "ca"))
    pki_dir = str(tmp / "pki")
    server = ca.node(pki_dir, "node-2", *NODE_NAMES)
    meta = ca.node(str(tmp / "meta"), "meta", ["meta"], ["10.10.10.10", "127.0.0.1"])
    other_ca = CA(str(tmp / "other"), cn="Other CA")
    stranger = other_ca.node(str(tmp / "stranger"), "meta", ["meta"], ["10.10.10.10", "127.0.0.1"])
    ports = {job: free_port() for job in ("node", "pgsql", "pgbouncer")}
    sls = _rendered(pki_dir, ports)
    web = state_arg(sls, "exporter-web-config", "name")
    (tmp / "exporter_web.yml").write_text(state_arg(sls, "exporter-web-config", "contents"))

    def local(args):
        """The rendered arguments, with the node's paths moved to the scratch files."""
        return [a.replace(web, str(tmp / "exporter_web.yml")).replace(
            "/etc/pigsty/pg_exporter_queries.yml", QUERIES) for a in args]
    node_args = local(_args(state_arg(sls, "node-exporter-args", "contents")))
    pg_env = state_arg(sls, "pg-exporter-env", "contents")
    pg_args = local(_args(pg_env))
    unit = state_arg(sls, "pgbouncer-exporter-unit", "contents")
    pgb_args = shlex.split(re.search(r"^ExecStart=/usr/local/bin/pigsty-pgbouncer-exporter (.*)$", unit,
                                     re.M).group(1))
    assert "--web.config.file=%s" % (tmp / "exporter_web.yml") in node_args and \
        "--web.config.file=%s" % (tmp / "exporter_web.yml") in pg_args
    assert "--client-ca" in pgb_args and server["node_key"] in pgb_args
    (tmp / "sockets").mkdir()
    cmds = {
        "node": [NODE_EXPORTER] + node_args,
        "pgsql": [PG_EXPORTER] + pg_args,
        "pgbouncer": [sys.executable, PGB_EXPORTER] + pgb_args + ["--socket-dir", str(tmp / "sockets")],
    }
    # the throwaway PostgreSQL trusts postgres on its socket
    env = dict(os.environ, DATA_SOURCE_NAME="host=%s port=%d user=postgres dbname=postgres sslmode=disable"
               % (pg.host, pg.port))
    procs = {}
    for job, cmd in cmds.items():
        with open(tmp / ("%s.log" % job), "w") as log:
            procs[job] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    ok = _context(server["ca_crt"], meta)
    try:
        for job, port in ports.items():
            deadline = time.monotonic() + 30
            while True:
                try:
                    status, body, _der = fetch(port, ok, timeout=5)
                    if status == 200 and METRIC[job] in body:
                        break
                except OSError:
                    pass
                if procs[job].poll() is not None or time.monotonic() > deadline:
                    pytest.fail("%s did not answer HTTPS: %s"
                                % (job, (tmp / ("%s.log" % job)).read_text()[-3000:]))
                time.sleep(0.3)
        yield {"tmp": tmp, "ca": ca, "server": server, "meta": meta, "stranger": stranger,
               "ports": ports, "ok": ok, "procs": procs}
    finally:
        for proc in procs.values():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


JOBS = ("node", "pgsql", "pgbouncer")


@pytest.mark.parametrize("job", JOBS)
def test_https_with_the_node_certificate_that_verifies_against_the_ca(exporters, job):
    status, body, der = fetch(exporters["ports"][job], exporters["ok"])
    assert status == 200 and METRIC[job] in body, body[-500:]
    assert der == _der(exporters["server"]["node_crt"])


@pytest.mark.parametrize("job", JOBS)
def test_a_client_without_a_certificate_gets_nothing(exporters, job):
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        fetch(exporters["ports"][job], _context(exporters["server"]["ca_crt"]))


@pytest.mark.parametrize("job", JOBS)
def test_a_client_certificate_of_another_ca_gets_nothing(exporters, job):
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        fetch(exporters["ports"][job], _context(exporters["server"]["ca_crt"], exporters["stranger"]))


@pytest.mark.parametrize("job", JOBS)
def test_plain_http_gets_no_metrics(exporters, job):
    try:
        status, body = get("http://127.0.0.1:%d/metrics" % exporters["ports"][job], timeout=5)
    except (OSError, http.client.HTTPException):
        return                         # the pgbouncer exporter: the handshake fails, it hangs up
    # exporter-toolkit: Go's answer to plain HTTP on a TLS port
    assert status == 400 and "HTTP request to an HTTPS server" in body, (status, body)


@pytest.mark.parametrize("job", JOBS)
def test_tls_older_than_1_2_is_refused(exporters, job):
    old = _context(exporters["server"]["ca_crt"], exporters["meta"])
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with old.wrap_socket(socket.create_connection(("127.0.0.1", exporters["ports"][job]), 3),
                             server_hostname="127.0.0.1"):
            pass


def _targets(url):
    status, body = get(url + "/api/v1/targets?state=active", timeout=5)
    if status == 503:
        return {}           # Prometheus answers 503 until it is ready (slow on a busy machine)
    assert status == 200, body
    return {t["labels"]["job"]: t for t in json.loads(body)["data"]["activeTargets"]}


def _wait_up(url, since=0.0, timeout=60):
    """Every target up with a scrape that started after ``since`` (epoch seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            health = _targets(url)
        except OSError:
            health = {}
        fresh = {job: t for job, t in health.items() if t["health"] == "up" and
                 t["lastScrape"][:1] != "0" and _epoch(t["lastScrape"]) > since}
        if set(fresh) == set(JOBS):
            return health
        if time.monotonic() > deadline:
            pytest.fail("targets not up within %ss: %s" % (timeout, json.dumps(health, indent=1)[:4000]))
        time.sleep(0.5)


def _epoch(rfc3339):
    """Seconds since the epoch of Prometheus' lastScrape (RFC 3339, nanoseconds, a zone)."""
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", rfc3339)
    base = datetime.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + float("0" + (m.group(2) or ""))


@pytest.fixture(scope="module")
def prometheus(exporters):
    """Debian's Prometheus with the rendered pgsql job over pigsty_monitor's targets of
    pg-test-2 (node, pgsql, pgbouncer) moved to the loopback ports; yields its URL."""
    tmp, meta = exporters["tmp"], exporters["meta"]
    inv = pigsty_inventory.inventory(default_pillar())
    groups = [g for g in pigsty_monitor.cluster_targets(inv, "pg-test")
              if g["labels"]["ins"] == "pg-test-2" and g["labels"]["job"] in JOBS]
    assert len(groups) == 3
    for g in groups:
        assert g["targets"][0].startswith("10.10.10.12:")
        g["targets"] = ["127.0.0.1:%d" % exporters["ports"][g["labels"]["job"]]]
    (tmp / "targets").mkdir()
    (tmp / "targets" / "pg-test.json").write_text(pigsty_monitor.targets_file(groups))
    cfg = pigsty_monitor.prometheus_config(inv)
    job = [j for j in cfg["scrape_configs"] if j["job_name"] == "pgsql"][0]
    defaults = pigsty_pki.paths()
    assert job["scheme"] == "https" and job["tls_config"] == {
        "ca_file": defaults["ca_crt"], "cert_file": defaults["node_crt"], "key_file": defaults["node_key"]}
    job["tls_config"] = {"ca_file": meta["ca_crt"], "cert_file": meta["node_crt"],
                         "key_file": meta["node_key"]}
    job["file_sd_configs"] = [dict(job["file_sd_configs"][0], files=[str(tmp / "targets" / "*.json")],
                                   refresh_interval="1s")]
    (tmp / "prometheus.yml").write_text(pigsty_monitor.dump(
        # 2 s: the postgres exporter's scrape (every database) may take over 1 s on a busy machine
        {"global": dict(cfg["global"], scrape_interval="2s", scrape_timeout="2s"), "scrape_configs": [job]}))
    port = free_port()
    with open(tmp / "prometheus.log", "w") as log:
        proc = subprocess.Popen([PROMETHEUS, "--config.file=%s" % (tmp / "prometheus.yml"),
                                 "--storage.tsdb.path=%s" % (tmp / "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        yield "http://127.0.0.1:%d" % port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_prometheus_scrapes_every_exporter_over_https_with_its_certificate(prometheus):
    health = _wait_up(prometheus)
    for job in JOBS:
        assert health[job]["scrapeUrl"].startswith("https://127.0.0.1:"), health[job]
        assert health[job]["labels"]["ins"] == "pg-test-2" and health[job]["labels"]["cls"] == "pg-test"
    status, body = get(prometheus + "/api/v1/query?query=up", timeout=5)
    ups = {r["metric"]["job"]: r["value"][1] for r in json.loads(body)["data"]["result"]}
    assert ups == {"node": "1", "pgsql": "1", "pgbouncer": "1"}


def test_a_renewed_certificate_is_served_at_the_next_connection_without_a_restart(exporters, prometheus):
    _wait_up(prometheus)
    before = _der(exporters["server"]["node_crt"])
    renewed_at = time.time()
    # node.pki's renewal rewrites node.crt (this rewrites node.key too: a harder case)
    exporters["ca"].node(os.path.dirname(exporters["server"]["node_crt"]), "node-2", *NODE_NAMES)
    after = _der(exporters["server"]["node_crt"])
    assert after != before
    for job in JOBS:
        deadline = time.monotonic() + 10
        while True:
            status, body, der = fetch(exporters["ports"][job], exporters["ok"])
            if der == after or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert der == after and status == 200 and METRIC[job] in body, job
        assert exporters["procs"][job].poll() is None, job       # the same process
    # and Prometheus keeps scraping them
    _wait_up(prometheus, since=renewed_at + 1)
