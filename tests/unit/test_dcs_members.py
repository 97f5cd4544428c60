"""dcs_servers: validation, the member order, the join plan (one learner at a time) and the
etcd peer certificate's policy. The real etcds: tests/functional/test_etcd_members.py."""
import copy

import pytest

import pigsty_etcd_members as M
import pigsty_inventory as inv
import pigsty_model
import pigsty_pki
from pillar_fixture import default_pillar

PORT = 2380


def with_servers(servers, **gvars):
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["dcs_servers"] = servers
    pillar["pigsty"]["vars"].update(gvars)
    return pillar


def problems_of(pillar):
    return [p for p in inv.validate(pillar) if "dcs_servers" in p]


def test_the_sandbox_runs_three_members_meta_first():
    idx = pigsty_model.index(inv.inventory(default_pillar()))
    assert [(m["name"], m["node"], m["ip"], m["meta"]) for m in idx.dcs_members] == [
        ("meta", "meta", "10.10.10.10", True), ("node-1", "node-1", "10.10.10.11", False),
        ("node-2", "node-2", "10.10.10.12", False)]
    assert inv.validate(default_pillar()) == []


def test_without_dcs_servers_each_meta_node_runs_one_named_by_its_id():
    pillar = with_servers({})
    pillar["pigsty"]["nodes"]["meta-2"] = {"ip": "10.10.10.20", "meta": True}
    idx = pigsty_model.index(inv.inventory(pillar))
    assert [(m["name"], m["ip"]) for m in idx.dcs_members] == [("meta", "10.10.10.10"), ("meta-2", "10.10.10.20")]


def test_members_on_meta_nodes_come_first_then_by_name():
    pillar = with_servers({"zz-db": "10.10.10.11", "aa-db": "10.10.10.12", "m": "10.10.10.10"})
    idx = pigsty_model.index(inv.inventory(pillar))
    assert [m["name"] for m in idx.dcs_members] == ["m", "aa-db", "zz-db"]
    assert problems_of(pillar) == []


@pytest.mark.parametrize("servers, gvars, expected", [
    (["10.10.10.10"], {}, "pigsty:vars:dcs_servers: expected a mapping of member name -> node address"),
    ({"meta": "10.10.10.99"}, {}, "pigsty:vars:dcs_servers:meta: 10.10.10.99 is not a node of the inventory"),
    ({"meta": "nope"}, {}, "pigsty:vars:dcs_servers:meta: expected the IPv4 address of a node, got 'nope'"),
    ({"Meta_1": "10.10.10.10"}, {}, "pigsty:vars:dcs_servers:Meta_1: bad member name"),
    ({"a": "10.10.10.11", "b": "10.10.10.12"}, {}, "pigsty:vars:dcs_servers: no member on a meta node"),
    ({"a": "10.10.10.10", "b": "10.10.10.10"}, {}, "pigsty:vars:dcs_servers:b: 10.10.10.10 is also member a"),
    ({"meta": "10.10.10.10"}, {"dcs_type": "consul", "consul_hosts": ["10.10.10.10:8500"]},
     "pigsty:vars:dcs_servers: dcs_type is consul"),
])
def test_a_wrong_dcs_servers_is_named(servers, gvars, expected):
    found = problems_of(with_servers(servers, **gvars))
    assert any(p.startswith(expected) for p in found), found


def test_more_than_seven_members_is_refused():
    pillar = default_pillar()
    servers = {"meta": "10.10.10.10"}
    for i in range(8):
        ip = "10.10.10.%d" % (30 + i)
        pillar["pigsty"]["nodes"]["x%d" % i] = {"ip": ip}
        servers["x%d" % i] = ip
    pillar["pigsty"]["vars"]["dcs_servers"] = servers
    assert any("9 members (expected 1 to 7" in p for p in problems_of(pillar))


def test_only_member_nodes_get_an_etcd_peer_policy_with_the_one_peer_cn():
    index = inv.inventory(default_pillar())
    policies = pigsty_pki.signing_policies(index)
    peer = policies["pigsty-etcd-node-1"]
    assert peer["minions"] == "node-1" and peer["CN"] == pigsty_pki.ETCD_PEER_CN
    assert peer["subjectAltName"] == "DNS:node-1, IP:10.10.10.11"
    assert "pigsty-etcd-node-3" not in policies           # node-3 runs no member
    req = pigsty_pki.etcd_peer_request(index, "node-2")
    assert req["ca_server"] == "meta" and req["signing_policy"] == "pigsty-etcd-node-2"
    assert pigsty_pki.etcd_peer_request(index, "meta")["ca_server"] is None   # the CA signs its own


# ------------------------------------------------------------------ the join plan
WANTED = [{"name": "meta", "ip": "10.0.0.1"}, {"name": "n1", "ip": "10.0.0.2"}, {"name": "n2", "ip": "10.0.0.3"}]


def live(*members):
    """Members as etcdctl lists them: (name, ip, learner)."""
    return [{"id": 100 + i, "name": n, "peer_urls": ["https://%s:%d" % (ip, PORT)], "client_urls": [],
             "learner": learner} for i, (n, ip, learner) in enumerate(members)]


