"""Grain derivation: each node's identity comes from the pillar inventory."""
import pytest

import pigsty_inventory as inv
from pillar_fixture import default_pillar


@pytest.mark.parametrize("minion,cluster,seq,role", [
    ("meta", "pg-meta", 1, "primary"),
    ("node-1", "pg-test", 1, "primary"),
    ("node-2", "pg-test", 2, "replica"),
    ("node-3", "pg-test", 3, "replica"),
])
def test_identity_of_sandbox_nodes(minion, cluster, seq, role):
    grains = inv.identity(default_pillar(), minion)
    assert grains["pg_cluster"] == cluster
    assert grains["pg_seq"] == seq
    assert grains["pg_role"] == role
    assert grains["pg_instance"] == "%s-%d" % (cluster, seq)
    assert grains["pigsty_meta"] is (minion == "meta")
    assert grains["pigsty_meta_nodes"] == ["meta"]


def test_node_without_instance_gets_no_pg_grains():
    pillar = default_pillar()
    pillar["pigsty"]["nodes"]["node-4"] = {"ip": "10.10.10.14"}
    grains = inv.identity(pillar, "node-4")
    assert grains["node_ip"] == "10.10.10.14"
    assert all(grains[k] is None for k in ("pg_cluster", "pg_seq", "pg_role", "pg_instance"))


def test_unknown_minion_is_an_error_naming_it():
    with pytest.raises(inv.InventoryError) as err:
        inv.identity(default_pillar(), "stranger")
    assert "pigsty:nodes:stranger" in str(err.value)


def test_instance_config_layers_defaults_global_cluster_member():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["pg_conf"] = "olap"
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_rto_plan"] = "fast"
    conf = inv.instance_config(pillar, "node-3")
    assert conf["pg_port"] == 5432                      # default
    assert conf["pg_conf"] == "olap"                    # global vars
    assert conf["pg_rto_plan"] == "fast"                # cluster vars
    assert conf["pg_offline_query"] is True             # member entry
    assert conf["pg_vip_interface"] == "eth1"
    assert [m["pg_instance"] for m in conf["pg_members"]] == ["pg-test-1", "pg-test-2", "pg-test-3"]
    assert [m["minion"] for m in conf["pg_members"]] == ["node-1", "node-2", "node-3"]
    # the defaults themselves were not modified by the merge
    assert inv.instance_config(default_pillar(), "node-3")["pg_conf"] == "oltp"


def test_instance_config_none_without_instance():
    pillar = default_pillar()
    pillar["pigsty"]["nodes"]["node-4"] = {"ip": "10.10.10.14"}
    assert inv.instance_config(pillar, "node-4") is None
