"""Security in the sandbox (issue 12): the Pigsty CA and node certificates (salt/node/pki.sls,
remote signing over the master), Patroni's REST API over HTTPS with authentication, and the
exporters over HTTPS with client certificates."""
import http.client
import json
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

import patroni_rest
import pigsty_patroni
from sandbox_cli import node_exec, salt_json, wait_for
from meta_http import prom_query
from pg import cluster_secrets, query

NODES = {"meta": "10.10.10.10", "node-1": "10.10.10.11", "node-2": "10.10.10.12",
         "node-3": "10.10.10.13"}
PKI = "/etc/pki/pigsty"


def sh(node, script, check=True):
    return node_exec(node, "sh", "-c", script, timeout=120, check=check)


# ------------------------------------------------------------------ the CA and node certificates
@pytest.mark.parametrize("node", sorted(NODES))
def test_every_node_has_a_certificate_signed_by_the_ca_with_its_names(sandbox, node):
    out = sh(node, "openssl verify -CAfile %s/ca.crt %s/node.crt" % (PKI, PKI)).stdout
    assert out.strip().endswith(": OK"), out
    text = sh(node, "openssl x509 -in %s/node.crt -noout -subject -ext subjectAltName,extendedKeyUsage"
              % PKI).stdout
    assert "CN = %s" % node in text or "CN=%s" % node in text, text
    assert "DNS:%s, IP Address:%s, IP Address:127.0.0.1" % (node, NODES[node]) in text, text
    # the meta node's also names the portal's domains (Nginx serves them over HTTPS)
    portal = "DNS:pigsty, DNS:p.pigsty, DNS:a.pigsty, DNS:g.pigsty, DNS:h.pigsty"
    assert (portal in text) == (node == "meta"), text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text, text
    assert sh(node, "stat -c '%%a %%U %%G' %s/node.key" % PKI).stdout.split() == ["640", "root", "ssl-cert"]
    assert sh(node, "stat -c '%%a %%U' %s/ca.crt %s/node.crt" % (PKI, PKI)).stdout.split() == \
        ["644", "root", "644", "root"]


def test_the_ca_key_exists_on_the_ca_server_only_and_every_node_has_its_certificate(sandbox):
    assert sh("meta", "stat -c '%%a %%U' %s/ca/ca.key" % PKI).stdout.split() == ["600", "root"]
    ca = sh("meta", "cat %s/ca/ca.crt" % PKI).stdout
    for node in ("node-1", "node-2", "node-3"):
        assert sh(node, "test -e %s/ca" % PKI, check=False).returncode != 0, node
        assert sh(node, "cat %s/ca.crt" % PKI).stdout == ca, node


def test_a_second_apply_of_node_pki_changes_nothing(sandbox):
    ret, rc = salt_json("node-2", "state.apply", "node.pki")
    assert rc == 0, ret
    steps = ret["node-2"]
    assert all(step["result"] for step in steps.values()), steps
    assert {sid: step["changes"] for sid, step in steps.items() if step["changes"]} == {}


def salt_call(node, *args):
    res = node_exec(node, "salt-call", "--out=json", *args, timeout=180)
    try:
        return json.loads(res.stdout)["local"], res
    except (ValueError, KeyError):
        return None, res


def test_a_node_cannot_use_another_nodes_policy(sandbox):
    ret, res = salt_call("node-2", "x509.create_certificate", "ca_server=meta",
                         "signing_policy=pigsty-node-node-1", "private_key=%s/node.key" % PKI)
    text = json.dumps(ret) + res.stdout + res.stderr
    assert "BEGIN CERTIFICATE" not in text
    assert "not permitted" in text, text


def test_the_policy_fixes_the_names_whatever_the_node_asks_for(sandbox):
    ret, res = salt_call("node-2", "x509.create_certificate", "ca_server=meta",
                         "signing_policy=pigsty-node-node-2", "private_key=%s/node.key" % PKI,
                         "CN=meta", "subjectAltName=DNS:meta, IP:10.10.10.10")
    assert ret and "BEGIN CERTIFICATE" in ret, res.stdout + res.stderr
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"],
                         input=ret, capture_output=True, text=True, check=True).stdout
    assert "CN = node-2" in out and "DNS:node-2, IP Address:10.10.10.12" in out, out
    assert "10.10.10.10" not in out, out


def test_peers_may_call_only_the_signing_function(sandbox):
    ret, res = salt_call("node-2", "publish.publish", "meta", "cmd.run", "id")
    assert not ret, res.stdout        # the master refuses the publication: no return


