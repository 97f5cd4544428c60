"""The failover runner's own machinery, without a master: reconciliations of a cluster take
turns and bursts coalesce; a malformed event is refused before anything is asked or
changed; parallel fan-outs never share a job id; a failing step is reported, not raised."""
import os
import threading
import time

import pytest
import salt.exceptions

from loader import load_module


@pytest.fixture
def runner(tmp_path):
    mod = load_module("_runners/pigsty_ha.py", "pigsty_ha_runner",
                      opts={"cachedir": str(tmp_path), "pillar_roots": {}}, context={})
    return mod


def test_lock_records_the_last_run_and_is_exclusive(runner, monkeypatch):
    monkeypatch.setattr(runner, "_inventory", lambda: ({}, {"clusters": {"pg-test": {}}}))  # one master
    with runner._cluster_lock("pg-test") as last:
        assert last == {}
        last.update(start=123.0, roles={"pg-test-1": "primary"})
        got = []
        t = threading.Thread(target=lambda: got.append(_try_lock(runner)))
        t.start()
        t.join(5)
        assert got == ["busy"]                     # a second run waits for the first
    with runner._cluster_lock("pg-test") as last:
        assert last == {"start": 123.0, "roles": {"pg-test-1": "primary"}}


def _try_lock(runner):
    try:
        with runner._cluster_lock("pg-test", wait=0.2):
            return "got it"
    except salt.exceptions.CommandExecutionError as exc:
        assert "pg-test" in str(exc)
        return "busy"


def test_a_request_covered_by_a_newer_run_does_nothing(runner, monkeypatch):
    members = [{"pg_instance": "pg-test-1", "ip": "10.10.10.11", "minion": "node-1"}]
    monkeypatch.setattr(runner, "_inventory", lambda: ({}, {"clusters": {"pg-test": {}}}))
    monkeypatch.setattr(runner, "_members", lambda inv, cluster: members)
    monkeypatch.setattr(runner, "_record", lambda cluster, entry: recorded.append(entry))
    recorded = []

    def must_not_run(*args):
        raise AssertionError("a covered request must not reconcile again")
    monkeypatch.setattr(runner, "_reconcile_now", must_not_run)
    with runner._cluster_lock("pg-test") as last:      # a run that started in the future
        last.update(start=time.time() + 60, roles={"pg-test-1": "primary"})
    out = runner.reconcile("pg-test")
    assert out["result"] is True and "covered by" in out["comment"]
    assert recorded and recorded[0]["covered_by"] and recorded[0]["roles"] == {"pg-test-1": "primary"}


def test_malformed_event_is_refused_before_anything_is_asked(runner, monkeypatch):
    inv = {"clusters": {"pg-test": {}}}
    monkeypatch.setattr(runner, "_inventory", lambda: ({}, inv))
    monkeypatch.setattr(runner.pigsty_inventory, "cluster_members",
                        lambda inv, name: [{"pg_instance": "pg-test-1", "ip": "10.10.10.11", "minion": "node-1"}])

    def must_not_be_called(*args, **kwargs):
        raise AssertionError("nothing may be asked or changed for a refused event")
    monkeypatch.setattr(runner, "_live_roles", must_not_be_called)
    monkeypatch.setattr(runner, "_fan_out", must_not_be_called)
    out = runner.reconcile(event={"cluster": "pg-test", "instance": "pg-test-9", "ip": "10.10.10.99",
                                  "new_role": "primary", "_tag": "salt/beacon/node-1/patroni/pigsty/patroni/change"})
    assert out["result"] is False and out["retcode"] == 1
    assert "event refused" in out["comment"] and "pg-test-9" in out["comment"]
    assert runner.__context__["retcode"] == 1


def test_parallel_fan_outs_get_distinct_job_ids(runner):
    import pigsty_fanout
    jids, threads = [], []
    for _ in range(8):
        threads.append(threading.Thread(target=lambda: jids.extend(
            pigsty_fanout.unique_jid(runner.__opts__) for _ in range(50))))
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(jids) == 400 and len(set(jids)) == 400


