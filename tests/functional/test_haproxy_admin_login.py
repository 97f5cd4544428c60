"""The HAProxy admin page (9101) asks for the cluster's login, over HTTPS only, for real:
Debian's HAProxy runs the global, defaults, userlist and admin sections of the rendered
haproxy.cfg on loopback (the services are left out: they would bind every interface), with a
node certificate of a throwaway CA. The page answers 401 without the login or with a wrong
one, 200 with it; /metrics answers Prometheus without a login. Clients verify the
certificate against the CA and the address; a plain HTTP request gets no HTTP answer, and a
client that trusts another CA refuses the server. The hash in the file is SHA-512 crypt, and
a re-render keeps it (pigsty_haproxy.admin_login)."""
import base64
import http.client
import re
import shutil
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import pigsty_crypt
import pigsty_inventory
from loader import load_module
from local_http import free_port
from pillar_fixture import default_pillar
from render import render_haproxy_cfg
from throwaway_ca import CA


def _get(url, auth=None, cafile=None):
    headers = {"Authorization": "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()} if auth else {}
    handlers = [urllib.request.ProxyHandler({})]
    if cafile:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile)))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=3) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory):
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.access(binary, os.X_OK):
        pytest.fail("haproxy is not installed (tests/run.sh installs it)")
    tmp = tmp_path_factory.mktemp("haproxy")
    # node-2's certificate as node.pki makes it (its name, its address, loopback)
    pki = CA(str(tmp / "ca")).node(str(tmp / "pki"), "node-2", ["node-2"], ["10.10.10.12", "127.0.0.1"])
    conf = pigsty_inventory.instance_config(default_pillar(), "node-2")
    cfg = render_haproxy_cfg(conf, ca_file=pki["ca_crt"], node_crt=pki["node_crt"])
    head = cfg.split("\nlisten pg-test-")[0]          # global, defaults, userlist, admin
    assert "bind 127.0.0.1:9101 ssl crt %s\n" % pki["node_crt"] in head
    port = free_port()
    head = re.sub(r"\n    bind %s:9101 [^\n]*" % re.escape(conf["node_ip"]), "", head)
    head = head.replace("127.0.0.1:9101", "127.0.0.1:%d" % port)
    head = head.replace("/run/haproxy/admin.sock", str(tmp / "admin.sock")).replace(
        "/var/lib/haproxy/server-state", str(tmp / "state")).replace("log /dev/log local0 notice", "")
    path = tmp / "haproxy.cfg"
    path.write_text(head + "\n")
    proc = subprocess.Popen([binary, "-db", "-f", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = "https://127.0.0.1:%d" % port
    deadline = time.monotonic() + 10
    while True:
        try:
            _get(url + "/metrics", cafile=pki["ca_crt"])
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("haproxy did not start:\n%s" % proc.stdout.read().decode()[-3000:])
            time.sleep(0.1)
    try:
        yield {"url": url, "port": port, "conf": conf, "cfg": head, "pki": pki, "tmp": tmp}
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_admin_page_asks_for_the_cluster_login(haproxy):
    conf, ca = haproxy["conf"], haproxy["pki"]["ca_crt"]
    assert _get(haproxy["url"] + "/", cafile=ca)[0] == 401
    assert _get(haproxy["url"] + "/", ("admin", "wrong"), cafile=ca)[0] == 401
    assert _get(haproxy["url"] + "/", ("admin", "Sandbox.HAProxy.meta"), cafile=ca)[0] == 401   # another cluster's
    status, body = _get(haproxy["url"] + "/", (conf["haproxy_admin_username"], conf["haproxy_admin_password"]),
                        cafile=ca)
    assert status == 200 and "Statistics Report" in body, body[:300]


def test_prometheus_scrapes_metrics_without_a_login(haproxy):
    status, body = _get(haproxy["url"] + "/metrics", cafile=haproxy["pki"]["ca_crt"])
    assert status == 200 and "haproxy_process_" in body


def test_the_page_speaks_tls_only_and_is_verified_against_the_ca(haproxy):
    # plain HTTP gets no HTTP answer (HAProxy drops what is not a TLS handshake)
    conn = http.client.HTTPConnection("127.0.0.1", haproxy["port"], timeout=3)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.request("GET", "/metrics")
        conn.getresponse()
    conn.close()
    # a client that trusts another CA refuses the server
    other = CA(str(haproxy["tmp"] / "other"), cn="Other CA")
    with pytest.raises(urllib.error.URLError) as err:
        _get(haproxy["url"] + "/metrics", cafile=other.ca_crt)
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)
    # the node's name (in its SANs) verifies too: what the portal's proxy checks
    ctx = ssl.create_default_context(cafile=haproxy["pki"]["ca_crt"])
    with ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", haproxy["port"]), 3),
                         server_hostname="node-2") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # TLS older than 1.2 is refused (ssl-default-bind-options ssl-min-ver TLSv1.2)
    old = ssl.create_default_context(cafile=haproxy["pki"]["ca_crt"])
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with old.wrap_socket(__import__("socket").create_connection(("127.0.0.1", haproxy["port"]), 3),
                             server_hostname="127.0.0.1"):
            pass


def test_the_file_holds_a_hash_not_the_password(haproxy):
    cfg = haproxy["cfg"]
    assert "Sandbox.HAProxy.test" not in cfg
    hashed = pigsty_crypt.find_hash(cfg, "user admin password ")
    assert hashed and pigsty_crypt.verifies("Sandbox.HAProxy.test", hashed)


def test_admin_login_keeps_a_hash_that_verifies_and_replaces_one_that_does_not(tmp_path):
    conf = {"haproxy_admin_username": "admin", "haproxy_admin_password": "Pw 'x' $1"}
    mod = load_module("_modules/pigsty_haproxy.py", salt={"pigsty.config": lambda: conf})
    path = tmp_path / "haproxy.cfg"
    first = mod.admin_login(path=str(path))              # no file yet: a new hash
    assert pigsty_crypt.verifies("Pw 'x' $1", first["hash"])
    path.write_text("userlist pigsty-admin\n    user admin password %s\n" % first["hash"])
    assert mod.admin_login(path=str(path)) == first       # kept: nothing changes
    conf["haproxy_admin_password"] = "Changed"
    changed = mod.admin_login(path=str(path))
    assert changed["hash"] != first["hash"] and pigsty_crypt.verifies("Changed", changed["hash"])
    assert re.fullmatch(r"\$6\$[^$]+\$[./A-Za-z0-9]{86}", changed["hash"])
    conf["haproxy_admin_password"] = None
    with pytest.raises(Exception) as err:
        mod.admin_login(path=str(path))
    assert "haproxy_admin_password: missing" in str(err.value)
