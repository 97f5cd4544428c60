"""infra role against the real sandbox (after orch.site): Prometheus scrapes every expected
target, an alert travels Prometheus -> Alertmanager -> the webhook sink and resolves,
Nginx's name-based virtual hosts, dnsmasq's records, chrony, the local package repository,
and a second apply that changes nothing (the dashboards' expressions: test_observability.py).

Traffic goes to 10.10.10.0/24 only; every wait is bounded."""
import json
import os

import pytest

import patroni_rest
from meta_http import PROM, http, prom_query, prometheus, request
import yaml
from sandbox_cli import node_exec, REPO, salt_json, wait_for

import pigsty_inventory  # noqa: E402
import pigsty_monitor  # noqa: E402
from pillar_fixture import default_pillar

META = "10.10.10.10"
SINK = "/var/lib/pigsty-alerts/alerts.jsonl"
DB_NODES = ("node-1", "node-2", "node-3")




def expected_targets():
    """(job, ins, address) of every target pillar defines (pigsty_monitor, as Salt writes)."""
    inv = pigsty_inventory.inventory(default_pillar())
    groups = pigsty_monitor.infra_targets(inv)
    for cluster in inv["clusters"]:
        groups += pigsty_monitor.cluster_targets(inv, cluster)
    return {(g["labels"]["job"], g["labels"]["ins"], g["targets"][0]) for g in groups}


def sink_lines():
    res = node_exec("meta", "cat", SINK)
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()] if res.returncode == 0 else []


def alert_events(lines, alertname, ins):
    """(notification status, alert status) of every alert named ``alertname`` on ``ins``."""
    out = []
    for line in lines:
        for alert in line["body"].get("alerts", []):
            labels = alert.get("labels", {})
            if labels.get("alertname") == alertname and labels.get("ins") == ins:
                out.append(alert.get("status"))
    return out


@pytest.fixture(scope="module")
def infra(sandbox):
    wait_for(lambda: prometheus("/-/ready")[0] == 200, 60)
    return PROM


def test_prometheus_scrapes_every_expected_target(infra):
    want = expected_targets()
    # 4 instances x 5 exporters + prometheus, alertmanager + 3 etcd members + the backup
    # metrics of the repository on meta
    assert len(want) == 4 * 5 + 2 + 3 + 1

    last = []

    def all_up():
        got = {(r["metric"]["job"], r["metric"]["ins"], r["metric"]["instance"]): r["value"][1]
               for r in prom_query("up")}
        last[:] = sorted(k for k in want if got.get(k) != "1")
        return not last

    try:
        wait_for(all_up, 120, interval=5)
    except AssertionError:
        raise AssertionError("targets missing or down after 120s: %s" % last)


def test_targets_carry_cls_ins_ip_job_role(infra):
    rows = prom_query('up{job="pgbouncer",ins="pg-test-2"}')
    assert len(rows) == 1
    labels = rows[0]["metric"]
    assert {k: labels[k] for k in ("cls", "ins", "ip", "job", "role")} == {
        "cls": "pg-test", "ins": "pg-test-2", "ip": "10.10.10.12", "job": "pgbouncer",
        "role": "replica"}


def test_pgbouncer_down_fires_reaches_the_sink_and_resolves(infra):
    before = len(sink_lines())
    node_exec("node-2", "systemctl", "stop", "pgbouncer", check=True)
    try:
        wait_for(lambda: "firing" in alert_events(sink_lines()[before:], "PgbouncerDown", "pg-test-2"),
                 150, interval=5)
    finally:
        node_exec("node-2", "systemctl", "start", "pgbouncer", check=True)
    wait_for(lambda: "resolved" in alert_events(sink_lines()[before:], "PgbouncerDown", "pg-test-2"),
             120, interval=5)
    assert node_exec("node-2", "systemctl", "is-active", "pgbouncer").stdout.strip() == "active"


def test_nginx_virtual_hosts(infra):
    # HTTPS, each virtual host's certificate verified against the CA under its own domain
    status, body = http("https://%s/-/ready" % META, host="p.pigsty")
    assert status == 200 and "Prometheus" in body
    status, body = http("https://%s/-/ready" % META, host="a.pigsty")
    assert status == 200 and "OK" in body
    status, body = http("https://%s/" % META, host="h.pigsty")
    assert status == 200 and all(ins in body for ins in ("pg-meta-1", "pg-test-1", "pg-test-3"))
    # HAProxy's admin page on node-1, through Nginx (HTTPS to node-1 too): it asks for
    # pg-test's HAProxy login
    assert http("https://%s/pg-test-1/" % META, host="h.pigsty")[0] == 401
    with open(os.path.join(REPO, "pillar", "clusters", "pg-test.sls")) as fh:
        ha_password = yaml.safe_load(fh)["pigsty"]["clusters"]["pg-test"]["vars"]["haproxy_admin_password"]
    status, body = http("https://%s/pg-test-1/" % META, host="h.pigsty", auth=("admin", ha_password))
    assert status == 200 and "Statistics Report" in body
    status, body = http("https://%s/" % META, host="g.pigsty")
    assert status == 503 and "Grafana skipped" in body      # no Grafana package source
    status, body = http("https://%s/" % META, host="pigsty")
    assert status == 200 and "pg-test" in body and "VIP 10.10.10.3" in body
    # plain HTTP: a 301 to the same page over HTTPS, no login asked
    status, headers, _body = request("http://%s/-/ready" % META, host="p.pigsty")
    assert (status, headers.get("location")) == (301, "https://p.pigsty/-/ready")
    assert "www-authenticate" not in headers


