"""The portal over HTTPS and its login, for real: Debian's Nginx runs the rendered nginx.conf
on loopback (its paths and ports moved to a scratch directory) with the htpasswd file that
pigsty_web.portal_htpasswd makes from the meta node's pillar and a certificate of a
throwaway CA whose names are the ones pigsty_pki gives the meta node (so the portal's
domains verify only if the PKI code puts them in the meta certificate).

- HTTPS: every virtual host verifies against the CA under its own domain; the portal and
  the Prometheus page ask for the login; the package repository, Grafana's page (its own
  login) and the HAProxy pages (their cluster's login) do not.
- Plain HTTP: the package repository only (apt); everything else is a 301 to HTTPS, and no
  login is asked there.
- The HAProxy pages go to each node's HAProxy over HTTPS and verify its certificate against
  the CA for the node's name: a local HTTPS server with node-1's certificate passes, one
  with a certificate of another CA or of another node's name gets 502.

Prometheus and Alertmanager are replaced by one local plain server that answers 200 (they
listen on meta's loopback), so nothing leaves loopback and a 401 can only come from Nginx."""
import http.server
import os
import pathlib
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import jinja2
import pytest

import pigsty_crypt
import pigsty_inventory
import pigsty_pki
from loader import load_module
from local_http import free_port
from pillar_fixture import REPO, meta_pillar
from pinned_https import request
from throwaway_ca import CA

PORTAL = ("admin", "Sandbox.Portal")


