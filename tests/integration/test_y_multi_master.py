"""Two meta nodes, two Salt masters (Salt's multi-master), in the real sandbox.

`sandbox.py add meta-2` starts 10.10.10.9 as a second salt-master (meta's key pair and
accepted keys, the same repository) and connects every minion to both masters. The test
adds meta-2 to the inventory as a meta node, applies the node role and the infra role to it
(Prometheus, Alertmanager, dnsmasq, Nginx, the repository; the Alertmanagers of both meta
nodes form a cluster), then stops the first master and its infra (salt-master, Prometheus,
Alertmanager, Nginx, dnsmasq on meta) and hard-kills pg-test's primary, whichever member it
is now. The second master's reactor reconciles the failover; its Prometheus still scrapes
every target that is up. At the end everything on meta starts again, the killed member
rejoins, the inventory is put back, meta-2's infra parts on meta are re-applied for one
meta node, and meta-2 is removed (the minions back on meta's master alone).

etcd stays up on meta: the DCS is its own three-member cluster (meta, node-1, node-2), and
a hard-killed primary on node-1 or node-2 already takes one member (test_y_dcs covers the
DCS's own faults).
"""
import json
import subprocess

import pytest
import yaml

from conftest import SANDBOX, leader_back_on, node_exec, pg_test_leader, wait_for
from extra_cluster import extra_nodes
from pg import query
from test_pgsql import DBA, TEST

META2 = ("meta-2", "10.10.10.9")
MEMBERS = {"pg-test-1": ("node-1", "10.10.10.11"), "pg-test-2": ("node-2", "10.10.10.12"),
           "pg-test-3": ("node-3", "10.10.10.13")}
META_INFRA = ["salt-master", "prometheus", "prometheus-alertmanager", "nginx", "dnsmasq"]


def salt_on(master, *args, timeout=900):
    """`salt --out=json` on ``master``'s salt-master: (minion -> return, exit code)."""
    res = node_exec(master, "salt", "--out=json", "--out-indent=-1", *args, timeout=timeout)
    data = {}
    for line in res.stdout.splitlines():
        if line.strip().startswith("{"):
            data.update(json.loads(line))
    return data, res.returncode, res


def apply(master, targets, sls):
    """state.apply ``sls`` on the minions ``targets`` (a list) through ``master``; fails
    naming the states that did not succeed."""
    data, code, res = salt_on(master, "-L", ",".join(targets), "state.apply", sls)
    bad = {m: ([c.get("comment") for c in r.values() if not c.get("result")] if isinstance(r, dict) else r)
           for m, r in data.items() if not isinstance(r, dict) or not all(c.get("result") for c in r.values())}
    assert sorted(data) == sorted(targets) and code == 0 and not bad, "state.apply %s on %s via %s: rc %d %s %s" % (
        sls, targets, master, code, json.dumps(bad)[:3000], res.stderr[-1000:])


def history_on(master):
    res = node_exec(master, "salt-run", "--out=json", "pigsty_ha.history", "pg-test", "last=1000", timeout=120)
    return json.loads(res.stdout) if res.returncode == 0 and res.stdout.strip().startswith("[") else []


def http_json(node, url):
    res = node_exec(node, "curl", "-sf", "--max-time", "5", url, timeout=60)
    return json.loads(res.stdout) if res.returncode == 0 else None


def streaming_count():
    for _name, (_node, ip) in MEMBERS.items():
        try:
            return len(query(ip, 5436, *DBA, "select 1 from pg_stat_replication where state = 'streaming'"))
        except Exception:  # noqa: BLE001 - the next member answers
            continue
    return 0


@pytest.fixture(scope="module")
def two_masters(sandbox):
    wait_for(lambda: streaming_count() == 2, 240, 3)
    try:
        added = subprocess.run(SANDBOX + ["add", META2[0]], capture_output=True, text=True, timeout=900)
        assert added.returncode == 0, "sandbox add %s: %s%s" % (META2[0], added.stdout[-3000:], added.stderr[-2000:])
        with extra_nodes({META2[0]: {"ip": META2[1], "meta": True}}):
            # meta-2's certificate (the CA on meta signs under the policy of its new pillar),
            # its etcd user (the masters' role), then the infra of both meta nodes
            synced, _code, res = salt_on("meta", META2[0], "saltutil.sync_all")
            assert META2[0] in synced, res.stdout[-2000:] + res.stderr[-1000:]
            for sls, targets in (("node", [META2[0]]), ("dcs", ["meta"]), ("infra", ["meta", META2[0]])):
                apply("meta", targets, sls)
            try:
                yield
            finally:
                # meta's master and infra first: the pillar's restore refreshes through it
                restart_what_the_test_stopped()
    finally:
        restart_what_the_test_stopped()
        # back to one meta node: the Alertmanager alone, meta-2's etcd user gone
        for sls in ("infra.alertmanager", "dcs"):
            node_exec("meta", "salt", "meta", "state.apply", sls, timeout=900)
        subprocess.run(SANDBOX + ["remove", META2[0]], capture_output=True, timeout=600)
        wait_for(lambda: streaming_count() == 2, 240, 3)
        leader_back_on("pg-test-1")


def restart_what_the_test_stopped():
    """meta's master and infra running, every pg-test machine started (idempotent)."""
    for svc in META_INFRA:
        node_exec("meta", "systemctl", "start", svc, timeout=120)
    for _name, (node, _ip) in MEMBERS.items():
        subprocess.run(SANDBOX + ["start", node], capture_output=True, timeout=120)
    wait_for(lambda: node_exec("meta", "salt", "-t", "5", "meta", "test.ping").returncode == 0, 60, 2)


