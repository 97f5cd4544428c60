"""The inventory index (_utils/pigsty_model.py): built once, O(1) lookups by cluster,
instance, node id and address; compound values (pg_vip_address) parsed in one place; the
renderers index once per call, whatever the inventory's size."""
import glob
import json
import os

import pytest

import pigsty_dns
import pigsty_infra
import pigsty_inventory as inv_mod
import pigsty_model
import pigsty_monitor
import synthetic
from pillar_fixture import REPO, default_pillar


@pytest.fixture
def inv():
    return inv_mod.inventory(default_pillar())


def test_index_answers_what_the_functions_answer(inv):
    idx = pigsty_model.index(inv)
    assert idx == inv and isinstance(idx, dict)            # the inventory's own keys
    assert json.loads(json.dumps(idx)) == inv               # serializes like the inventory
    assert pigsty_model.index(idx) is idx                   # indexing an index: itself
    assert idx.node_by_ip["10.10.10.12"] == "node-2"
    assert idx.cluster_of_node("node-2") == ("pg-test", inv["clusters"]["pg-test"]["hosts"]["10.10.10.12"])
    assert idx.cluster_of_node("nope") == (None, None)
    assert idx.meta_nodes == ("meta",) and idx.meta_ips == ("10.10.10.10",)
    test = idx.cluster("pg-test")
    assert [m["pg_instance"] for m in test.members] == ["pg-test-1", "pg-test-2", "pg-test-3"]
    assert test.primary["minion"] == "node-1"
    assert test.conf["pg_cluster"] == "pg-test" and test.conf["pg_port"] == 5432
    assert test.vip == pigsty_model.Vip("10.10.10.3/24", "10.10.10.3", 24, test.vip.network)
    cls, member = idx.instance("pg-test-3")
    assert cls is test and member["ip"] == "10.10.10.13" and member["pg_offline_query"] is True
    assert idx.instance("pg-test-9") == (None, None)
    for name in inv["clusters"]:
        assert inv_mod.cluster_members(idx, name) == inv_mod.cluster_members(inv, name)
        assert inv_mod.cluster_vars(idx, name) == inv_mod.cluster_vars(inv, name)
    assert dict(inv_mod.node_by_ip(inv)) == idx.node_by_ip


def test_instance_addresses_is_what_an_event_check_takes(inv):
    import pigsty_events
    idx = pigsty_model.index(inv)
    full = {name: {m["pg_instance"]: m["ip"] for m in inv_mod.cluster_members(inv, name)}
            for name in inv["clusters"]}
    lazy = idx.instance_addresses()
    assert dict(lazy) == full and "pg-test" in lazy and "pg-nope" not in lazy and len(lazy) == 2
    for event in ({"cluster": "pg-test", "instance": "pg-test-2", "ip": "10.10.10.12"},
                  {"cluster": "pg-nope", "instance": "pg-nope-1", "ip": "10.10.10.12"},
                  {"cluster": "pg-test", "instance": "pg-test-7", "ip": "10.10.10.12"},
                  {"cluster": "pg-test", "instance": "pg-test-2", "ip": "10.10.10.13"}):
        event = dict(event, new_role="primary")
        assert pigsty_events.check_payload(event, lazy) == pigsty_events.check_payload(event, full)
    assert [len(pigsty_events.check_payload(dict(e, new_role="primary"), lazy)) for e in (
        {"cluster": "pg-test", "instance": "pg-test-2", "ip": "10.10.10.12"},
        {"cluster": "pg-nope", "instance": "pg-nope-1", "ip": "10.10.10.12"})] == [0, 1]


def test_functions_return_copies_the_index_stays_intact(inv):
    idx = pigsty_model.index(inv)
    conf = inv_mod.cluster_vars(idx, "pg-test")
    conf["pg_port"] = 1
    conf["pg_services"].append({"name": "x"})
    members = inv_mod.cluster_members(idx, "pg-test")
    members[0]["pg_role"] = "boss"
    gvars = inv_mod.global_vars(idx)
    gvars["pg_services"].append({"name": "y"})
    assert idx.cluster("pg-test").conf["pg_port"] == 5432
    assert idx.cluster("pg-test").members[0]["pg_role"] == "primary"
    assert idx.gvars["pg_services"] == [] == inv_mod.global_vars(idx)["pg_services"]
    with pytest.raises(TypeError):
        idx.gvars["pg_port"] = 1                            # read-only view