# ------------------------------------------------------------------ Patroni's REST API
PATRONI = {"pg-meta": ["10.10.10.10"], "pg-test": ["10.10.10.11", "10.10.10.12", "10.10.10.13"]}
NODE_PY = "/opt/pigsty/venv/bin/python"
# an HTTPS request from a node, verified against the node's CA file, without any login
FROM_NODE = r'''
import http.client, json, ssl, sys
host, method, path, body = sys.argv[1:5]
ctx = ssl.create_default_context(cafile="/etc/pki/pigsty/ca.crt")
conn = http.client.HTTPSConnection(host, 8008, context=ctx, timeout=10)
conn.request(method, path, body=body or None, headers={"Content-Type": "application/json"})
resp = conn.getresponse()
print(json.dumps({"status": resp.status, "body": resp.read().decode("utf-8", "replace")[:300]}))
'''
# Unsafe calls whose bodies would change nothing even if Patroni accepted them (a leader that
# is not the leader, the current loop_wait, a role that does not exist): the tests look at
# the status only, and a regression cannot hurt the cluster.
UNSAFE = [("POST", "/switchover", {"leader": "pg-nobody-9"}), ("PATCH", "/config", {"loop_wait": 5}),
          ("POST", "/restart", {"role": "no-such-role"})]


