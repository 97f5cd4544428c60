"""Orchestrations shown as they run: pigsty_progress.OrchestrationFollower turns the master's
events (a step's args event, its job's publication and each minion's return, a runner step's
new/ret) into lines with the seconds since the start; nested orchestrations are indented;
other jobs and other orchestrations are not shown. pigsty_orch refuses bad arguments before
anything starts, and the pigsty_progress outputter prints a line alone."""
import pytest

import pigsty_progress
from loader import load_module

ORCH = "20261202120000000001"


def args(kind, name, tgt=None, mods=None, jid=ORCH):
    data = {"type": kind, "name": name}
    if tgt is not None:
        data["tgt"] = tgt
    if mods is not None:
        data["args"] = {"arg": [mods]}
    return "salt/run/%s/args" % jid, data


def run_events(events, jid=ORCH):
    f = pigsty_progress.OrchestrationFollower(jid, 1000.0)
    out = []
    for now, (tag, data) in events:
        out += f.feed(tag, data, now)
    return out, f


def test_a_state_step_its_minions_and_its_end():
    lines, _f = run_events([
        (1000.5, args("runner", "pigsty.validate")),
        (1000.6, ("salt/run/r1/new", {"fun": "runner.pigsty.validate"})),
        (1000.9, ("salt/run/r1/ret", {"fun": "runner.pigsty.validate", "success": True, "return": {"ok": 1}})),
        (1001.0, args("state", "site-infra", ["meta", "node-1"], "infra")),
        (1001.1, ("salt/job/j1/new", {"fun": "state.sls", "minions": ["meta", "node-1"]})),
        (1002.0, ("salt/job/other/ret/node-2", {"success": True, "retcode": 0})),      # not ours
        (1005.1, ("salt/job/j1/ret/meta", {"success": True, "retcode": 0})),
        (1009.1, ("salt/job/j1/ret/node-1", {"success": True, "retcode": 2})),
    ])
    assert lines == [
        "[    0.5s] > runner pigsty.validate",
        "[    0.9s] done runner pigsty.validate (0.3 s)",
        "[    1.0s] > state infra on meta,node-1",
        "[    5.1s]   meta: ok (4.0 s)",
        "[    9.1s]   node-1: FAILED (retcode 2) (8.0 s)",
        "[    9.1s] FAILED site-infra: 1/2 minion(s) ok in 8.0 s",
    ]


def test_a_batched_step_counts_every_batch_not_salts_ping():
    """``batch: 2`` on three minions: Salt pings the target first (its returns are not the
    step's), then publishes one state job per batch; the step ends when the last batch's
    minion returned."""
    lines, _f = run_events([
        (1000.0, args("state", "site-nodes", "*", "node")),
        (1000.1, ("salt/job/p1/new", {"fun": "test.ping", "minions": ["meta", "node-1", "node-2"]})),
        (1000.2, ("salt/job/p1/ret/meta", {"success": True, "retcode": 0})),
        (1000.3, ("salt/job/b1/new", {"fun": "state.sls", "minions": ["meta", "node-1"]})),
        (1004.0, ("salt/job/b1/ret/meta", {"success": True, "retcode": 0})),
        (1005.0, ("salt/job/b1/ret/node-1", {"success": True, "retcode": 0})),
        (1005.1, ("salt/job/b2/new", {"fun": "state.sls", "minions": ["node-2"]})),
        (1009.0, ("salt/job/b2/ret/node-2", {"success": True, "retcode": 0})),
        (1009.5, args("runner", "pigsty.validate")),
    ])
    assert lines == [
        "[    0.0s] > state node on *",
        "[    4.0s]   meta: ok (3.9 s)",
        "[    5.0s]   node-1: ok (4.9 s)",
        "[    9.0s]   node-2: ok (8.9 s)",
        "[    9.0s] done site-nodes: 3/3 minion(s) ok in 8.9 s",
        "[    9.5s] > runner pigsty.validate",
    ]


