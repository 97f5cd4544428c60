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
a hard-killed primary on node-1 or node-2 already takes one member (test_dcs_faults covers the
DCS's own faults).
"""
import json
import subprocess

import pytest
import yaml

from pg_test_cluster import DBA, leader_back_on, live_leader, TEST
from sandbox_cli import node_exec, SANDBOX, wait_for
from pg import query
import second_master

pytestmark = pytest.mark.disruptive

META2 = (second_master.NAME, second_master.IP)
MEMBERS = {"pg-test-1": ("node-1", "10.10.10.11"), "pg-test-2": ("node-2", "10.10.10.12"),
           "pg-test-3": ("node-3", "10.10.10.13")}
salt_on = second_master.salt_on


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


def start_pg_test_machines():
    for _name, (node, _ip) in MEMBERS.items():
        subprocess.run(SANDBOX + ["start", node], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def two_masters(sandbox):
    wait_for(lambda: streaming_count() == 2, 240, 3)
    try:
        with second_master.second_master(on_exit=start_pg_test_machines):
            yield
    finally:
        start_pg_test_machines()
        wait_for(lambda: streaming_count() == 2, 240, 3)
        leader_back_on("pg-test-1")


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
    old = wait_for(live_leader, 60)
    old_node, old_ip = MEMBERS[old]
    before = len(history_on(META2[0]))
    second_master.stop_first_master()
    assert node_exec("meta", "systemctl", "is-active", "salt-master").stdout.strip() != "active"
    subprocess.run(SANDBOX + ["kill", old_node], check=True, capture_output=True, timeout=60)
    new = wait_for(lambda: (live_leader() or old) != old and live_leader(), 90)
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