def test_parallel_reports_a_failing_step_instead_of_raising():
    import pigsty_fanout

    def boom():
        raise RuntimeError("member did not answer")
    out = pigsty_fanout.parallel({"ok": (lambda x: {"result": True, "x": x}, 1), "bad": (boom,)})
    assert out["ok"] == {"result": True, "x": 1}
    assert out["bad"]["result"] is False and "RuntimeError: member did not answer" in out["bad"]["comment"]


MEMBERS = [{"pg_instance": "pg-test-%d" % i, "ip": "10.10.10.1%d" % i, "minion": "node-%d" % i} for i in (1, 2, 3)]


@pytest.mark.parametrize("leader,expected", [
    ("pg-test-1", "unresponsive"),   # still holds the leader key: slow, not dead
    ("pg-test-2", "unreachable"),    # somebody else leads: it is gone
])
def test_live_roles_tells_a_slow_leader_from_a_dead_member(runner, monkeypatch, leader, expected):
    def get_json(host, port, path, timeout, access=None):
        if host == "10.10.10.11":
            raise runner.pigsty_patroni.PatroniError("timed out")
        return {"role": "replica", "state": "running", "timeline": 3}
    monkeypatch.setattr(runner.pigsty_patroni, "get_json", get_json)
    asked = []
    monkeypatch.setattr(runner.pigsty_patroni, "find_leader",
                        lambda hosts, port, timeout, access=None: asked.append(hosts) or ({"name": leader}, []))
    roles, _details = runner._live_roles(MEMBERS, 8008)
    assert roles["pg-test-1"] == expected and roles["pg-test-2"] == "replica"
    assert asked == [["10.10.10.12", "10.10.10.13"]]    # only members that answered are asked


def test_the_master_writes_its_own_meta_node_directly_and_the_others_through_salt(runner, monkeypatch):
    inv = {"nodes": {"meta": {"ip": "10.10.10.10"}, "meta-2": {"ip": "10.10.10.20"}}}
    import pigsty_ha_steps as steps
    monkeypatch.setattr(steps.pigsty_inventory, "meta_nodes", lambda inv: ["meta", "meta-2"])
    monkeypatch.setattr(steps.salt.utils.network, "ip_addrs", lambda include_loopback=False: ["10.10.10.10"])
    written, fanned = [], []
    monkeypatch.setattr(steps.pigsty_live_files, "record",
                        lambda inv, cluster, roles, reload_dns: written.append((cluster, roles)) or {"targets": True})
    monkeypatch.setattr(runner, "_fan_out", lambda minions, fun, args: fanned.append((minions, fun)) or
                        {m: {"targets": True} for m in minions})
    out = steps.meta(inv, "pg-test", {"pg-test-1": "primary"}, runner._fan)
    assert written == [("pg-test", {"pg-test-1": "primary"})]
    assert fanned == [(["meta-2"], "pigsty_live.record")]
    assert out["result"] is True and set(out["meta"]) == {"meta", "meta-2"}


def test_members_that_did_not_answer_are_not_asked_through_salt():
    import pigsty_fanout
    roles = {"pg-test-1": "unresponsive", "pg-test-2": "primary", "pg-test-3": "unreachable"}
    assert [m["pg_instance"] for m in pigsty_fanout.answering(MEMBERS, roles)] == ["pg-test-2"]


def test_inventory_is_compiled_once_for_all_reactor_processes(runner, monkeypatch, tmp_path):
    """The reactor runs each reconciliation in a process of its own: the compiled inventory
    is shared through the master's cache directory (mode 0600) until a pillar file changes."""
    import stat
    from pillar_fixture import default_pillar
    pillar_root = tmp_path / "pillar"
    pillar_root.mkdir()
    (pillar_root / "top.sls").write_text("base: {}\n")
    runner.__opts__["pillar_roots"] = {"base": [str(pillar_root)]}
    compiled = []

    def full_inventory(opts):
        compiled.append(1)
        return default_pillar(), []
    import pigsty_ha_inventory as cache
    cache._CACHE.clear()
    monkeypatch.setattr(cache.pigsty_pillar, "full_inventory", full_inventory)
    merged, inv = runner._inventory()
    assert len(compiled) == 1 and "pg-test" in inv["clusters"]
    cache_file = tmp_path / "pigsty" / "inventory.json"
    assert stat.S_IMODE(os.stat(cache_file).st_mode) == 0o600
    cache._CACHE.clear()                                  # another process
    assert runner._inventory() == (merged, inv) and len(compiled) == 1
    os.utime(pillar_root / "top.sls", (time.time() + 5, time.time() + 5))   # a pillar edit
    cache._CACHE.clear()
    runner._inventory()
    assert len(compiled) == 2


