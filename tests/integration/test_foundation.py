"""Foundation, against the real sandbox: minions, identity grains, pillar scoping,
validation before any change."""
import json
import time

from sandbox_cli import salt_json, salt_run

ALL = {"meta", "node-1", "node-2", "node-3"}


def test_all_four_minions_answer(sandbox):
    ret, rc = salt_json("*", "test.ping")
    assert rc == 0
    assert {k for k, v in ret.items() if v is True} == ALL


def test_grain_targeting_pg_test_is_exactly_its_members(sandbox):
    ret, _rc = salt_json("-G", "pg_cluster:pg-test", "test.ping")
    assert set(ret) == {"node-1", "node-2", "node-3"}


def test_grain_targeting_pg_meta_is_meta(sandbox):
    ret, _rc = salt_json("-G", "pg_cluster:pg-meta", "test.ping")
    assert set(ret) == {"meta"}


def test_identity_grains_match_pillar(sandbox):
    ret, _rc = salt_json("*", "grains.item", "pg_cluster", "pg_seq", "pg_role", "pg_instance",
                         "pigsty_meta")
    assert ret["node-2"] == {"pg_cluster": "pg-test", "pg_seq": 2, "pg_role": "replica",
                             "pg_instance": "pg-test-2", "pigsty_meta": False}
    assert ret["meta"]["pg_instance"] == "pg-meta-1" and ret["meta"]["pigsty_meta"] is True


def test_node_cannot_read_another_clusters_passwords(sandbox):
    ret, _rc = salt_json("node-1", "pillar.items")
    pillar = ret["node-1"]
    test_vars = pillar["pigsty"]["clusters"]["pg-test"]["vars"]
    meta_vars = pillar["pigsty"]["clusters"]["pg-meta"]["vars"]
    assert test_vars["pg_admin_password"]            # its own cluster's secrets: present
    assert "pg_admin_password" not in meta_vars      # another cluster's: absent
    assert "pg_users" not in meta_vars
    dump = json.dumps(pillar)
    assert "Sandbox.DBA.meta" not in dump and "Sandbox.Meta" not in dump
    ret, _rc = salt_json("meta", "pillar.items")
    assert "Sandbox.DBA.test" not in json.dumps(ret["meta"])


def test_runner_validate_accepts_the_default_inventory(sandbox):
    data, rc, res = salt_run("pigsty.validate")
    assert rc == 0, res.stdout + res.stderr
    assert data["result"] is True and "clusters" not in data     # a summary, not every instance
    assert data["summary"].startswith("inventory valid: 2 clusters, 4 instances")
    data, rc, res = salt_run("pigsty.validate", "verbose=True")
    assert rc == 0, res.stdout + res.stderr
    assert data["clusters"]["pg-test"] == ["pg-test-1", "pg-test-2", "pg-test-3"]


def test_invalid_pillar_refuses_state_apply_and_changes_nothing(sandbox):
    before, _ = salt_json("node-2", "grains.item", "pg_seq", "pg_role")
    # pg-test-2 claims pg_seq 1 (duplicate) and a role that does not exist
    bad = {"pigsty": {"clusters": {"pg-test": {"hosts": {
        "10.10.10.12": {"pg_seq": 1, "pg_role": "boss"}}}}}}
    ret, rc = salt_json("node-2", "state.apply", "pillar=" + json.dumps(bad))
    assert rc != 0
    out = json.dumps(ret)
    assert "pigsty:clusters:pg-test:hosts:10.10.10.12:pg_seq" in out and "duplicate" in out
    assert "unknown role 'boss'" in out
    assert "Pillar failed to render" in out
    after, _ = salt_json("node-2", "grains.item", "pg_seq", "pg_role")
    assert after == before == {"node-2": {"pg_seq": 2, "pg_role": "replica"}}


def test_highstate_is_idempotent(sandbox):
    ret, rc = salt_json("*", "state.apply", timeout=1200)
    assert rc == 0
    for minion, states in ret.items():
        changed = [k for k, v in states.items() if v.get("changes")]
        assert not changed, "%s changed on a second apply: %s" % (minion, changed)
        assert all(v["result"] is True for v in states.values())


# A dry run of every node on the converged sandbox: nothing to do, and fast. Measured on
# this machine (2 cores): 4.8-5.8 s per node alone, 13.4 s for all four at once (median of
# 3, bench/dry_run.py; docs/benchmarks.md). The bound leaves room for a loaded CI machine.
DRY_RUN_BOUND_S = 45


def test_dry_run_of_every_node_is_fast_and_reports_nothing_to_do(sandbox):
    started = time.monotonic()
    ret, rc = salt_json("*", "state.apply", "test=True", timeout=600)
    took = time.monotonic() - started
    assert rc == 0, ret
    assert set(ret) == {"meta", "node-1", "node-2", "node-3"}
    for minion, states in ret.items():
        loud = {k: (v["result"], v["comment"]) for k, v in states.items()
                if v.get("changes") or v["result"] is not True}
        assert not loud, "%s: a dry run on a converged node reported %s" % (minion, loud)
    assert took < DRY_RUN_BOUND_S, "dry run of every node took %.1fs" % took