def from_node(node, ip, method, path, body=None):
    res = node_exec(node, NODE_PY, "-c", FROM_NODE, ip, method, path, json.dumps(body) if body else "",
                    timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def leader_of(cluster):
    doc = patroni_rest.get(PATRONI[cluster][0], "/cluster")
    return [m["name"] for m in doc["members"] if m["role"] in ("leader", "master", "primary")][0]


@pytest.mark.parametrize("ip", [ip for ips in PATRONI.values() for ip in ips])
def test_openssl_verifies_patroni_against_the_ca(sandbox, ip):
    res = subprocess.run(["openssl", "s_client", "-connect", "%s:8008" % ip, "-CAfile",
                          patroni_rest.ca_file(), "-verify_return_error", "-verify_ip", ip],
                         input="", capture_output=True, text=True, timeout=30)
    assert "Verify return code: 0 (ok)" in res.stdout, res.stdout[-2000:] + res.stderr[-1000:]


def test_plain_http_gets_nothing_from_patroni(sandbox):
    with pytest.raises(pigsty_patroni.PatroniError):
        pigsty_patroni.get_json("10.10.10.11", 8008, "/patroni", timeout=3)


@pytest.mark.parametrize("method,path,body", UNSAFE)
def test_the_host_is_refused_unsafe_calls_even_with_the_login(sandbox, method, path, body):
    before = (leader_of("pg-test"), patroni_rest.get("10.10.10.11", "/config")["ttl"])
    secrets = cluster_secrets("pg-test")
    login = pigsty_patroni.Access(ca_file=patroni_rest.ca_file(), username="postgres",
                                  password=secrets["patroni_password"])
    for access in (None, login):              # without, then with pg-test's own login
        status, _answer = patroni_rest.request("10.10.10.11", path, method, body, timeout=10, login=access)
        assert status == 403                  # not in the allow-list
    assert (leader_of("pg-test"), patroni_rest.get("10.10.10.11", "/config")["ttl"]) == before


@pytest.mark.parametrize("method,path,body", UNSAFE)
def test_a_node_of_another_cluster_is_refused_unsafe_calls(sandbox, method, path, body):
    answer = from_node("node-1", "10.10.10.10", method, path, body)     # pg-test's node -> pg-meta
    assert answer["status"] == 403, answer
    assert leader_of("pg-meta") == "pg-meta-1"


@pytest.mark.parametrize("method,path,body", UNSAFE)
def test_a_member_without_the_login_is_refused(sandbox, method, path, body):
    before = (leader_of("pg-test"), patroni_rest.get("10.10.10.11", "/config")["ttl"])
    answer = from_node("node-2", "10.10.10.11", method, path, body)     # allowed, but no login
    assert answer["status"] == 401, answer
    assert (leader_of("pg-test"), patroni_rest.get("10.10.10.11", "/config")["ttl"]) == before


def test_the_patroni_module_calls_unsafe_methods_with_the_clusters_login(sandbox):
    ret, rc = salt_json("node-2", "patroni.reload")        # POST /reload over loopback
    assert rc == 0 and "node-2" in ret and "refused" not in json.dumps(ret), ret
    assert "Sandbox.Patroni" not in json.dumps(ret)


def test_patronictl_verifies_the_members_and_lists_them(sandbox):
    out = node_exec("node-3", "patronictl", "-c", "/etc/patroni/config.yml", "list", "-f", "json",
                    check=True).stdout
    assert sorted(m["Member"] for m in json.loads(out)) == ["pg-test-1", "pg-test-2", "pg-test-3"]


def test_haproxy_checks_patroni_over_https_and_routes_to_the_primary(sandbox):
    text = sh("node-2", "cat /etc/haproxy/haproxy.cfg").stdout
    assert "check port 8008 check-ssl verify required ca-file /etc/pki/pigsty/ca.crt" in text
    dba = ("dbuser_dba", cluster_secrets("pg-test")["pg_admin_password"])
    # 5436 (primary, direct) checks /primary and 5438 (offline, direct) /replica, over HTTPS
    assert query("10.10.10.12", 5436, *dba, "select pg_is_in_recovery()") == [(False,)]
    assert query("10.10.10.12", 5438, *dba, "select pg_is_in_recovery()") == [(True,)]


def test_prometheus_scrapes_patroni_over_https(sandbox):
    def up():
        series = prom_query('up{job="patroni"}')
        return len(series) == 4 and all(s["value"][1] == "1" for s in series) and series
    series = wait_for(up, 90, interval=3)
    assert {s["metric"]["ins"] for s in series} == {"pg-meta-1", "pg-test-1", "pg-test-2", "pg-test-3"}


# ------------------------------------------------------------------ the exporters (9100, 9630, 9631)
EXPORTER_PORTS = (9100, 9630, 9631)
DATABASE_NODES = {"meta": "10.10.10.10", "node-1": "10.10.10.11", "node-2": "10.10.10.12",
                  "node-3": "10.10.10.13"}


@pytest.mark.parametrize("port", EXPORTER_PORTS)
@pytest.mark.parametrize("node", sorted(DATABASE_NODES))
def test_openssl_verifies_each_exporter_against_the_ca(sandbox, node, port):
    """From meta, with its node certificate (the exporters ask for one), as its Prometheus."""
    ip = DATABASE_NODES[node]
    res = sh("meta", "openssl s_client -connect %s:%d -CAfile %s/ca.crt -verify_return_error -verify_ip %s "
             "-cert %s/node.crt -key %s/node.key </dev/null" % (ip, port, PKI, ip, PKI, PKI), check=False)
    assert "Verify return code: 0 (ok)" in res.stdout, res.stdout[-2000:] + res.stderr[-1000:]


@pytest.mark.parametrize("port", EXPORTER_PORTS)
def test_an_exporter_gives_nothing_without_a_client_certificate_or_over_plain_http(sandbox, port):
    """From the host: the CA verifies the server, but without a certificate of the CA the
    exporter hangs up; plain HTTP gets no metrics (exporter-toolkit answers 400)."""
    ctx = ssl.create_default_context(cafile=patroni_rest.ca_file())
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        urllib.request.urlopen("https://10.10.10.12:%d/metrics" % port, timeout=10, context=ctx).read()
    try:
        with urllib.request.urlopen("http://10.10.10.12:%d/metrics" % port, timeout=10) as resp:
            body = resp.read().decode("utf-8", "replace")
        pytest.fail("plain HTTP answered %s: %s" % (resp.status, body[:300]))
    except urllib.error.HTTPError as err:
        assert err.code == 400, err
    except (urllib.error.URLError, ConnectionError, OSError):
        pass                    # the pgbouncer exporter: the handshake fails, it hangs up


def test_the_exporters_key_access_and_web_config(sandbox):
    """The exporters read the node key through its group; the web configuration holds paths
    only and is not world-readable."""
    out = sh("node-2", "id -nG prometheus; id -nG postgres; stat -c '%U:%G %a' /etc/pigsty/exporter_web.yml; "
             "cat /etc/pigsty/exporter_web.yml").stdout
    lines = out.splitlines()
    assert "ssl-cert" in lines[0].split() and "ssl-cert" in lines[1].split(), out
    assert lines[2] == "root:prometheus 640", out
    assert "client_auth_type: RequireAndVerifyClientCert" in out and "client_ca_file: %s/ca.crt" % PKI in out


def test_prometheus_scrapes_every_exporter_over_https(sandbox):
    def up():
        series = prom_query('up{job=~"node|pgsql|pgbouncer"}')
        return len(series) == 12 and all(s["value"][1] == "1" for s in series) and series
    series = wait_for(up, 90, interval=3)
    assert {(s["metric"]["ins"], s["metric"]["job"]) for s in series} == {
        (ins, job) for ins in ("pg-meta-1", "pg-test-1", "pg-test-2", "pg-test-3")
        for job in ("node", "pgsql", "pgbouncer")}
