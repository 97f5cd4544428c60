"""Security of the data plane in the sandbox (issue 12): etcd over mutual TLS, each node
logging in with its certificate as its own user that holds its cluster's role, one password
user per cluster (salt/dcs/init.sls, _states/pigsty_etcd.py), PostgreSQL and pgbouncer over
SSL, and logins on the web pages. Run from the host and from node-2, a node of pg-test
(another cluster than pg-meta)."""
import json
import os
import shlex

import pytest
import yaml

import pigsty_etcd
from sandbox_cli import node_exec, REPO, salt_json, wait_for
from meta_http import prom_query

META = "10.10.10.10"
ETCD = "https://%s:2379" % META
PKI = "/etc/pki/pigsty"


def sh(node, script, check=True, timeout=120):
    return node_exec(node, "sh", "-c", script, timeout=timeout, check=check)


def private(cluster, key):
    with open(os.path.join(REPO, "pillar", "clusters", "%s.sls" % cluster)) as fh:
        return yaml.safe_load(fh)["pigsty"]["clusters"][cluster]["vars"][key]


@pytest.fixture(scope="module")
def ca_file(sandbox, tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_text(sh("meta", "cat %s/ca.crt" % PKI).stdout)
    return str(path)


def curl_etcd(node, path, user=None, password=None, method="GET", data=None, cert=True):
    """HTTP status of an etcd request made ON ``node``, with its node certificate unless
    ``cert`` is false (the password goes through a curl config file on stdin, not the
    command line). "000": no HTTP answer."""
    config = ""
    if user:
        config = 'user = "%s:%s"\n' % (user, password)
    args = "-s -o /dev/null -w '%%{http_code}' -m 10 --cacert %s/ca.crt -X %s -K -" % (PKI, method)
    if cert:
        args += " --cert %s/node.crt --key %s/node.key" % (PKI, PKI)
    if data:
        args += " --data-urlencode %s" % shlex.quote(data)
    res = node_exec(node, "sh", "-c", "printf '%%s' %s | curl %s %s" % (
        shlex.quote(config), args, shlex.quote(ETCD + path)), timeout=60, check=False)
    return res.stdout.strip()


# ------------------------------------------------------------------ etcd
def test_etcd_speaks_tls_with_the_node_certificate(sandbox):
    out = sh("node-2", "echo | openssl s_client -connect %s:2379 -CAfile %s/ca.crt -verify_return_error "
                       "-cert %s/node.crt -key %s/node.key -servername meta 2>&1" % (META, PKI, PKI, PKI),
             check=False).stdout
    assert "Verify return code: 0 (ok)" in out, out
    # plain HTTP gets no etcd answer
    code = sh("node-2", "curl -s -o /dev/null -w '%%{http_code}' -m 5 http://%s:2379/v2/keys/" % META,
              check=False).stdout.strip()
    assert code in ("000", "400"), code


def test_the_etcd_peer_port_wants_a_client_certificate(sandbox):
    # a request, not a bare handshake: with TLS 1.3 the server's "certificate required" alert
    # arrives after the client's side of the handshake. How curl reports the refusal varies
    # ("alert certificate required", or errno 107 when etcd has already closed the
    # connection): what matters is that the port accepts the connection (not curl's 7,
    # "could not connect", nor 28, a timeout) and gives no HTTP answer without a certificate.
    res = sh("node-2", "curl -sS -o /dev/null -w '%%{http_code}' -m 10 --cacert %s/ca.crt "
                       "https://%s:2380/members" % (PKI, META), check=False)
    assert res.returncode not in (0, 6, 7, 28) and res.stdout.strip() in ("", "000"), (
        res.returncode, res.stdout, res.stderr)


def test_a_client_without_a_certificate_gets_no_answer(sandbox, ca_file):
    # from the host (no certificate of the Pigsty CA) and from node-2 without its certificate
    with pytest.raises(pigsty_etcd.EtcdError):
        pigsty_etcd.Client(ETCD, cafile=ca_file, timeout=5).get("/service/pg-test/leader")
    assert curl_etcd("node-2", "/v2/keys/service/pg-test/leader", cert=False) == "000"
    assert curl_etcd("node-2", "/v2/keys/service/pg-test/leader", "pg-test",
                     private("pg-test", "pg_etcd_password"), cert=False) == "000"


def test_a_node_certificate_reaches_its_cluster_s_keys_and_not_another_s(sandbox):
    # node-2 (pg-test) with its certificate and no password: etcd's user node-2
    assert curl_etcd("node-2", "/v2/keys/service/pg-test/leader") == "200"
    assert curl_etcd("node-2", "/v2/keys/service/pg-meta/leader") == "401"
    assert curl_etcd("node-2", "/v2/keys/service/pg-meta/leader", method="PUT", data="value=evil") == "401"
    assert curl_etcd("node-2", "/v2/keys/service/pg-meta?recursive=true&dir=true", method="DELETE") == "401"
    assert curl_etcd("node-2", "/v2/auth/users/node-2", method="PUT",
                     data='{"user": "node-2", "grant": ["root"]}') in ("400", "401", "403")
    # and the meta node's certificate is pg-meta's member, not pg-test's
    assert curl_etcd("meta", "/v2/keys/service/pg-meta/leader") == "200"
    assert curl_etcd("meta", "/v2/keys/service/pg-test/leader", method="PUT", data="value=evil") == "401"


def test_pg_test_etcd_user_reaches_its_keys_and_not_pg_meta_s(sandbox):
    password = private("pg-test", "pg_etcd_password")
    # the cluster's password login (people and tools): over TLS with a certificate
    assert curl_etcd("node-2", "/v2/keys/service/pg-test/leader", "pg-test", password) == "200"
    assert curl_etcd("node-2", "/v2/keys/service/pg-meta/leader", "pg-test", password) == "401"
    assert curl_etcd("node-2", "/v2/keys/service/pg-meta/leader", "pg-test", password,
                     method="PUT", data="value=pg-test-1") == "401"
    assert curl_etcd("node-2", "/v2/keys/service/pg-test/leader", "pg-test", "Not.The.Password") == "401"
    assert curl_etcd("meta", "/v2/keys/service/pg-meta/leader", "pg-meta",
                     private("pg-meta", "pg_etcd_password")) == "200"


def test_patroni_and_vip_manager_log_in_with_the_node_certificate(sandbox):
    cfg = yaml.safe_load(sh("node-1", "cat /etc/patroni/config.yml").stdout)
    etcd = cfg["etcd"]
    assert etcd["protocol"] == "https" and etcd["cacert"] == "%s/ca.crt" % PKI
    assert (etcd["cert"], etcd["key"]) == ("%s/node.crt" % PKI, "%s/node.key" % PKI)
    assert "username" not in etcd and "password" not in etcd
    vip = sh("node-1", "stat -c '%a %U' /etc/vip-manager.yml; grep -c 'etcd-password\\|etcd-user' "
                       "/etc/vip-manager.yml; grep -c etcd-cert-file /etc/vip-manager.yml", check=False).stdout.split()
    assert vip == ["600", "root", "0", "1"], vip
    # the VIP follows the leader key it reads as node-1: exactly one member holds it
    holders = [n for n in ("node-1", "node-2", "node-3")
               if "10.10.10.3/24" in sh(n, "ip -o addr show").stdout]
    assert len(holders) == 1, holders
    out = sh("node-1", "journalctl -u vip-manager --since '-2min' --no-pager -q 2>&1 | tail -50", check=False).stdout
    assert "Insufficient credentials" not in out and "x509" not in out and "certificate" not in out, out


def test_dcs_state_second_apply_changes_nothing(sandbox):
    ret, rc = salt_json("meta", "state.apply", "dcs")
    assert rc == 0, ret
    steps = ret["meta"]
    assert {sid: step["changes"] for sid, step in steps.items() if step["changes"]} == {}
    assert any("etcd-auth" in sid and "authentication on" in step["comment"] for sid, step in steps.items())


def test_prometheus_scrapes_etcd_over_https(sandbox):
    def up():
        out = sh("meta", "curl -s 'http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22etcd%22%7D'").stdout
        result = json.loads(out)["data"]["result"]
        return result and all(r["value"][1] == "1" for r in result) and result
    wait_for(up, 60)


# ------------------------------------------------------------------ PostgreSQL and pgbouncer SSL
def connect(host, port, user, password, sslmode, ca_file=None, dbname="test"):
    import psycopg2
    kwargs = {"sslrootcert": ca_file} if ca_file else {}
    try:
        conn = psycopg2.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                                sslmode=sslmode, connect_timeout=5, **kwargs)
    except psycopg2.OperationalError as exc:
        return str(exc)
    try:
        return "ssl" if conn.info.ssl_in_use else "plain"
    finally:
        conn.close()