class _Backend(http.server.BaseHTTPRequestHandler):
    """Stands in for every proxied page: 200, the path it was asked for and who it is."""
    name = "plain"

    def do_GET(self):  # noqa: N802 - http.server's name
        body = ("backend %s %s\n" % (self.server.name, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _backend(name, cert=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    srv.name = name
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert["node_crt"], cert["node_key"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _sans(text):
    """pigsty_pki's subjectAltName string -> (DNS names, IP addresses)."""
    items = [i.strip().split(":", 1) for i in text.split(",")]
    return [v for k, v in items if k == "DNS"], [v for k, v in items if k == "IP"]


def _pigsty_module(pillar):
    return load_module("_modules/pigsty.py", "pigsty_module_meta_login", pillar=pillar, opts={"id": "meta"},
                       grains={}, salt={})


@pytest.fixture(scope="module")
def nginx():
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(binary, os.X_OK):
        pytest.fail("nginx is not installed (tests/run.sh installs it)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pigsty-nginx-login-"))
    os.chmod(tmp, 0o755)          # nginx's workers (nobody here, www-data on meta) read it
    pillar = meta_pillar()
    inv = pigsty_inventory.inventory(pillar)
    # the meta node's certificate with the names pigsty_pki gives it; node-1's for its HAProxy
    ca = CA(str(tmp / "ca"))
    names = pigsty_pki.node_names(inv, "meta")
    dns, ips = _sans(names["subjectAltName"])
    pki = ca.node(str(tmp / "pki"), names["CN"], dns, ips)
    node1 = ca.node(str(tmp / "node-1"), "node-1", *_sans(pigsty_pki.node_names(inv, "node-1")["subjectAltName"]))
    stranger = CA(str(tmp / "other"), cn="Other CA").node(str(tmp / "other-node"), "node-2", ["node-2"],
                                                         ["10.10.10.12"])
    wrong_name = ca.node(str(tmp / "node-9"), "node-9", ["node-9"], ["10.10.10.99"])
    mod = _pigsty_module(pillar)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(REPO, "salt")), undefined=jinja2.StrictUndefined)
    text = env.get_template("infra/files/nginx.conf.jinja").render(
        salt={"pigsty.%s" % n: getattr(mod, n) for n in ("nginx", "infra", "repo", "grafana", "dns_records")})
    web = load_module("_modules/pigsty_web.py", pillar=pillar)
    htpasswd = tmp / "pigsty.htpasswd"
    htpasswd.write_text(web.portal_htpasswd(path=str(htpasswd)))
    os.chmod(htpasswd, 0o644)     # on meta: 0640 root:www-data (nginx.sls); here workers are nobody
    home = tmp / "www"
    (home / "pigsty").mkdir(parents=True)
    (home / "haproxy").mkdir(parents=True)
    (home / "index.html").write_text("portal\n")
    (home / "haproxy" / "index.html").write_text("haproxy pages\n")
    (home / "pigsty" / "Packages").write_text("Package: x\n")
    port, ssl_port = free_port(), free_port()
    ngx = mod.nginx()
    text, n80 = re.subn(r"listen %d( default_server)?;" % ngx["port"],
                        lambda m: "listen 127.0.0.1:%d%s;" % (port, m.group(1) or ""), text)
    text, n443 = re.subn(r"listen %d ssl( default_server)?;" % ngx["ssl_port"],
                         lambda m: "listen 127.0.0.1:%d ssl%s;" % (ssl_port, m.group(1) or ""), text)
    assert n80 == 1 and n443 >= 4, (n80, n443)      # HTTP: one server; HTTPS: the portal and vhosts
    for key in ("cert", "key", "ca"):
        assert text.count(ngx[key]) >= 1, key
    text = (text.replace(ngx["cert"], pki["node_crt"]).replace(ngx["key"], pki["node_key"])
            .replace(ngx["ca"], pki["ca_crt"]))
    text = text.replace("/etc/nginx/pigsty.htpasswd", str(htpasswd)).replace("root %s" % ngx["home"], "root %s" % home)
    text = text.replace("user www-data;", "").replace("/run/nginx.pid", str(tmp / "nginx.pid"))
    plain = _backend("plain")
    good, bad_ca, bad_name = _backend("node-1", node1), _backend("stranger", stranger), _backend("node-9", wrong_name)
    text, proxied = re.subn(r"proxy_pass http://[^/;]+", "proxy_pass http://127.0.0.1:%d" % plain.server_port, text)
    assert proxied >= 2, "no plain proxy_pass found in the rendered nginx.conf"
    # the HAProxy pages: pg-test-1 (node-1) to a server with node-1's certificate, pg-test-2
    # (node-2) to one of another CA, pg-test-3 (node-3) to one of our CA for another name
    for ins, srv in (("pg-test-1", good), ("pg-test-2", bad_ca), ("pg-test-3", bad_name)):
        upstream = [h["upstream"] for h in ngx["haproxy"] if h["ins"] == ins][0]
        assert "proxy_pass https://%s/;" % upstream in text, ins
        text = text.replace("proxy_pass https://%s/;" % upstream, "proxy_pass https://127.0.0.1:%d/;" % srv.server_port)
        # the live portal's Patroni view of the same member: the same checks
        upstream = [p["upstream"] for p in ngx["patroni"] if p["ins"] == ins][0]
        assert "proxy_pass https://%s/cluster;" % upstream in text, ins
        text = text.replace("proxy_pass https://%s/cluster;" % upstream,
                            "proxy_pass https://127.0.0.1:%d/cluster;" % srv.server_port)
    live = tmp / "live"
    (live / "events").mkdir(parents=True)
    (live / "pg-test.json").write_text('{"pg-test-1": "primary"}\n')
    assert "alias %s/;" % ngx["live_dir"] in text
    text = text.replace("alias %s/;" % ngx["live_dir"], "alias %s/;" % live)
    text = re.sub(r"(error|access)_log [^;]+;", lambda m: "%s_log %s/%s.log;" % (m.group(1), tmp, m.group(1)), text)
    conf = tmp / "nginx.conf"
    conf.write_text(text)
    out = tmp / "nginx.out"   # a file, not a pipe: a worker left behind would hold a pipe open
    with open(out, "w") as fh:
        proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
                                stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            request("127.0.0.1", port, "pigsty", "/", scheme="http")
            request("127.0.0.1", ssl_port, "127.0.0.1", "/", cafile=pki["ca_crt"])
            break
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.terminate()      # the master stops its workers
                proc.wait(10)
                pytest.fail("nginx did not answer: %s\n%s\n%s" % (exc, out.read_text()[-2000:], (
                    tmp / "error.log").read_text()[-2000:] if (tmp / "error.log").exists() else ""))
            time.sleep(0.1)
    try:
        yield {"port": port, "ssl_port": ssl_port, "htpasswd": htpasswd, "web": web, "pki": pki, "live": live,
               "other_ca": str(tmp / "other" / "ca.crt"), "ngx": ngx, "tmp": tmp}
    finally:
        proc.terminate()
        proc.wait(10)
        for srv in (plain, good, bad_ca, bad_name):
            srv.shutdown()
            srv.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


def _https(nginx, host, path="/", auth=None):
    status, _headers, body = request("127.0.0.1", nginx["ssl_port"], host, path, cafile=nginx["pki"]["ca_crt"],
                                     auth=auth)
    return status, body


def _http(nginx, host, path="/"):
    status, headers, _body = request("127.0.0.1", nginx["port"], host, path, scheme="http")
    return status, headers.get("location")


def test_every_domain_verifies_against_the_ca_under_its_own_name(nginx):
    domains = [nginx["ngx"]["home_domain"], nginx["ngx"]["haproxy_domain"]] + [
        p["domain"] for p in nginx["ngx"]["proxies"]]
    assert sorted(domains) == ["a.pigsty", "g.pigsty", "h.pigsty", "p.pigsty", "pigsty"]
    for domain in domains:
        assert _https(nginx, domain)[0] in (200, 401, 503), domain     # the TLS handshake verified
    # the meta node's address and loopback are in the certificate too
    assert _https(nginx, "127.0.0.1")[0] == 401
    # a name the certificate does not hold is refused by the client
    with pytest.raises(ssl.SSLCertVerificationError):
        _https(nginx, "x.pigsty")
    # and a client that trusts another CA refuses the portal
    with pytest.raises(ssl.SSLCertVerificationError):
        request("127.0.0.1", nginx["ssl_port"], "pigsty", "/", cafile=nginx["other_ca"])


def test_the_portal_asks_for_the_login_over_https(nginx):
    assert _https(nginx, "pigsty")[0] == 401
    assert _https(nginx, "pigsty", auth=("admin", "wrong"))[0] == 401
    assert _https(nginx, "pigsty", auth=PORTAL) == (200, "portal\n")
    assert _https(nginx, "p.pigsty")[0] == 401                      # Prometheus' page
    assert _https(nginx, "p.pigsty", auth=PORTAL) == (200, "backend plain /\n")
    assert _https(nginx, "a.pigsty")[0] == 401                      # Alertmanager's page
    assert _https(nginx, "a.pigsty", "/-/ready", auth=PORTAL) == (200, "backend plain /-/ready\n")
    assert _https(nginx, "h.pigsty")[0] == 401                      # the HAProxy index
    assert _https(nginx, "h.pigsty", auth=PORTAL) == (200, "haproxy pages\n")


def test_plain_http_serves_nothing_and_redirects_everything(nginx):
    # the repository too: apt on every node reads it over HTTPS with the CA
    assert _http(nginx, "10.10.10.10", "/pigsty/Packages") == (301, "https://10.10.10.10/pigsty/Packages")
    # everything: 301 to the same host and path over HTTPS, before any login is asked
    assert _http(nginx, "pigsty") == (301, "https://pigsty/")
    assert _http(nginx, "p.pigsty", "/graph?g0.expr=up") == (301, "https://p.pigsty/graph?g0.expr=up")
    assert _http(nginx, "a.pigsty", "/-/ready") == (301, "https://a.pigsty/-/ready")
    assert _http(nginx, "h.pigsty", "/pg-test-1/") == (301, "https://h.pigsty/pg-test-1/")
    assert _http(nginx, "10.10.10.10") == (301, "https://10.10.10.10/")
    assert _http(nginx, "g.pigsty") == (301, "https://g.pigsty/")
    # the login is never asked over plain HTTP
    text = request("127.0.0.1", nginx["port"], "pigsty", "/", scheme="http")
    assert "www-authenticate" not in text[1]


def test_what_has_its_own_login_or_is_public_is_not_asked(nginx):
    assert _https(nginx, "pigsty", "/pigsty/Packages") == (200, "Package: x\n")    # the repository
    # as apt on the nodes asks for it: the meta node's address, verified with the CA
    assert _https(nginx, "10.10.10.10", "/pigsty/Packages") == (200, "Package: x\n")
    assert _https(nginx, "g.pigsty")[0] in (200, 503)                # Grafana asks its own (503: not installed)


def test_haproxy_pages_go_over_https_verified_for_the_nodes_name(nginx):
    # pg-test-1: node-1's certificate from our CA, checked for the name node-1: passes (no portal login)
    assert _https(nginx, "h.pigsty", "/pg-test-1/;csv") == (200, "backend node-1 /;csv\n")
    # pg-test-2: a certificate of another CA; pg-test-3: our CA but another node's name
    assert _https(nginx, "h.pigsty", "/pg-test-2/")[0] == 502
    assert _https(nginx, "h.pigsty", "/pg-test-3/")[0] == 502
    log = (nginx["tmp"] / "error.log").read_text()
    assert "upstream SSL certificate verify error" in log
    assert "upstream SSL certificate does not match \"node-3\"" in log


def test_the_htpasswd_holds_a_hash_kept_while_it_verifies(nginx):
    text = nginx["htpasswd"].read_text()
    assert "Sandbox.Portal" not in text and text.startswith("admin:$6$")
    assert pigsty_crypt.verifies("Sandbox.Portal", text.strip().split(":", 1)[1])
    assert nginx["web"].portal_htpasswd(path=str(nginx["htpasswd"])) == text    # nothing changes


def test_the_live_portal_data_is_read_only_behind_the_login(nginx):
    # the runner's live roles: a JSON file, never cached, only with the portal's login
    assert _https(nginx, "pigsty", "/live/pg-test.json")[0] == 401
    assert _https(nginx, "pigsty", "/live/pg-test.json", auth=PORTAL) == (200, '{"pg-test-1": "primary"}\n')
    headers = request("127.0.0.1", nginx["ssl_port"], "pigsty", "/live/pg-test.json",
                      cafile=nginx["pki"]["ca_crt"], auth=PORTAL)[1]
    assert headers.get("cache-control") == "no-store" and "json" in headers.get("content-type", "")
    # ".." is resolved in the URL (the portal's own page), never in the live directory
    assert _https(nginx, "pigsty", "/live/../index.html", auth=PORTAL) == (200, "portal\n")
    assert _https(nginx, "pigsty", "/live/%2e%2e/%2e%2e/etc/passwd", auth=PORTAL)[0] in (400, 404)
    # Alertmanager's alerts (its API, the query kept); nothing but GET
    assert _https(nginx, "pigsty", "/live/alerts?active=true&silenced=false", auth=PORTAL) == (
        200, "backend plain /api/v2/alerts?active=true&silenced=false\n")
    status = request("127.0.0.1", nginx["ssl_port"], "pigsty", "/live/alerts", cafile=nginx["pki"]["ca_crt"],
                     auth=PORTAL, method="POST")[0]
    assert status == 403


def test_the_live_patroni_view_goes_over_https_verified_for_the_nodes_name(nginx):
    assert _https(nginx, "pigsty", "/live/patroni/pg-test-1")[0] == 401
    assert _https(nginx, "pigsty", "/live/patroni/pg-test-1", auth=PORTAL) == (200, "backend node-1 /cluster\n")
    assert _https(nginx, "pigsty", "/live/patroni/pg-test-2", auth=PORTAL)[0] == 502      # another CA
    assert _https(nginx, "pigsty", "/live/patroni/pg-test-3", auth=PORTAL)[0] == 502      # another name
    assert _https(nginx, "pigsty", "/live/patroni/pg-test-9", auth=PORTAL)[0] == 404      # not a member
    # read only: a switchover through the portal is refused by Nginx itself
    status = request("127.0.0.1", nginx["ssl_port"], "pigsty", "/live/patroni/pg-test-1", cafile=nginx["pki"]["ca_crt"],
                     auth=PORTAL, method="POST")[0]
    assert status == 403