def test_every_minion_answers_both_masters_and_the_alertmanagers_form_one_cluster(two_masters):
    everyone = {"meta", "node-1", "node-2", "node-3", META2[0]}
    for master in ("meta", META2[0]):
        data, _code, res = salt_on(master, "-t", "10", "*", "test.ping")
        assert {m for m, r in data.items() if r is True} >= everyone, (master, res.stdout[-2000:])
    for node in ("meta", META2[0]):
        status = wait_for(lambda n=node: (http_json(n, "http://127.0.0.1:9093/api/v2/status") or {})
                          .get("cluster", {}).get("status") == "ready"
                          and http_json(n, "http://127.0.0.1:9093/api/v2/status"), 90, 3)
        assert len(status["cluster"]["peers"]) == 2, status["cluster"]
        assert sorted(p["address"].split(":")[0] for p in status["cluster"]["peers"]) == ["10.10.10.10", "10.10.10.9"]
    # meta-2's own Nginx serves the package repository over HTTPS (its certificate names its
    # address) and its dnsmasq answers the inventory's names
    for meta_ip in ("10.10.10.10", META2[1]):
        res = node_exec("node-3", "curl", "-sf", "--max-time", "10", "--cacert", "/etc/pki/pigsty/ca.crt",
                        "-o", "/dev/null", "-w", "%{http_code}", "https://%s/pigsty/Packages" % meta_ip, timeout=60)
        assert res.stdout == "200", (meta_ip, res.stdout, res.stderr)
    assert node_exec("node-3", "dig", "+short", "@" + META2[1], "pg-test-1").stdout.strip() == "10.10.10.11"
    # the gossip speaks TLS with a certificate of the Pigsty CA and asks the peer for one
    tls = node_exec("node-3", "sh", "-c", "openssl s_client -connect %s:9094 -CAfile /etc/pki/pigsty/ca.crt "
                    "</dev/null 2>&1" % META2[1], timeout=60).stdout
    assert "Verify return code: 0 (ok)" in tls and "Acceptable client certificate CA names" in tls, tls[-2000:]


def test_with_the_first_master_and_its_infra_stopped_the_second_reconciles_a_failover(two_masters):
    old = wait_for(pg_test_leader, 60)
    old_node, old_ip = MEMBERS[old]
    before = len(history_on(META2[0]))
    node_exec("meta", "systemctl", "stop", *META_INFRA, check=True, timeout=120)
    assert node_exec("meta", "systemctl", "is-active", "salt-master").stdout.strip() != "active"
    subprocess.run(SANDBOX + ["kill", old_node], check=True, capture_output=True, timeout=60)
    new = wait_for(lambda: (pg_test_leader() or old) != old and pg_test_leader(), 90)
    new_node, new_ip = MEMBERS[new]

    # the second master's reactor ran the reconciliation: its history saw the new primary
    def reconciled():
        return [h for h in history_on(META2[0])[before:] if h.get("primary") == new and h.get("ok")]
    assert wait_for(reconciled, 90, 2)
    # its own targets and DNS carry the new roles (written by its runner, meta's are down)
    def target_roles():
        res = node_exec(META2[0], "cat", "/etc/prometheus/targets/pgsql/pg-test.json")
        return {g["labels"]["ins"]: g["labels"]["role"] for g in yaml.safe_load(res.stdout)}
    assert wait_for(lambda: target_roles().get(new) == "primary", 30)
    assert target_roles()[old] == "unreachable"
    survivor = next(n for n, (_node, _ip) in MEMBERS.items() if n not in (old, new))
    assert wait_for(lambda: node_exec(MEMBERS[survivor][0], "dig", "+short", "@" + META2[1],
                                      "pg-test-primary").stdout.strip() == new_ip, 30)
    # writes reach the new primary through the survivors' 5433
    for _name, (node, ip) in MEMBERS.items():
        if ip != old_ip:
            assert wait_for(lambda i=ip: query(i, 5433, *TEST, "select pg_is_in_recovery()", dbname="test")
                            == [(False,)], 30)

    # the second Prometheus scrapes every target; the only ones down are the killed node's
    def scraped():
        data = http_json(META2[0], "http://127.0.0.1:9090/api/v1/targets?state=active")
        if not data:
            return None
        active = data["data"]["activeTargets"]
        down = {t["labels"].get("ins") for t in active if t["health"] != "up" and t["labels"].get("ip") != old_ip}
        killed = {t["health"] for t in active if t["labels"].get("ip") == old_ip}
        return None if down or killed != {"down"} else active      # (unknown: not scraped since)
    active = wait_for(scraped, 120, 5)
    instances = {t["labels"].get("ins") for t in active}
    assert {"pg-meta-1", "pg-test-1", "pg-test-2", "pg-test-3", META2[0]} <= instances, instances
    assert {t["labels"]["job"] for t in active} >= {"node", "pgsql", "pgbouncer", "haproxy", "patroni", "etcd",
                                                    "prometheus", "alertmanager"}
    assert {t["labels"]["ins"] for t in active if t["labels"].get("ip") == old_ip} >= {old}
    print("failover %s -> %s reconciled by %s with meta's master and infra stopped" % (old, new, META2[0]))
