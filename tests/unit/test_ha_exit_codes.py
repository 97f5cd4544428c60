"""Issue 16: a real `salt-run pigsty_ha.reconcile CLUSTER` or `pigsty_ha.reconcile_all` whose
reconciliation failed (a step's result False, a member's minion that did not answer, a
cluster that raised) exits 1: the return carries ``retcode`` 1 (salt-run's exit code) and a
``comment`` naming the step or cluster and why; a success keeps exit code 0 and the return it
always had. The reactor's run reports the failure in its return and the history only.

The cluster and its minions are test_ha_dryrun's in-memory ``World`` (the default pillar's
pg-test on node-1..3): each minion function behaves as the real one does on its node."""
import copy
import json
import time

import pytest

import pigsty_fanout
import pigsty_ha_inventory
import pigsty_inventory
from pillar_fixture import default_pillar
import test_ha_dryrun

env = test_ha_dryrun.env            # the fixture: the runner bound to test_ha_dryrun's World
history = test_ha_dryrun.history

EVENT = {"cluster": "pg-test", "instance": "pg-test-2", "ip": "10.10.10.12", "old_role": "replica",
         "new_role": "primary", "_tag": "salt/beacon/node-2/patroni/pigsty/patroni/change"}


def last_entry(runner):
    return json.loads(history(runner)[-1])


# ------------------------------------------------------------------ reconcile CLUSTER
def test_a_successful_reconcile_exits_0_with_the_return_it_always_had(env):
    env.world.leader = "pg-test-2"                 # Patroni promoted pg-test-2
    out = env.reconcile("pg-test")
    assert out["result"] is True
    assert set(out) == {"result", "cluster", "roles", "steps", "duration"}     # no retcode, no comment
    assert env.__context__.get("retcode", 0) == 0
    assert env.world.vip == {"node-1": False, "node-2": True, "node-3": False}
    assert "comment" not in last_entry(env)


def test_a_member_whose_minion_does_not_answer_fails_the_run_naming_the_step(env):
    env.world.leader = "pg-test-2"
    env.world.deaf = {"node-3"}                    # its Patroni answers, its minion does not
    out = env.reconcile("pg-test")
    assert out["result"] is False and out["retcode"] == 1 and env.__context__["retcode"] == 1
    comment = out["comment"]
    assert comment.startswith("reconciling pg-test failed: ")
    assert "haproxy: node-3: no answer" in comment
    assert "vip: VIP 10.10.10.3/24: node-3: no answer" in comment
    assert "pgbouncer: no pause state from node-3: no answer" in comment
    assert "targets_dns" not in comment            # the steps that did their part are not named
    # the members that answered were reconciled all the same
    assert env.world.vip["node-2"] is True and env.world.vip["node-1"] is False
    assert out["steps"]["haproxy"]["members"]["node-1"]
    # the history says so too (what a reactor-run reconcile reports)
    assert last_entry(env)["comment"] == comment
    assert env.history("pg-test")[-1]["ok"] is False


def test_a_step_that_raises_fails_the_run_with_the_exception(env, monkeypatch):
    def meta(*args, **kwargs):
        raise RuntimeError("dnsmasq hosts file is read-only")
    monkeypatch.setattr(env.pigsty_ha_steps, "meta", meta)
    out = env.reconcile("pg-test")
    assert out["result"] is False and out["retcode"] == 1
    assert "targets_dns: RuntimeError: dnsmasq hosts file is read-only" in out["comment"]
    assert "haproxy" not in out["comment"]