def test_unknown_cluster_and_malformed_parts_do_not_break_the_index():
    idx = pigsty_model.index({"nodes": {"a": {"ip": "10.0.0.1"}, "b": "oops"},
                              "clusters": {"x": ["not", "a", "mapping"], "y": {"hosts": "no"}}})
    assert idx.cluster("x").members == [] and idx.cluster("y").members == []
    assert idx.cluster("nope").conf["pg_cluster"] == "nope"
    assert idx.cluster_of_node("a") == (None, None) and idx.node("b") is None


@pytest.mark.parametrize("value, ip, prefix", [
    ("10.10.10.3/24", "10.10.10.3", 24),
    ("10.10.10.3/255.255.255.0", "10.10.10.3", 24),
    ("192.168.1.250/30", "192.168.1.250", 30),
])
def test_parse_vip(value, ip, prefix):
    vip = pigsty_model.parse_vip(value)
    assert (vip.address, vip.ip, vip.prefix, vip.cidr) == (value, ip, prefix, "%s/%d" % (ip, prefix))


@pytest.mark.parametrize("value", ["10.10.10.3", "10.10.10.300/24", "vip", "", None, "10.0.0.1/33"])
def test_parse_vip_refuses_what_is_not_address_slash_prefix(value):
    with pytest.raises(ValueError) as err:
        pigsty_model.parse_vip(value)
    assert "expected ADDRESS/PREFIX" in str(err.value)


def test_a_disabled_or_unparsable_vip_is_none():
    pillar = default_pillar()
    cvars = pillar["pigsty"]["clusters"]["pg-test"]["vars"]
    cvars["pg_vip_enabled"] = False
    assert pigsty_model.index(pillar["pigsty"]).cluster("pg-test").vip is None
    cvars.update(pg_vip_enabled=True, pg_vip_address="10.10.10.3")
    assert pigsty_model.index(pillar["pigsty"]).cluster("pg-test").vip is None


def test_vip_addresses_are_parsed_in_one_place():
    """pg_vip_address (ADDRESS/PREFIX) is parsed by pigsty_model.parse_vip only."""
    offenders = []
    for sub in ("_utils", "_modules", "_runners", "_pillar", "_states", "_beacons"):
        for path in glob.glob(os.path.join(REPO, sub, "*.py")):
            if os.path.basename(path) == "pigsty_model.py":
                continue
            with open(path) as fh:
                text = fh.read()
            if "IPv4Interface" in text or 'pg_vip_address"]).split' in text:
                offenders.append(os.path.relpath(path, REPO))
    assert offenders == []


def _count_indexes(monkeypatch):
    built = []
    init = pigsty_model.Inventory.__init__

    def counting(self, inv):
        built.append(1)
        init(self, inv)
    monkeypatch.setattr(pigsty_model.Inventory, "__init__", counting)
    return built


def test_every_renderer_indexes_the_inventory_once(monkeypatch):
    """One O(N) pass per call, not one per cluster (that was quadratic)."""
    inv = synthetic.inventory(60)
    built = _count_indexes(monkeypatch)
    for render in (lambda: pigsty_monitor.target_files(inv, roles={"pg-c00003-2": "primary"}),
                   lambda: pigsty_dns.hosts_file(pigsty_dns.records(inv, {"pg-c00004": "pg-c00004-3"})),
                   lambda: pigsty_infra.nginx(inv),
                   lambda: pigsty_infra.node(inv, "n00001-1"),
                   lambda: inv_mod.instance_config({"pigsty": inv}, "n00002-2")):
        del built[:]
        render()
        assert len(built) == 1
    del built[:]
    idx = pigsty_model.index(inv)
    pigsty_monitor.target_files(idx)
    pigsty_dns.records(idx)
    pigsty_infra.nginx(idx)
    for cluster in idx.cluster_names:
        inv_mod.cluster_members(idx, cluster)
        pigsty_monitor.cluster_targets(idx, cluster)
    assert len(built) == 1                                  # an index is used as it is


def test_synthetic_inventories_render_consistently():
    inv = synthetic.inventory(300)
    idx = pigsty_model.index(inv)
    assert len(idx.node_by_ip) == 901 and len(idx.host_owner) == 900
    for i in (0, 150, 299):
        name = synthetic.cluster_name(i)
        assert idx.cluster_of_node(synthetic.minion(i, 2))[0] == name
        assert idx.instance("%s-3" % name)[1]["minion"] == synthetic.minion(i, 3)
    records = dict((n, ip) for n, ip in pigsty_dns.records(idx))
    assert records["pg-c00150"] == "10.1.150.3" and records["pg-c00150-primary"] == "10.1.150.11"
    files = pigsty_monitor.target_files(idx)
    assert len(files) == 301
    groups = json.loads(files[pigsty_monitor.target_path("pg-c00299")])
    assert len(groups) == 15 and {g["labels"]["cls"] for g in groups} == {"pg-c00299"}
