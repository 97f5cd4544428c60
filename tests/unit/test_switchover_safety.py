"""A planned switchover goes only to a replica that streams from the leader, and only once
it has every WAL byte the paused clients committed. A replica that was just restarted or
rewound (no walsender yet) reports a small lag from its own replay position; switching to
it forks the timeline (seen in a bench run: the two other members then needed pg_rewind and
the next failure found no healthy replica)."""
import pytest

import pigsty_patroni as patroni
from loader import load_module

MEMBERS = {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12", "pg-test-3": "10.10.10.13"}


def cluster(*replicas):
    doc = {"members": [{"name": "pg-test-1", "role": "leader", "state": "running", "host": "10.10.10.11",
                        "timeline": 9, "tags": {}}]}
    for name, state, lag, tags in replicas:
        doc["members"].append({"name": name, "role": "replica", "state": state, "host": MEMBERS[name],
                               "timeline": 9, "tags": tags, "lag": lag})
    return doc


def leader_status(location=1000, streaming=("pg-test-2", "pg-test-3"), timeline=9):
    return {"role": "master", "state": "running", "timeline": timeline, "xlog": {"location": location},
            "replication": [{"application_name": n, "state": "streaming"} for n in streaming]}


def test_streaming_reads_the_leaders_walsenders():
    st = leader_status(streaming=("pg-test-2",))
    st["replication"].append({"application_name": "pg-test-3", "state": "catchup"})
    assert patroni.streaming(st) == {"pg-test-2"}
    assert patroni.streaming({}) == set()


def test_candidates_best_first_with_reasons_for_the_others():
    doc = cluster(("pg-test-2", "running", 300, {}), ("pg-test-3", "running", 10, {}))
    ok, why = patroni.switchover_candidates(doc, leader_status(), 1048576)
    assert ok == [("pg-test-3", 10), ("pg-test-2", 300)] and why == {}


@pytest.mark.parametrize("replica,streams,reason", [
    (("pg-test-2", "running", 0, {}), (), "not streaming from the leader"),
    (("pg-test-2", "running", 2 ** 21, {}), ("pg-test-2",), "more than max_lag"),
    (("pg-test-2", "running", "unknown", {}), ("pg-test-2",), "more than max_lag"),
    (("pg-test-2", "start failed", 0, {}), ("pg-test-2",), "not a running replica"),
    (("pg-test-2", "running", 0, {"nofailover": True}), ("pg-test-2",), "nofailover"),
])
def test_a_replica_that_cannot_take_over_says_why(replica, streams, reason):
    ok, why = patroni.switchover_candidates(cluster(replica), leader_status(streaming=streams), 1048576)
    assert ok == [] and reason in why["pg-test-2"]


def test_a_replica_cut_off_and_behind_is_refused_for_both_the_cut_first():
    """CI of stop 25: a replica cut off from the leader right after a WAL switch (16 MB behind)
    was refused for its lag only; the reason that matters, it does not stream, comes first."""
    ok, why = patroni.switchover_candidates(cluster(("pg-test-3", "running", 16776896, {})),
                                            leader_status(streaming=()), 1048576)
    assert ok == []
    assert why["pg-test-3"].startswith("not streaming from the leader")
    assert "lag 16776896 bytes, more than max_lag 1048576" in why["pg-test-3"]


@pytest.mark.parametrize("candidate,expected,detail", [
    ({"timeline": 9, "xlog": {"received_location": 1000, "replayed_location": 990}}, True, "received up to 1000"),
    ({"timeline": 9, "xlog": {"received_location": 1200}}, True, "received up to 1200"),
    ({"timeline": 9, "xlog": {"received_location": 999}}, False, "1 bytes behind"),
    # rewound and restarted, nothing streamed yet: replayed far enough is not enough
    ({"timeline": 9, "xlog": {"received_location": None, "replayed_location": 5000}}, False,
     "no WAL by streaming"),
    ({"timeline": 8, "xlog": {"received_location": 1000}}, False, "on timeline 8"),
])
def test_caught_up_needs_every_byte_received_on_the_leaders_timeline(candidate, expected, detail):
    ok, text = patroni.caught_up(leader_status(), candidate)
    assert ok is expected and detail in text


class FakePatroni:
    """The REST answers of the members; ``positions`` replays a replica's received LSN."""

    def __init__(self, leader, replicas):
        self.leader, self.replicas = leader, replicas

    def __call__(self, host, port, path, timeout=None, access=None):
        name = next(n for n, ip in MEMBERS.items() if ip == host)
        if name == "pg-test-1":
            return self.leader
        answers = self.replicas[name]
        if isinstance(answers, Exception):
            raise answers
        return answers.pop(0) if len(answers) > 1 else answers[0]


def test_handoff_waits_for_the_candidate_to_catch_up(monkeypatch):
    mod = load_module("_modules/pigsty_handoff.py", "mod_handoff_catchup")
    fake = FakePatroni(leader_status(1000), {"pg-test-2": [
        {"timeline": 9, "xlog": {"received_location": 900}},
        {"timeline": 9, "xlog": {"received_location": 980}},
        {"timeline": 9, "xlog": {"received_location": 1000}}]})
    monkeypatch.setattr(mod.pigsty_patroni, "get_json", fake)
    assert mod._wait_caught_up("pg-test-1", MEMBERS, "pg-test-2", 8008, 2) == ("pg-test-2", None)


def test_handoff_without_candidate_takes_a_member_that_caught_up(monkeypatch):
    mod = load_module("_modules/pigsty_handoff.py", "mod_handoff_catchup2")
    fake = FakePatroni(leader_status(1000), {
        "pg-test-2": [{"timeline": 9, "xlog": {"received_location": None, "replayed_location": 1000}}],
        "pg-test-3": [{"timeline": 9, "xlog": {"received_location": 1000}}]})
    monkeypatch.setattr(mod.pigsty_patroni, "get_json", fake)
    assert mod._wait_caught_up("pg-test-1", MEMBERS, None, 8008, 2) == ("pg-test-3", None)


def test_handoff_gives_up_in_time_and_says_what_was_missing(monkeypatch):
    mod = load_module("_modules/pigsty_handoff.py", "mod_handoff_catchup3")
    fake = FakePatroni(leader_status(1000), {
        "pg-test-2": [{"timeline": 9, "xlog": {"received_location": 400}}],
        "pg-test-3": patroni.PatroniError("connection refused")})
    monkeypatch.setattr(mod.pigsty_patroni, "get_json", fake)
    name, behind = mod._wait_caught_up("pg-test-1", MEMBERS, None, 8008, 0.1)
    assert name is None
    assert "pg-test-2: received up to 400, the leader is at 1000 (600 bytes behind)" in behind
    assert "pg-test-3: did not answer" in behind


@pytest.fixture
def runner(tmp_path, monkeypatch):
    mod = load_module("_runners/pigsty_ha.py", "runner_switchover_safety")
    mod.__opts__ = {"cachedir": str(tmp_path), "pillar_roots": {}}
    mod.__context__ = {}
    members = [{"pg_instance": n, "ip": ip, "minion": "node-%s" % n[-1]} for n, ip in MEMBERS.items()]
    monkeypatch.setattr(mod, "_inventory", lambda: ({}, {}))
    monkeypatch.setattr(mod, "_members", lambda inv, c: members)
    monkeypatch.setattr(mod.pigsty_inventory, "cluster_vars", lambda inv, c: {"patroni_port": 8008})
    monkeypatch.setattr(mod.pigsty_patroni, "find_leader",
                        lambda ips, port, timeout, access=None: ({"name": "pg-test-1", "host": "10.10.10.11"}, []))
    called = []
    monkeypatch.setattr(mod, "_fan_out", lambda *a, **k: called.append(a) or {})
    monkeypatch.setattr(mod.pigsty_patroni, "request", lambda *a, **k: called.append(a) or (200, "ok"))
    mod.called = called
    return mod


def answers(mod, monkeypatch, doc, status):
    monkeypatch.setattr(mod.pigsty_patroni, "get_json",
                        lambda host, port, path, timeout=None, access=None: doc if path == "/cluster" else status)


def test_switchover_to_a_replica_that_does_not_stream_is_refused_before_anything(runner, monkeypatch):
    answers(runner, monkeypatch, cluster(("pg-test-2", "running", 0, {}), ("pg-test-3", "running", 0, {})),
            leader_status(streaming=("pg-test-3",)))
    res = runner.switchover("pg-test", candidate="pg-test-2")
    assert res["result"] is False and runner.__context__["retcode"] == 1
    assert "pg-test-2 cannot take over: not streaming from the leader" in res["comment"]
    assert runner.called == []                     # no hold, no pause, no Patroni request


def test_switchover_without_streaming_replica_is_refused_with_each_reason(runner, monkeypatch):
    answers(runner, monkeypatch, cluster(("pg-test-2", "running", 0, {}), ("pg-test-3", "stopped", 0, {})),
            leader_status(streaming=()))
    res = runner.switchover("pg-test")
    assert res["result"] is False and runner.called == []
    assert "pg-test-2: not streaming from the leader" in res["comment"]
    assert "pg-test-3: not a running replica" in res["comment"]


def test_failover_with_a_leader_refuses_a_replica_that_does_not_stream(runner, monkeypatch):
    doc = cluster(("pg-test-2", "running", 0, {}), ("pg-test-3", "running", 0, {}))

    def get_json(host, port, path, timeout=None, access=None):
        if path == "/cluster":
            return doc
        if host == "10.10.10.11":
            return leader_status(streaming=("pg-test-3",))
        return {"role": "replica", "state": "running", "timeline": 9, "xlog": {}}
    monkeypatch.setattr(runner.pigsty_patroni, "get_json", get_json)
    res = runner.failover("pg-test", "pg-test-2")
    assert res["result"] is False and "not streaming from the leader" in res["comment"]
    assert runner.called == []


@pytest.mark.parametrize("field,value", [("catchup_timeout", "soon"), ("switch_timeout", 0),
                                         ("pause_timeout", -1), ("catchup_timeout", None)])
def test_handoff_refuses_a_bad_timeout_before_anything(monkeypatch, field, value):
    import salt.exceptions
    mod = load_module("_modules/pigsty_handoff.py", "mod_handoff_timeouts")
    mod.__salt__ = {}                                    # nothing may be called
    with pytest.raises(salt.exceptions.SaltInvocationError, match=field):
        mod.switchover("pg-test-1", MEMBERS, "pg-test-2", **{field: value})
