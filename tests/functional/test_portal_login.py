"""The portal's login, for real: Debian's Nginx runs the rendered nginx.conf on loopback
(its paths and port moved to a scratch directory) with the htpasswd file that
pigsty_web.portal_htpasswd makes from the meta node's pillar. The portal and the
Prometheus page ask for the login; the package repository (apt on every node), Grafana's
page (its own login) and the HAProxy pages (their cluster's login) do not. Every proxied
backend (Prometheus, Grafana, each cluster's HAProxy page) is replaced by one local server
that answers 200, so nothing leaves loopback and a 401 can only come from Nginx."""
import base64
import http.server
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import jinja2
import pytest

import pigsty_crypt
from loader import load_module
from local_http import free_port
from pillar_fixture import REPO, meta_pillar

PORTAL = ("admin", "Sandbox.Portal")


def _get(port, path, host="pigsty", auth=None):
    headers = {"Host": host}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers),
                         timeout=3) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


class _Backend(http.server.BaseHTTPRequestHandler):
    """Stands in for every proxied page: 200 and the path it was asked for."""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = ("backend %s\n" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


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
    (home / "index.html").write_text("portal\n")
    (home / "pigsty" / "Packages").write_text("Package: x\n")
    port = free_port()
    ngx = mod.nginx()
    text = re.sub(r"listen %d( default_server)?;" % ngx["port"], lambda m: "listen 127.0.0.1:%d%s;" % (port, m.group(1) or ""), text)
    text = text.replace("/etc/nginx/pigsty.htpasswd", str(htpasswd)).replace("root %s" % ngx["home"], "root %s" % home)
    text = text.replace("user www-data;", "").replace("/run/nginx.pid", str(tmp / "nginx.pid"))
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    text, proxied = re.subn(r"proxy_pass http://[^/;]+", "proxy_pass http://127.0.0.1:%d" % backend.server_port, text)
    assert proxied >= 2, "no proxy_pass found in the rendered nginx.conf"
    text = re.sub(r"(error|access)_log [^;]+;", lambda m: "%s_log %s/%s.log;" % (m.group(1), tmp, m.group(1)), text)
    conf = tmp / "nginx.conf"
    conf.write_text(text)
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            _get(port, "/")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("nginx did not start:\n%s" % proc.stdout.read().decode()[-3000:])
            time.sleep(0.1)
    try:
        yield {"port": port, "htpasswd": htpasswd, "web": web}
    finally:
        proc.terminate()
        proc.wait(10)
        backend.shutdown()
        backend.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_portal_asks_for_the_login(nginx):
    assert _get(nginx["port"], "/") == 401
    assert _get(nginx["port"], "/", auth=("admin", "wrong")) == 401
    assert _get(nginx["port"], "/", auth=PORTAL) == 200
    assert _get(nginx["port"], "/", host="p.pigsty") == 401                      # Prometheus' page
    assert _get(nginx["port"], "/", host="p.pigsty", auth=PORTAL) == 200


def test_what_has_its_own_login_or_is_public_is_not_asked(nginx):
    assert _get(nginx["port"], "/pigsty/Packages") == 200                        # apt on every node
    assert _get(nginx["port"], "/", host="g.pigsty") in (200, 503)                # Grafana asks its own (503: not installed)
    assert _get(nginx["port"], "/pg-test-1/", host="h.pigsty") == 200             # HAProxy asks its own


def test_the_htpasswd_holds_a_hash_kept_while_it_verifies(nginx):
    text = nginx["htpasswd"].read_text()
    assert "Sandbox.Portal" not in text and text.startswith("admin:$6$")
    assert pigsty_crypt.verifies("Sandbox.Portal", text.strip().split(":", 1)[1])
    assert nginx["web"].portal_htpasswd(path=str(nginx["htpasswd"])) == text    # nothing changes
