"""The live-roles files on a meta node (record, Prometheus targets, DNS hosts), written the
same way by the pigsty_live module and by the runner on the master's own meta node."""
import json
import os

import pytest

import pigsty_inventory as inv_mod
import pigsty_live_files as live
from pillar_fixture import default_pillar


@pytest.fixture
def dirs(tmp_path):
    for d in ("live", "targets/pgsql", "dns"):
        (tmp_path / d).mkdir(parents=True)
    return {"live_dir": str(tmp_path / "live"), "target_dir": str(tmp_path / "targets"),
            "hosts_file": str(tmp_path / "dns" / "hosts")}


def test_record_writes_roles_targets_and_dns_then_nothing_on_a_repeat(dirs):
    inv = inv_mod.inventory(default_pillar())
    reloads = []
    roles = {"pg-test-1": "unreachable", "pg-test-2": "primary", "pg-test-3": "replica"}
    changed = live.record(inv, "pg-test", roles, lambda: reloads.append(1), **dirs)
    assert changed == {"record": True, "targets": True, "dns": True} and reloads == [1]
    groups = json.load(open(os.path.join(dirs["target_dir"], "pgsql", "pg-test.json")))
    by_ins = {g["labels"]["ins"]: g["labels"]["role"] for g in groups}
    assert by_ins["pg-test-2"] == "primary" and by_ins["pg-test-1"] == "unreachable"
    hosts = open(dirs["hosts_file"]).read()
    assert any(line.split()[:1] == ["10.10.10.12"] and "pg-test-primary" in line.split() for line in hosts.splitlines())
    assert live.primaries(inv, dirs["live_dir"]) == {"pg-test": "pg-test-2"}
    # the same view again: nothing rewritten, dnsmasq left alone
    assert live.record(inv, "pg-test", roles, lambda: reloads.append(1), **dirs) == {
        "record": False, "targets": False, "dns": False}
    assert reloads == [1]


def test_record_refuses_an_unknown_cluster_or_a_non_mapping(dirs):
    inv = inv_mod.inventory(default_pillar())
    with pytest.raises(ValueError):
        live.record(inv, "pg-nope", {"x": "primary"}, lambda: None, **dirs)
    with pytest.raises(ValueError, match="live: expected"):
        live.record(inv, "pg-test", ["pg-test-1"], lambda: None, **dirs)
    assert os.listdir(dirs["live_dir"]) == []


def test_records_of_removed_clusters_are_ignored(dirs):
    inv = inv_mod.inventory(default_pillar())
    with open(os.path.join(dirs["live_dir"], "pg-gone.json"), "w") as fh:
        fh.write('{"pg-gone-1": "primary"}\n')
    assert live.read_all(inv, dirs["live_dir"]) == {}