def test_prometheus_and_alertmanager_are_not_reachable_from_the_network(infra):
    import socket
    for port in (9090, 9093, 9095):           # Prometheus, Alertmanager, the alert sink
        with pytest.raises(OSError):
            socket.create_connection((META, port), timeout=3).close()
    out = node_exec("meta", "ss", "-Hltn").stdout
    listening = {line.split()[3] for line in out.splitlines() if line.split()}
    assert {"127.0.0.1:9090", "127.0.0.1:9093"} <= listening, listening
    assert not [a for a in listening if a.endswith((":9090", ":9093", ":9095")) and not a.startswith("127.0.0.1:")]


def test_dnsmasq_answers_pigsty_names(infra):
    def dig(name):
        res = node_exec("node-1", "dig", "+short", "+time=2", "+tries=1", "@" + META, name,
                        timeout=30)
        return res.stdout.split()

    assert dig("pg-test") == ["10.10.10.3"]
    assert dig("pg-test-2") == ["10.10.10.12"]
    assert dig("node-3") == ["10.10.10.13"]
    assert dig("p.pigsty") == [META]
    leader = [m for m in patroni_rest.get("10.10.10.11", "/cluster")["members"]
              if m["role"] in ("leader", "master", "primary")][0]
    assert dig("pg-test-primary") == [leader["host"]]
    assert dig("deb.debian.org") == []      # nothing is forwarded upstream


def test_nodes_resolve_through_meta(infra):
    for node in DB_NODES:
        conf = node_exec(node, "cat", "/etc/resolv.conf").stdout
        assert "nameserver %s" % META in conf and "options timeout:1 attempts:1" in conf
    assert node_exec("node-2", "getent", "hosts", "pg-test").stdout.split()[0] == "10.10.10.3"


def test_chrony_on_nodes_tracks_meta(infra):
    for node in DB_NODES:
        wait_for(lambda n=node: "(%s)" % META in node_exec(n, "chronyc", "-n", "tracking").stdout,
                 90, interval=3)
    assert "allow 10.10.10.0/24" in node_exec("meta", "cat", "/etc/chrony/chrony.conf").stdout


def test_db_nodes_install_from_the_meta_repository_only(infra):
    # over HTTPS, verified with the CA, without the portal's login; plain HTTP only redirects
    status, body = http("https://%s/pigsty/Packages" % META, auth=None)
    assert status == 200 and "Package: postgresql-15\n" in body and "Package: etcd-server\n" in body
    status, headers, _body = request("http://%s/pigsty/Packages" % META, auth=None)
    assert status == 301 and headers.get("location") == "https://%s/pigsty/Packages" % META
    for node in DB_NODES:
        sources = node_exec(node, "cat", "/etc/apt/sources.list").stdout
        assert not [l for l in sources.splitlines() if l.startswith("deb")], (node, sources)
        assert node_exec(node, "ls", "/etc/apt/sources.list.d").stdout.split() == ["pigsty.list"]
        policy = node_exec(node, "apt-cache", "policy", "postgresql-15").stdout
        assert "https://10.10.10.10/pigsty ./ Packages" in policy and "deb.debian.org" not in policy
    # apt refuses the repository when the certificate is not checked against the Pigsty CA
    # (here: the node's own certificate given as the CA, lists in a scratch directory)
    res = node_exec("node-2", "sh", "-c", "d=$(mktemp -d) && mkdir $d/partial && apt-get "
                    "-o Acquire::https::10.10.10.10::CaInfo=/etc/pki/pigsty/node.crt "
                    "-o Dir::State::Lists=$d update 2>&1; rm -rf $d", timeout=120)
    assert "Certificate verification failed" in res.stdout, res.stdout
    # a real install from the repository (downloaded through Nginx over HTTPS with the CA, not
    # through the apt proxy)
    res = node_exec("node-3", "apt-get", "install", "-y", "-q", "--download-only", "etcd-client",
                    timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def test_second_infra_apply_changes_nothing(infra):
    ret, rc = salt_json("meta", "state.apply", "infra", timeout=900)
    assert rc == 0
    states = ret["meta"]
    assert isinstance(states, dict), states
    changed = [k for k, v in states.items() if v.get("changes")]
    assert not changed, changed
    assert all(v["result"] is True for v in states.values())
    grafana = [v for k, v in states.items() if "grafana-skipped" in k][0]
    assert "Grafana skipped" in grafana["comment"] and not grafana["changes"]