def test_inventory_that_json_cannot_give_back_is_not_cached(tmp_path):
    import pigsty_ha_inventory as cache
    path = str(tmp_path / "inv.json")
    assert cache.store(path, {"merged": {1: "int key"}}) is False
    assert not os.path.exists(path)
    assert cache.store(path, {"merged": {"a": [1, True, None]}}) is True


def test_an_event_without_a_beacon_tag_is_refused_and_counted(runner, monkeypatch):
    monkeypatch.setattr(runner, "_inventory", lambda: ({}, {"clusters": {"pg-test": {}}}))
    monkeypatch.setattr(runner.pigsty_inventory, "cluster_members",
                        lambda inv, name: [{"pg_instance": "pg-test-1", "ip": "10.10.10.11", "minion": "node-1"}])
    out = runner.reconcile(event={"cluster": "pg-test", "instance": "pg-test-1", "ip": "10.10.10.11",
                                  "new_role": "primary"})
    assert out["result"] is False and "not a Patroni beacon tag" in out["comment"]
    assert runner.events()["refused"] == {"unknown sender": 1}


def test_with_two_meta_nodes_the_lock_is_shared_in_etcd_and_a_dcs_out_of_reach_falls_back(
        runner, monkeypatch, caplog):
    """One meta node: the lock is a file. Two (Salt's multi-master): the masters share it in
    etcd (pigsty_ha_shared_lock, tested against a real etcd in
    tests/functional/test_etcd_tls_auth.py), every etcd member in turn; when none answers,
    this master's own lock is used and a warning says so (HA routing must not wait for the
    DCS)."""
    import socket
    from pillar_fixture import default_pillar
    import pigsty_inventory
    inv = pigsty_inventory.inventory(default_pillar())
    assert runner._shared_lock(inv) is None
    two = pigsty_inventory.inventory(default_pillar())
    two["nodes"]["meta-2"] = dict(two["nodes"]["meta"], ip="10.10.10.9")
    with caplog.at_level("WARNING"):        # this test host has no node certificate
        assert runner._shared_lock(two) is None
    assert "no shared locks" in caplog.text and "node.crt" in caplog.text
    built = []
    monkeypatch.setattr(runner.pigsty_ha_shared_lock, "client",
                        lambda ips, port, pki: built.append((ips, port, pki["node_crt"])) or "etcd")
    assert runner._shared_lock(two) == ("etcd", "master")
    import pigsty_model
    assert built == [(pigsty_model.index(two).dcs_ips, 2379, "/etc/pki/pigsty/node.crt")]
    assert built[0][0] == ("10.10.10.10", "10.10.10.11", "10.10.10.12")    # every etcd member
    monkeypatch.undo()
    caplog.clear()
    # nothing listens on these loopback ports: etcd out of reach
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    import pigsty_etcd
    import pigsty_ha_shared_lock
    down = pigsty_ha_shared_lock.Endpoints([pigsty_etcd.Client("http://127.0.0.1:%d" % p, timeout=1)
                                            for p in ports])
    monkeypatch.setattr(runner, "_shared_lock", lambda inv=None: (down, "meta_master"))
    with caplog.at_level("WARNING"):
        with runner._cluster_lock("pg-test") as last:
            assert last == {}
            last.update(start=7.0)
            assert _try_lock(runner) == "busy"      # this master's own lock, still exclusive
    assert "out of reach" in caplog.text and "own lock is used" in caplog.text
    with runner._cluster_lock("pg-test") as last:
        assert last == {"start": 7.0}
