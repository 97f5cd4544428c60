"""Orchestration steps shown as they end: pigsty_progress.step_line reads Salt's
salt/job/<jid>/prog/... event data; pigsty_orch keeps the steps of its own orchestration and
of nested ones (this master's), once each, and refuses bad arguments before starting; the
pigsty_progress outputter prints the line alone."""
import pytest
import salt.exceptions

import pigsty_progress
from loader import load_module


def prog(n, result=True, sid="site-infra", total=9, comment="", duration=1234.5):
    return {"ret": {"__id__": sid, "name": sid, "result": result, "__run_num__": n, "duration": duration,
                    "comment": comment, "changes": {}}, "len": total}


def test_step_lines():
    assert pigsty_progress.step_line(prog(2), 75.25) == "[   75.2s] ok     3/9     site-infra (1.2 s)"
    assert pigsty_progress.step_line(prog(0, None), 1.0).startswith("[    1.0s] test   1/9 ")
    bad = pigsty_progress.step_line(prog(4, False, comment="Run failed on minions: node-2\n  more"), 300.0)
    assert bad.startswith("[  300.0s] FAILED 5/9     site-infra (1.2 s): Run failed on minions: node-2 more")
    assert pigsty_progress.step_line(prog(1), 2.0, nested=True).startswith("[    2.0s]   ok ")
    for not_a_step in (None, {}, {"ret": "x"}, {"ret": {"name": "no result"}}):
        assert pigsty_progress.step_line(not_a_step, 1.0) is None


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


def ev(jid, minion, n, **kw):
    return {"tag": "salt/job/%s/prog/%s/%d" % (jid, minion, n), "data": prog(n, **kw)}


def test_own_and_nested_steps_once_each_minions_and_others_ignored(orch):
    seen = set()
    assert orch._line(ev("111", "meta_master", 0), 0, "111", "meta_master", seen).startswith("[")
    assert orch._line(ev("111", "meta_master", 0), 0, "111", "meta_master", seen) is None     # repeated
    nested = orch._line(ev("222", "meta_master", 0), 0, "111", "meta_master", seen)
    assert nested and "  ok" in nested                                                    # nested: indented
    assert orch._line(ev("333", "node-1", 0), 0, "111", "meta_master", seen) is None      # a minion's state run
    assert orch._line({"tag": "salt/job/111/ret/node-1", "data": {}}, 0, "111", "meta_master", seen) is None
    assert orch._step("salt/job/9/prog/x/3", {}) == ("9", "x")
    assert orch._step("salt/run/9/progress", {}) is None


@pytest.mark.parametrize("kwargs, field", [
    ({"mods": ""}, "mods"), ({"mods": None}, "mods"), ({"mods": "orch.site", "pillar": "x"}, "pillar")])
def test_bad_arguments_are_refused_before_anything_runs(orch, kwargs, field):
    orch.__salt__ = {"state.orchestrate": lambda *a, **k: pytest.fail("started")}
    with pytest.raises(salt.exceptions.SaltInvocationError, match=field):
        orch.run(**kwargs)
    assert orch.fired == []


@pytest.mark.parametrize("timeout", ["x", 0, -1, 10 ** 6])
def test_follow_refuses_a_bad_timeout(orch, timeout):
    with pytest.raises(salt.exceptions.SaltInvocationError, match="timeout"):
        orch.follow(timeout=timeout)


def test_the_outputter_prints_the_line_alone():
    out = load_module("_output/pigsty_progress.py")
    assert out.output({"suffix": "progress", "event": {"message": "[ 1.0s] ok", "_stamp": "x"}}) == "[ 1.0s] ok"
    assert out.output({"message": "m"}) == "m"
    assert out.output("text") == "text"
