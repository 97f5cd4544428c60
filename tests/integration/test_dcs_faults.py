"""Issue 13 item 7 in the real sandbox: the DCS is three etcd members (dcs_servers: meta,
node-1, node-2). All three vote; every client (Patroni, vip-manager, Prometheus) knows all
three; the peer port admits the members' peer certificate only. With one member down the
cluster still switches over and writes; with two down (no majority) Patroni's failsafe mode
keeps the primary writable (65 s, nothing demoted) while every member answers it, and everything returns when the
members do. Each test puts every member back, even on failure."""
import json
import time

import pytest

from pg_test_cluster import IPS, live_leader, put_back, TEST
from sandbox_cli import node_exec, salt_json, salt_run, wait_for
from pg import query
import patroni_rest

pytestmark = pytest.mark.disruptive

MEMBERS = {"meta": "10.10.10.10", "node-1": "10.10.10.11", "node-2": "10.10.10.12"}


def health():
    data, _rc = salt_json("meta", "pigsty_dcs.health")
    return data.get("meta") or {}


def all_healthy():
    h = health()
    return len(h) == 3 and all(h.values())


def start_all():
    for node in MEMBERS:
        node_exec(node, "systemctl", "start", "etcd", timeout=120)
    wait_for(all_healthy, 120, 2)


def writable():
    """A write transaction through the live primary's 5433 (HAProxy -> pgbouncer)."""
    leader = live_leader() or "pg-test-1"
    try:
        return query(IPS[leader], 5433, *TEST, "select txid_current()", dbname="test")
    except Exception:  # noqa: BLE001 - a failed write is what is counted
        return None


def failsafe_active(ip):
    """Patroni's own metric (None: no answer)."""
    try:
        _status, text = patroni_rest.request(ip, "/metrics", timeout=3)
    except Exception:  # noqa: BLE001
        return None
    line = next((ln for ln in str(text).splitlines() if ln.startswith("patroni_failsafe_mode_is_active")), "")
    return line.endswith(" 1") if line else None


def writes_through(ip):
    try:
        return bool(query(ip, 5433, *TEST, "select txid_current()", dbname="test"))
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture
def dcs(sandbox):
    wait_for(all_healthy, 240, 3)
    try:
        yield
    finally:
        start_all()
        put_back()


def test_three_voting_members_known_to_every_client(dcs):
    data, rc = salt_json("meta", "pigsty_dcs.members")
    assert rc == 0, data
    members = data["meta"]
    assert sorted((m["name"], m["role"]) for m in members) == [
        ("meta", "voting"), ("node-1", "voting"), ("node-2", "voting")]
    # Patroni and vip-manager of every database node list every member
    for node in ("node-1", "node-2", "node-3"):
        for path in ("/etc/patroni/config.yml", "/etc/vip-manager.yml"):
            conf = node_exec(node, "cat", path, check=True).stdout
            for ip in MEMBERS.values():
                assert "%s:2379" % ip in conf, (node, path, conf)
    # Prometheus scrapes each member
    targets = json.loads(node_exec("meta", "cat", "/etc/prometheus/targets/infra/infra.json", check=True).stdout)
    assert sorted(g["labels"]["ins"] for g in targets if g["labels"]["job"] == "etcd") == ["meta", "node-1", "node-2"]
    # orch.dcs and the dcs state again: nothing to change
    for node in MEMBERS:
        ret, rc = salt_json(node, "state.apply", "dcs", "test=True")
        states = ret[node]
        assert rc == 0 and all(s["result"] is True and not s["changes"] for s in states.values()), {
            k: (s["result"], s["comment"]) for k, s in states.items() if s["result"] is not True or s["changes"]}


PEER_GET = ("import ssl, sys, urllib.request\n"
            "ctx = ssl.create_default_context(cafile='/etc/pki/pigsty/ca.crt')\n"
            "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
            "print(urllib.request.urlopen('https://10.10.10.10:2380/members', context=ctx, timeout=5).status)\n")


def test_the_peer_port_admits_the_peer_certificate_only(dcs):
    ok = node_exec("node-1", "python3", "-c", PEER_GET, "/etc/pki/pigsty/etcd-peer.crt",
                   "/etc/pki/pigsty/etcd-peer.key")
    assert ok.returncode == 0 and ok.stdout.strip() == "200", ok.stdout + ok.stderr
    # node-3 runs no member: it has no peer certificate, and its node certificate opens nothing
    assert node_exec("node-3", "test", "-e", "/etc/pki/pigsty/etcd-peer.crt").returncode != 0
    refused = node_exec("node-3", "python3", "-c", PEER_GET, "/etc/pki/pigsty/node.crt", "/etc/pki/pigsty/node.key")
    assert refused.returncode != 0, refused.stdout


def test_one_member_down_the_cluster_still_switches_over(dcs):
    node_exec("node-1", "systemctl", "kill", "-s", "KILL", "etcd", check=True)
    node_exec("node-1", "systemctl", "stop", "etcd")            # no restart by systemd
    h = health()
    assert h["10.10.10.11:2379"] is False and h["10.10.10.10:2379"] and h["10.10.10.12:2379"], h
    before = live_leader()
    data, rc, res = salt_run("pigsty_ha.switchover", "pg-test", timeout=300)
    assert rc == 0 and data["result"] is True, res.stdout + res.stderr
    wait_for(lambda: live_leader() not in (None, before), 60, 1)
    assert wait_for(writable, 60, 1)


def test_two_members_down_failsafe_keeps_the_primary_writable(dcs):
    leader = live_leader()
    assert leader in IPS
    for node in ("node-1", "node-2"):                            # meta alone: no majority
        node_exec(node, "systemctl", "stop", "etcd", check=True)
    lost_at = time.monotonic()
    # Patroni notices after its retry_timeout (10 s, rto plan norm), then asks every member
    # (POST /failsafe) and keeps the primary: writes go on through 5433 the whole time, and
    # neither pg-test's primary nor pg-meta's (one member: it answers itself) is demoted
    failed, seen_failsafe, demoted = 0, False, []
    while time.monotonic() - lost_at < 65:
        if not writes_through(IPS[leader]):
            failed += 1
        if failsafe_active(IPS[leader]):
            seen_failsafe = True
        for ip in (IPS[leader], MEMBERS["meta"]):
            try:
                role = patroni_rest.get(ip, "/patroni", timeout=3).get("role")
            except Exception as exc:  # noqa: BLE001
                role = "no answer: %s" % exc
            if role not in ("master", "primary"):
                demoted.append((ip, role, round(time.monotonic() - lost_at)))
        time.sleep(2)
    assert seen_failsafe, "Patroni of %s never reported failsafe mode" % leader
    assert failed == 0, "%d writes failed while the DCS had no majority" % failed
    assert demoted == [], demoted
    start_all()
    # the leader key comes back: the live view and the runner work again
    wait_for(lambda: live_leader() == leader, 120, 2)
    wait_for(lambda: failsafe_active(IPS[leader]) is False, 120, 2)
    wait_for(lambda: salt_run("pigsty_ha.reconcile", "pg-test")[1] == 0, 90, 3)