def test_one_learner_at_a_time_in_the_inventorys_order():
    assert M.plan(WANTED, live(("meta", "10.0.0.1", False)), PORT) == {
        "add": ["n1"], "promote": [], "waiting": [], "pending": ["n2"], "unknown": []}
    # n1 added, not started: nothing more to do until it starts
    assert M.plan(WANTED, live(("meta", "10.0.0.1", False), ("", "10.0.0.2", True)), PORT) == {
        "add": [], "promote": [], "waiting": ["n1"], "pending": ["n2"], "unknown": []}
    # n1 started: promote it, then add n2
    assert M.plan(WANTED, live(("meta", "10.0.0.1", False), ("n1", "10.0.0.2", True)), PORT) == {
        "add": ["n2"], "promote": ["n1"], "waiting": [], "pending": [], "unknown": []}
    done = live(("meta", "10.0.0.1", False), ("n1", "10.0.0.2", False), ("n2", "10.0.0.3", False),
                ("old", "10.0.0.9", False))
    assert M.plan(WANTED, done, PORT) == {"add": [], "promote": [], "waiting": [], "pending": [],
                                          "unknown": ["https://10.0.0.9:2380"]}


class FakeCtl:
    """etcdctl's answers, scripted: ``errors`` {call: [messages to raise first]}."""

    def __init__(self, members, errors=None):
        self.live = members
        self.errors = errors or {}
        self.calls = []

    def members(self):
        return copy.deepcopy(self.live)

    def _maybe_fail(self, call):
        pending = self.errors.get(call) or []
        if pending:
            raise M.MembersError(pending.pop(0))

    def promote(self, member_id):
        self.calls.append(("promote", member_id))
        self._maybe_fail("promote")
        for m in self.live:
            if m["id"] == member_id:
                m["learner"] = False

    def add_learner(self, name, url):
        self.calls.append(("add", name, url))
        self._maybe_fail("add")
        self.live.append({"id": 900, "name": "", "peer_urls": [url], "client_urls": [], "learner": True})


def test_converge_promotes_then_adds_and_waits_for_etcd_to_be_ready():
    ctl = FakeCtl(live(("meta", "10.0.0.1", False), ("n1", "10.0.0.2", True)),
                  errors={"promote": ["etcdserver: " + M.LEARNER_NOT_READY],
                          "add": [M.NOT_CONNECTED_LONG_ENOUGH]})
    slept = []
    changes, _ = M.converge(ctl, WANTED, PORT, sleep=slept.append)
    assert changes == {"promoted": ["n1"], "added": ["n2"]}
    assert [c[0] for c in ctl.calls] == ["promote", "promote", "add", "add"] and slept == [1.0, 1.0]
    assert ctl.calls[-1] == ("add", "n2", "https://10.0.0.3:2380")


def test_converge_dry_changes_nothing_and_a_refusal_is_said():
    ctl = FakeCtl(live(("meta", "10.0.0.1", False)))
    changes, steps = M.converge(ctl, WANTED, PORT, dry=True)
    assert changes == {"added": ["n1"]} and ctl.calls == [] and steps["pending"] == ["n2"]
    ctl = FakeCtl(live(("meta", "10.0.0.1", False)), errors={"add": ["etcdserver: permission denied"]})
    with pytest.raises(M.MembersError, match="n1: not added: etcdserver: permission denied"):
        M.converge(ctl, WANTED, PORT)
    # a learner that never catches up: bounded
    clock = iter(range(0, 1000, 10))
    ctl = FakeCtl(live(("meta", "10.0.0.1", False), ("n1", "10.0.0.2", True)),
                  errors={"promote": ["etcdserver: " + M.LEARNER_NOT_READY] * 100})
    with pytest.raises(M.MembersError, match="n1: not promoted"):
        M.converge(ctl, WANTED, PORT, wait=30, sleep=lambda s: None, clock=lambda: next(clock))


def test_a_joining_member_starts_with_the_cluster_as_etcd_lists_it():
    members = M.parse_v2_members({"members": [
        {"id": "8e9e05c52164694d", "name": "meta", "peerURLs": ["https://10.0.0.1:2380"]},
        {"id": "1c", "name": "", "peerURLs": ["https://10.0.0.2:2380"]}]})
    assert members[0]["id"] == 0x8e9e05c52164694d
    env = M.join_env(members, "n1", "https://10.0.0.2:2380")
    assert env == {"ETCD_INITIAL_CLUSTER": "meta=https://10.0.0.1:2380,n1=https://10.0.0.2:2380",
                   "ETCD_INITIAL_CLUSTER_STATE": "existing"}
    # n1 added, not started: n2 cannot join before it
    with pytest.raises(M.MembersError, match="added but has not started"):
        M.join_env(members, "n2", "https://10.0.0.3:2380")
    started = [dict(m, name=m["name"] or "n1") for m in members]
    with pytest.raises(M.MembersError, match=r"n2 \(https://10.0.0.3:2380\) is not a member of the etcd cluster yet"):
        M.join_env(started, "n2", "https://10.0.0.3:2380")
    assert M.bootstrap_env(WANTED, PORT) == {"ETCD_INITIAL_CLUSTER": "meta=https://10.0.0.1:2380",
                                             "ETCD_INITIAL_CLUSTER_STATE": "new"}


def test_etcdctl_gets_the_password_in_its_environment_never_argv(tmp_path):
    script = tmp_path / "etcdctl"
    out = tmp_path / "seen"
    script.write_text("#!/bin/sh\necho \"$@\" > %s\nenv | grep ^ETCDCTL_ | sort >> %s\n"
                      "echo '{\"members\": []}'\n" % (out, out))
    script.chmod(0o755)
    ctl = M.Etcdctl(["https://127.0.0.1:2379"], "/ca", "/c", "/k", user="root", password="S3cret pw",
                    binary=str(script))
    assert ctl.members() == []
    seen = out.read_text().splitlines()
    assert seen[0] == "member list -w json" and "S3cret" not in seen[0]
    assert "ETCDCTL_USER=root:S3cret pw" in seen and "ETCDCTL_ENDPOINTS=https://127.0.0.1:2379" in seen
