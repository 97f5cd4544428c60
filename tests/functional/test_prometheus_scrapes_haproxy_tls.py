"""Prometheus scrapes HAProxy's /metrics over HTTPS, for real: Debian's HAProxy runs the admin
section of the rendered haproxy.cfg (node-2's) with a node certificate of a throwaway CA,
and Debian's Prometheus runs the `pgsql` scrape job of pigsty_monitor.prometheus_config
(https; its tls_config pointed at the throwaway CA and a meta node certificate of it) over a
file_sd file made by pigsty_monitor.cluster_targets. The target is up; a second HTTPS server
with a certificate of another CA, listed the same way, is down with a certificate error: Prometheus verifies, it does not just encrypt."""
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time

import pytest

import pigsty_inventory
import pigsty_monitor
from local_http import free_port, get
from pillar_fixture import default_pillar
from render import render_haproxy_cfg
from throwaway_ca import CA


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"stranger_up 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _start(cmd, log):
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    for binary in ("/usr/sbin/haproxy", "/usr/bin/prometheus"):
        if not os.access(binary, os.X_OK):
            pytest.fail("%s is not installed (tests/run.sh installs it)" % binary)
    tmp = tmp_path_factory.mktemp("prom-haproxy-tls")
    os.chmod(tmp, 0o755)
    ca = CA(str(tmp / "ca"))
    pki = ca.node(str(tmp / "pki"), "node-2", ["node-2"], ["10.10.10.12", "127.0.0.1"])
    pillar = default_pillar()
    inv = pigsty_inventory.inventory(pillar)
    conf = pigsty_inventory.instance_config(pillar, "node-2")
    # HAProxy: global, defaults, userlist and the admin section as rendered, on a loopback port
    head = render_haproxy_cfg(conf, ca_file=pki["ca_crt"], node_crt=pki["node_crt"]).split("\nlisten pg-test-")[0]
    port = free_port()
    head = re.sub(r"\n    bind %s:9101 [^\n]*" % re.escape(conf["node_ip"]), "", head)
    head = head.replace("127.0.0.1:9101", "127.0.0.1:%d" % port)
    head = head.replace("/run/haproxy/admin.sock", str(tmp / "admin.sock")).replace(
        "/var/lib/haproxy/server-state", str(tmp / "state")).replace("log /dev/log local0 notice", "")
    (tmp / "haproxy.cfg").write_text(head + "\n")
    procs = [_start(["/usr/sbin/haproxy", "-db", "-f", str(tmp / "haproxy.cfg")], str(tmp / "haproxy.log"))]
    # a server with a certificate of another CA (same names)
    other = CA(str(tmp / "other"), cn="Other CA").node(str(tmp / "other-pki"), "node-2", ["node-2"],
                                                       ["10.10.10.12", "127.0.0.1"])
    stranger = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(other["node_crt"], other["node_key"])
    stranger.socket = ctx.wrap_socket(stranger.socket, server_side=True)
    threading.Thread(target=stranger.serve_forever, daemon=True).start()
    # the targets as pigsty_monitor writes them: node-2's haproxy group, on loopback
    group = [g for g in pigsty_monitor.cluster_targets(inv, "pg-test")
             if g["labels"]["job"] == "haproxy" and g["labels"]["ins"] == "pg-test-2"][0]
    ours = dict(group, targets=["127.0.0.1:%d" % port])
    theirs = {"targets": ["127.0.0.1:%d" % stranger.server_port], "labels": dict(group["labels"], ins="stranger")}
    (tmp / "targets").mkdir()
    (tmp / "targets" / "pg-test.json").write_text(pigsty_monitor.targets_file([ours, theirs]))
    # Prometheus: the rendered pgsql job (file_sd and the CA moved to the scratch directory)
    cfg = pigsty_monitor.prometheus_config(inv)
    job = [j for j in cfg["scrape_configs"] if j["job_name"] == "pgsql"][0]
    assert job["scheme"] == "https" and job["tls_config"]["ca_file"] == "/etc/pki/pigsty/ca.crt"
    # the meta node's certificate, which the job presents to servers that ask (HAProxy does not)
    meta = ca.node(str(tmp / "meta"), "meta", ["meta"], ["10.10.10.10", "127.0.0.1"])
    job["tls_config"] = {"ca_file": pki["ca_crt"], "cert_file": meta["node_crt"], "key_file": meta["node_key"]}
    job["file_sd_configs"] = [dict(job["file_sd_configs"][0], files=[str(tmp / "targets" / "*.json")],
                                   refresh_interval="1s")]
    prom_cfg = {"global": dict(cfg["global"], scrape_interval="1s", scrape_timeout="1s"),
                "scrape_configs": [job]}
    (tmp / "prometheus.yml").write_text(pigsty_monitor.dump(prom_cfg))
    prom_port = free_port()
    procs.append(_start(["/usr/bin/prometheus", "--config.file=%s" % (tmp / "prometheus.yml"),
                         "--storage.tsdb.path=%s" % (tmp / "tsdb"),
                         "--web.listen-address=127.0.0.1:%d" % prom_port], str(tmp / "prometheus.log")))
    url = "http://127.0.0.1:%d" % prom_port
    try:
        deadline = time.monotonic() + 60
        while True:
            health = {}
            try:
                status, body = get(url + "/api/v1/targets?state=active")
                if status == 200:
                    health = {t["labels"]["ins"]: t for t in json.loads(body)["data"]["activeTargets"]}
            except OSError:
                pass
            done = set(health) == {"pg-test-2", "stranger"} and all(
                t["health"] != "unknown" for t in health.values())
            if done:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                logs = "".join((tmp / n).read_text()[-2000:] for n in ("haproxy.log", "prometheus.log"))
                pytest.fail("no scrape result within 60 s: %s\n%s" % (health, logs))
            time.sleep(0.5)
        yield health
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        stranger.shutdown()
        stranger.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_prometheus_scrapes_haproxy_over_https_against_the_ca(scraped):
    ours = scraped["pg-test-2"]
    assert ours["health"] == "up", ours
    assert ours["scrapeUrl"].startswith("https://127.0.0.1:") and ours["scrapeUrl"].endswith("/metrics")
    assert ours["labels"]["job"] == "haproxy" and "__scheme__" not in ours["labels"]


def test_a_certificate_of_another_ca_is_refused(scraped):
    theirs = scraped["stranger"]
    assert theirs["health"] == "down", theirs
    assert "x509" in theirs["lastError"] or "certificate" in theirs["lastError"], theirs["lastError"]