def test_a_function_step_and_a_failed_runner():
    lines, _f = run_events([
        (1000.0, args("function", "pigsty_backup.stanza_create", ["meta"])),
        (1000.1, ("salt/job/j2/new", {"minions": ["meta"]})),
        (1001.0, ("salt/job/j2/ret/meta", {"success": True, "retcode": 0})),
        (1002.0, args("runner", "pigsty.wait_leader")),
        (1002.1, ("salt/run/r2/new", {})),
        (1010.0, ("salt/run/r2/ret", {"success": True, "return": {"result": False, "comment": "no leader"}})),
    ])
    assert lines[0] == "[    0.0s] > pigsty_backup.stanza_create on meta"
    assert lines[2] == "[    1.0s] done pigsty_backup.stanza_create on meta: 1/1 minion(s) ok in 0.9 s"
    assert lines[-1] == "[   10.0s] FAILED runner pigsty.wait_leader (7.9 s)"


def test_nested_orchestrations_are_indented_and_other_orchestrations_ignored():
    lines, f = run_events([
        (1000.0, args("runner", "state.orchestrate")),
        (1000.1, ("salt/run/r3/new", {"fun": "runner.state.orchestrate"})),
        (1000.2, args("state", "pg-test-primary", "node-1", "pgsql")),
        (1000.3, ("salt/job/j3/new", {"minions": ["node-1"]})),
        (1001.0, ("salt/job/j3/ret/node-1", {"success": True, "retcode": 0})),
        (1001.1, args("state", "elsewhere", "node-2", "node", jid="99999")),             # another orchestration
        (1002.0, ("salt/run/r3/ret", {"success": True, "return": {"retcode": 0}})),
    ])
    assert lines == [
        "[    0.0s] > runner state.orchestrate",
        "[    0.2s]   > state pgsql on node-1",
        "[    1.0s]     node-1: ok (0.7 s)",
        "[    1.0s]   done pg-test-primary: 1/1 minion(s) ok in 0.7 s",
        "[    2.0s] done runner state.orchestrate (1.9 s)",
    ]
    assert f.depth == 0 and f.ended is None


def test_following_any_orchestration_ends_with_its_run():
    f = pigsty_progress.OrchestrationFollower(None, 0.0)
    assert f.feed(*args("state", "x", "node-1", "node", jid="123"), now=1.0) == ["[    1.0s] > state node on node-1"]
    f.feed("salt/run/555/ret", {"fun": "runner.pigsty.validate"}, 2.0)
    assert f.ended is None
    f.feed("salt/run/556/ret", {"fun": "runner.state.orchestrate"}, 3.0)
    assert f.ended == "runner.state.orchestrate"


@pytest.mark.parametrize("tag, data", [("salt/beacon/node-1/patroni", {}), ("", None), (None, {}),
                                       ("salt/job/1/ret/x", "not a dict"), ("salt/run", {})])
def test_other_events_give_no_line(tag, data):
    f = pigsty_progress.OrchestrationFollower(ORCH, 0.0)
    assert f.feed(tag, data, 1.0) == []


@pytest.fixture
def orch():
    fired = []

    class JidEvent:
        def fire_event(self, data, tag):
            fired.append((tag, data))
    mod = load_module("_runners/pigsty_orch.py", opts={"id": "meta_master"}, jid_event=JidEvent(),
                      context={})
    mod.fired = fired
    return mod


@pytest.mark.parametrize("kwargs, field", [
    ({"mods": ""}, "mods"), ({"mods": None}, "mods"), ({"mods": "orch.site", "pillar": "x"}, "pillar")])
def test_bad_arguments_are_refused_before_anything_runs(orch, kwargs, field):
    orch.__salt__ = {"state.orchestrate": lambda *a, **k: pytest.fail("started")}
    refused = orch.run(**kwargs)
    assert refused["retcode"] == 1 and refused["comment"].startswith(field + ":"), refused
    assert orch.fired == [] and orch.__context__ == {"retcode": 1}


@pytest.mark.parametrize("timeout", ["x", 0, -1, 10 ** 6])
def test_follow_refuses_a_bad_timeout(orch, timeout):
    refused = orch.follow(timeout=timeout)
    assert refused["retcode"] == 1 and refused["comment"].startswith("timeout:"), refused


def test_the_outputter_prints_the_line_alone():
    out = load_module("_output/pigsty_progress.py")
    assert out.output({"suffix": "progress", "event": {"message": "[ 1.0s] ok", "_stamp": "x"}}) == "[ 1.0s] ok"
    assert out.output({"message": "m"}) == "m"
    assert out.output("text") == "text"