TEST_USER = ("test", "Sandbox.Test")


@pytest.mark.parametrize("port", [5432, 6432])                 # PostgreSQL, pgbouncer
def test_psql_over_ssl_works_and_a_plain_remote_login_is_refused(sandbox, ca_file, port):
    # pg_ssl_required is on in the sandbox: a remote password login needs SSL
    assert connect("10.10.10.11", port, *TEST_USER, "verify-full", ca_file) == "ssl"
    refused = connect("10.10.10.11", port, *TEST_USER, "disable")
    assert refused not in ("ssl", "plain") and ("no encryption" in refused or "rejected" in refused
                                                 or "not allowed" in refused), refused


def test_the_admin_needs_ssl_through_haproxy_too(sandbox, ca_file):
    dba = ("dbuser_dba", private("pg-test", "pg_admin_password"))
    assert connect("10.10.10.3", 5436, *dba, "require") == "ssl"           # VIP -> HAProxy -> primary
    assert connect("10.10.10.3", 5436, *dba, "disable") not in ("ssl", "plain")


def test_psql_from_node_2_over_ssl(sandbox):
    out = sh("node-2", "PGPASSWORD=%s psql 'host=10.10.10.11 port=5432 dbname=test user=test sslmode=verify-full "
                       "sslrootcert=%s/ca.crt' -tAc 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'"
             % (shlex.quote(TEST_USER[1]), PKI)).stdout
    assert out.strip() == "t", out