def test_a_vip_that_cannot_be_moved_fails_the_vip_step(env, monkeypatch):
    env.world.leader = "pg-test-2"
    real_call = env.world._call

    def call(minion, fun, arg, kwarg):
        if fun == "pigsty_vip.ensure" and kwarg.get("present"):
            return "ERROR: ip addr add 10.10.10.3/24: RTNETLINK answers: Operation not permitted"
        return real_call(minion, fun, arg, kwarg)
    monkeypatch.setattr(env.world, "_call", call)
    out = env.reconcile("pg-test")
    assert out["result"] is False and out["retcode"] == 1
    assert "vip: VIP 10.10.10.3/24: node-2: not added: ERROR: ip addr add" in out["comment"]
    assert out["steps"]["vip"]["actions"] == ["removed from pg-test-1"]


def test_a_failing_reactor_run_is_reported_in_its_return_and_history_only(env):
    env.world.leader = "pg-test-2"
    env.world.deaf = {"node-3"}
    out = env.reconcile(event=dict(EVENT))        # what reactor/patroni_change.sls runs: no exception
    assert out["result"] is False and out["retcode"] == 1 and "haproxy: node-3: no answer" in out["comment"]
    entry = last_entry(env)
    assert entry["event"]["instance"] == "pg-test-2" and entry["comment"] == out["comment"]


def test_a_step_that_does_not_finish_in_time_is_a_failure_not_a_gap():
    out = pigsty_fanout.parallel({"fast": (lambda: {"result": True},),
                                  "slow": (lambda: time.sleep(2) or {"result": True},)}, join_timeout=0.3)
    assert out["fast"] == {"result": True}
    assert out["slow"] == {"result": False, "comment": "did not finish within 0.3s"}


# ------------------------------------------------------------------ reconcile_all
@pytest.fixture
def two_clusters(env, monkeypatch):
    """pg-meta's Patroni does not answer (its member is down); pg-test's does."""
    patroni = env.pigsty_patroni
    world_get_json = env.world.get_json

    def get_json(host, port, path, *args, **kwargs):
        if host not in ("10.10.10.11", "10.10.10.12", "10.10.10.13"):
            raise patroni.PatroniError("%s: connection refused" % host)
        return world_get_json(host, port, path, *args, **kwargs)
    monkeypatch.setattr(patroni, "get_json", get_json)
    return env


def test_reconcile_all_goes_on_past_a_failing_cluster_and_exits_1_naming_it(two_clusters):
    env = two_clusters
    env.world.leader = "pg-test-2"
    out = env.reconcile_all()
    assert out["pg-meta"] is False and out["pg-test"] is True
    assert out["retcode"] == 1 and env.__context__["retcode"] == 1
    assert out["comment"] == "1 of 2 clusters not reconciled: pg-meta: haproxy: no member reachable"
    assert env.world.vip == {"node-1": False, "node-2": True, "node-3": False}   # pg-test was reconciled
    assert json.loads(history(env)[-1])["roles"]["pg-test-2"] == "primary"


def test_reconcile_all_names_a_cluster_that_raised(two_clusters, monkeypatch):
    env = two_clusters
    real_members = env._members

    def members(inv, cluster):
        if cluster == "pg-meta":
            raise ValueError("garbage from Patroni")
        return real_members(inv, cluster)
    monkeypatch.setattr(env, "_members", members)
    out = env.reconcile_all()
    assert out["pg-test"] is True and out["pg-meta"] == "failed: ValueError: garbage from Patroni"
    assert out["retcode"] == 1
    assert out["comment"] == ("1 of 2 clusters not reconciled: "
                              "pg-meta: failed: ValueError: garbage from Patroni")


def test_reconcile_all_that_succeeds_exits_0_with_the_return_it_always_had(env, monkeypatch):
    pillar = copy.deepcopy(default_pillar())
    del pillar["pigsty"]["clusters"]["pg-meta"]
    merged, inv = pigsty_ha_inventory._indexed(pillar, pigsty_inventory.inventory(pillar))
    monkeypatch.setattr(env, "_inventory", lambda: (merged, inv))
    env.world.leader = "pg-test-3"
    assert env.reconcile_all() == {"pg-test": True}
    assert env.__context__.get("retcode", 0) == 0
