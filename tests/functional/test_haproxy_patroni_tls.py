"""HAProxy's health checks of Patroni over HTTPS, for real: Debian's HAProxy runs the server
line our haproxy.cfg renders (`check port ... check-ssl verify required ca-file ...`)
against a local HTTPS server that answers like Patroni's /replica. With our CA the server is
UP; with a certificate from another CA it is DOWN (the check fails at the TLS layer, L6).
CA and certificates are made with openssl."""
import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

import pigsty_inventory
from local_http import free_port
from pillar_fixture import default_pillar
from render import render_haproxy_cfg


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


class Replica(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_OPTIONS(self):
        self.send_response(200 if self.path == "/replica" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()


def https_server(cert, key):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replica)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    for ca in ("ca", "other"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-subj",
                "/CN=" + ca, "-days", "2", "-out", ca + ".crt", cwd=d)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + "-node.key", "-subj", "/CN=node",
                "-out", ca + "-node.csr", cwd=d)
        with open(os.path.join(d, "ext"), "w") as fh:
            fh.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", ca + "-node.csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", ca + "-node.crt", cwd=d)
    return d


def our_check(ca_file):
    """The health-check options of a checked server line in our rendered haproxy.cfg."""
    cfg = render_haproxy_cfg(pigsty_inventory.instance_config(default_pillar(), "node-2"), ca_file=ca_file)
    line = next(l for l in cfg.splitlines() if l.strip().startswith("server ") and "check port" in l)
    return re.search(r"(check port \d+ .*?)(?: backup)?$", line.strip()).group(1)


def test_haproxy_checks_patroni_over_https_against_the_ca(pki, tmp_path):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    good = https_server(os.path.join(pki, "ca-node.crt"), os.path.join(pki, "ca-node.key"))
    bad = https_server(os.path.join(pki, "other-node.crt"), os.path.join(pki, "other-node.key"))
    backend = socket.socket()                    # the traffic port: anything listening
    backend.bind(("127.0.0.1", 0))
    backend.listen(8)
    check = our_check(os.path.join(pki, "ca.crt"))
    assert "check-ssl verify required ca-file" in check
    sock = str(tmp_path / "admin.sock")
    lines = ["global", "    stats socket %s mode 600 level admin" % sock,
             "defaults", "    mode tcp", "    timeout connect 500ms", "    timeout client 5s",
             "    timeout server 5s", "    timeout check 2s"]
    for name, srv in (("good", good), ("bad", bad)):
        lines += ["listen %s" % name, "    bind 127.0.0.1:%d" % free_port(), "    option httpchk",
                  "    http-check send meth OPTIONS uri /replica", "    http-check expect status 200",
                  "    default-server inter 200ms fastinter 200ms downinter 200ms rise 1 fall 1",
                  "    server s1 127.0.0.1:%d %s" % (backend.getsockname()[1],
                                                    re.sub(r"check port \d+", "check port %d" % srv.server_address[1], check))]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def status():
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock)
                s.sendall(b"show stat\n")
                out = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            rows = [r.split(",") for r in out.decode().splitlines() if r and not r.startswith("#")]
            return {r[0]: (r[17], r[36]) for r in rows if r[1] == "s1"}   # status, check_status
        deadline = time.monotonic() + 15
        seen = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                seen = status()
            except OSError:
                seen = {}
            if seen.get("good", ("",))[0] == "UP" and seen.get("bad", ("",))[0] == "DOWN":
                break
            time.sleep(0.2)
        assert seen.get("good", ("",))[0] == "UP", seen
        assert seen.get("bad", ("",))[0] == "DOWN" and seen["bad"][1].startswith("L6"), seen   # TLS refused
    finally:
        proc.terminate()
        proc.wait(10)
        backend.close()
        good.shutdown()
        bad.shutdown()