def test_replication_runs_over_ssl(sandbox):
    out = sh("node-1", "runuser -u postgres -- psql -tAc \"select count(*) filter (where s.ssl), count(*) "
                       "from pg_stat_replication r join pg_stat_ssl s using (pid)\"").stdout.strip()
    encrypted, total = out.split("|")
    assert total != "0" and encrypted == total, out


# ------------------------------------------------------------------ web logins
def test_the_haproxy_admin_page_asks_for_a_login(sandbox):
    # HTTPS only, verified against the CA (meta's copy) for node-1's address
    def code(auth="", url="https://10.10.10.11:9101/"):
        return sh("meta", "curl -s -o /dev/null -w '%%{http_code}' --cacert %s/ca.crt %s %s"
                  % (PKI, auth, url), check=False).stdout.strip()
    assert code() == "401"
    assert code("-u admin:wrong") == "401"
    config = "user = \"admin:%s\"\n" % private("pg-test", "haproxy_admin_password")
    res = node_exec("meta", "sh", "-c", "printf '%%s' %s | curl -s -o /dev/null -w '%%{http_code}' -K - "
                    "--cacert %s/ca.crt https://10.10.10.11:9101/" % (shlex.quote(config), PKI), timeout=60)
    assert res.stdout.strip() == "200"
    assert code(url="https://10.10.10.11:9101/metrics") == "200"   # Prometheus scrapes without a login
    assert code(url="http://10.10.10.11:9101/metrics") == "000"    # plain HTTP: no HTTP answer
    # Prometheus scrapes every HAProxy over https, and they are up
    def all_up():
        rows = prom_query('up{job="haproxy"}')
        return len(rows) == 4 and all(r["value"][1] == "1" and r["metric"]["instance"].endswith(":9101")
                                      for r in rows)
    wait_for(all_up, 60)


def test_the_portal_asks_for_a_login_over_https_and_the_repository_does_not(sandbox):
    # from node-2, as a browser there would: the domain resolves to meta (--resolve), and
    # the certificate is verified against the CA under that domain
    def code(path, host="pigsty", config="", scheme="https"):
        port = 443 if scheme == "https" else 80
        return node_exec("node-2", "sh", "-c", "printf '%%s' %s | curl -s -o /dev/null -w '%%{http_code} %%{redirect_url}' "
                         "-K - --cacert %s/ca.crt --resolve %s:%d:10.10.10.10 %s://%s%s"
                         % (shlex.quote(config), PKI, host, port, scheme, host, path),
                         timeout=60).stdout.strip()
    with open(os.path.join(REPO, "pillar", "dcs.sls")) as fh:
        infra = yaml.safe_load(fh)["pigsty"]["infra"]
    login = 'user = "%s:%s"\n' % (infra["portal_username"], infra["portal_password"])
    assert code("/") == "401"
    assert code("/", config='user = "admin:wrong"\n') == "401"
    assert code("/", config=login) == "200"
    assert code("/", host="p.pigsty") == "401"                    # Prometheus' page
    assert code("/", host="p.pigsty", config=login).split()[0] in ("200", "302")  # Prometheus redirects / to /graph
    # plain HTTP: a 301 to HTTPS, without asking for the login
    assert code("/", scheme="http") == "301 https://pigsty/"
    assert code("/graph", host="p.pigsty", scheme="http") == "301 https://p.pigsty/graph"
    # apt on every node: over HTTPS with the CA, no login; plain HTTP only redirects
    assert code("/pigsty/Packages", host="10.10.10.10", scheme="http") == \
        "301 https://10.10.10.10/pigsty/Packages"
    assert code("/pigsty/Packages", host="10.10.10.10") == "200"
    assert code("/pigsty/Packages") == "200"
    ha = node_exec("meta", "stat", "-c", "%a %U %G", "/etc/nginx/pigsty.htpasswd", timeout=30).stdout.split()
    assert ha == ["640", "root", "www-data"], ha
