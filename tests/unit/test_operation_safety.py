"""Issue 13's hand-off and runner promises, without a sandbox: every path after PAUSE resumes
or hands off; one planned operation of a cluster at a time; a stale pause is resumed only when
its owner is gone; reconcile_all reports one cluster's failure and goes on; a switchover
starts from a clean HAProxy state."""
import threading

import pytest
import salt.exceptions

import pigsty_ha_locks
from loader import load_module

MEMBERS = {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12"}


class Pgbouncer:
    """pgbouncer's console as the hand-off sees it: paused or not, and what was asked."""

    def __init__(self):
        self.paused, self.calls, self.marker = False, [], None
        self.commands = []

    def salt(self):
        return {
            "pgbouncer.pause": self.pause, "pgbouncer.resume": self.resume,
            "pgbouncer.paused_by_us": lambda: self.marker,
            "pgbouncer.forward": lambda *a, **k: self.calls.append("forward") or True,
            # a non-default port and dbsu: the hand-off must use the resolved ones
            "pigsty.config": lambda: {"pg_dbsu": "dbsu", "dcs_type": "etcd", "pg_port": 5440,
                                      "pgbouncer_port": 6440},
            "pigsty.pgbouncer": lambda forward_to=None: {"database_file": "x"},
            "cmd.run_all": lambda *a, **k: self.commands.append((a, k)) or {"retcode": 0},
        }

    commands = ()
    ports = ()

    def pause(self, port=None, timeout=30, hold=120, while_alive=False):
        assert hold >= timeout              # the watchdog must not resume while PAUSE may still wait
        self.paused, self.marker = True, {"time": 1.0, "expires": 1.0 + hold}
        self.calls.append("pause")
        self.ports = list(self.ports) + [port]
        return True

    def resume(self, port=None):
        self.paused, self.marker = False, None
        self.calls.append("resume")
        self.ports = list(self.ports) + [port]
        return True


@pytest.fixture
def handoff(tmp_path, monkeypatch):
    pgb = Pgbouncer()
    mod = load_module("_modules/pigsty_handoff.py", salt=pgb.salt())
    monkeypatch.setattr(mod, "LOCK_FILE", str(tmp_path / "handoff.lock"))
    # no Pigsty CA on this machine: these tests' Patroni is faked (its HTTPS: test_patroni_client)
    monkeypatch.setattr(mod.pigsty_patroni_rest, "access", lambda conf: mod.pigsty_patroni.PLAIN)
    mod.pgb = pgb
    return mod


def test_a_handoff_without_the_ca_file_is_refused_before_it_pauses(tmp_path, monkeypatch):
    pgb = Pgbouncer()
    mod = load_module("_modules/pigsty_handoff.py", salt=pgb.salt())
    monkeypatch.setattr(mod, "LOCK_FILE", str(tmp_path / "handoff.lock"))
    missing = str(tmp_path / "no-ca.crt")
    monkeypatch.setattr(mod.pigsty_patroni_rest, "access",
                        lambda conf: mod.pigsty_patroni.Access(ca_file=missing, username="u", password="Secret.P"))
    res = mod.switchover("pg-test-1", MEMBERS, "pg-test-2")
    assert res["result"] is False and "no-ca.crt" in res["comment"] and "nothing was paused" in res["comment"]
    assert "Secret.P" not in res["comment"]
    assert pgb.calls == []


def test_an_error_while_paused_still_resumes_pgbouncer(handoff, monkeypatch):
    def broken(*args):
        raise RuntimeError("Patroni answered garbage")
    monkeypatch.setattr(handoff, "_wait_caught_up", broken)
    with pytest.raises(RuntimeError):
        handoff.switchover("pg-test-1", MEMBERS, "pg-test-2")
    assert handoff.pgb.calls == ["pause", "resume"] and not handoff.pgb.paused
    assert handoff.pgb.ports == [6440, 6440]          # pgbouncer_port, not 6432
    (cmd,), kwargs = handoff.pgb.commands[0]          # the CHECKPOINT before the pause
    assert cmd[cmd.index("-p") + 1] == "5440" and kwargs["runas"] == "dbsu"


def test_a_candidate_that_does_not_catch_up_resumes_and_switches_nothing(handoff, monkeypatch):
    monkeypatch.setattr(handoff, "_wait_caught_up", lambda *a: (None, "pg-test-2: 10 bytes behind"))
    res = handoff.switchover("pg-test-1", MEMBERS, "pg-test-2")
    assert res["result"] is False and "10 bytes behind" in res["comment"]
    assert handoff.pgb.calls == ["pause", "resume"]


def test_a_second_handoff_on_the_node_is_refused_before_it_pauses(handoff):
    held = handoff._local_lock()
    try:
        res = handoff.switchover("pg-test-1", MEMBERS, "pg-test-2")
    finally:
        held.close()
    assert res["result"] is False and "another hand-off runs" in res["comment"]
    assert handoff.pgb.calls == []


def test_a_stale_pause_is_resumed_only_when_its_handoff_is_gone(handoff):
    assert handoff.resume_stale() == {"resumed": False, "paused_since": None}   # not paused by us
    handoff.pgb.pause()
    held = handoff._local_lock()                      # a hand-off still running here
    try:
        assert handoff.resume_stale()["resumed"] is False and handoff.pgb.paused
    finally:
        held.close()
    assert handoff.resume_stale() == {"resumed": True, "paused_since": 1.0}      # its owner is gone
    assert not handoff.pgb.paused


def test_one_planned_operation_of_a_cluster_at_a_time(tmp_path):
    opts = {"cachedir": str(tmp_path)}
    inside, release = threading.Event(), threading.Event()

    def first():
        with pigsty_ha_locks.operation_lock(opts, "pg-test", "switchover pg-test-1 -> pg-test-2"):
            inside.set()
            release.wait(5)
    t = threading.Thread(target=first)
    t.start()
    assert inside.wait(5)
    assert pigsty_ha_locks.operation_in_progress(opts, "pg-test")
    with pytest.raises(salt.exceptions.CommandExecutionError) as err:
        with pigsty_ha_locks.operation_lock(opts, "pg-test", "failover to pg-test-3"):
            pytest.fail("a second operation ran")
    assert "switchover pg-test-1 -> pg-test-2" in str(err.value) and "in progress" in str(err.value)
    with pigsty_ha_locks.operation_lock(opts, "pg-meta", "switchover"):   # another cluster: fine
        pass
    release.set()
    t.join(5)
    assert not pigsty_ha_locks.operation_in_progress(opts, "pg-test")


@pytest.fixture
def runner(tmp_path, monkeypatch):
    mod = load_module("_runners/pigsty_ha.py", opts={"cachedir": str(tmp_path), "pillar_roots": {}},
                      context={})
    return mod


def test_a_switchover_while_another_runs_is_refused_before_anything(runner, monkeypatch):
    members = [{"pg_instance": n, "ip": ip, "minion": "node-%s" % n[-1]} for n, ip in MEMBERS.items()]
    monkeypatch.setattr(runner, "_inventory", lambda: ({}, {}))
    monkeypatch.setattr(runner, "_members", lambda inv, c: members)
    sw = runner.pigsty_ha_switchover
    monkeypatch.setattr(sw.pigsty_inventory, "cluster_vars", lambda inv, c: {"patroni_port": 8008})
    monkeypatch.setattr(sw.pigsty_patroni, "find_leader",
                        lambda ips, port, timeout, access=None: ({"name": "pg-test-1", "host": "10.10.10.11"}, []))
    monkeypatch.setattr(sw, "takeover_candidates", lambda *a: ([("pg-test-2", 0)], {}, None))
    called = []
    monkeypatch.setattr(runner, "_fan_out", lambda *a, **k: called.append(a) or {})
    with pigsty_ha_locks.operation_lock(runner.__opts__, "pg-test", "switchover pg-test-2 -> pg-test-1"):
        res = runner.switchover("pg-test")
    assert res["result"] is False and runner.__context__["retcode"] == 1
    assert "switchover pg-test-2 -> pg-test-1" in res["comment"] and "in progress" in res["comment"]
    assert called == []                      # no hold, no pause, nothing asked of a minion


def test_reconcile_all_reports_a_failing_cluster_and_goes_on(runner, monkeypatch):
    monkeypatch.setattr(runner, "_inventory", lambda: ({}, {"clusters": {"pg-a": {}, "pg-b": {}, "pg-c": {}}}))

    def reconcile(name):
        if name == "pg-b":
            raise ValueError("garbage from Patroni")
        return {"result": True}
    monkeypatch.setattr(runner, "reconcile", reconcile)
    out = runner.reconcile_all()
    assert out["pg-a"] is True and out["pg-c"] is True
    assert "ValueError: garbage from Patroni" in out["pg-b"]
    assert runner.__context__["retcode"] == 1


def test_a_switchover_releases_what_an_earlier_handoff_left_with_nobody_forwarding():
    import pigsty_ha_switchover as sw
    members = [{"pg_instance": "pg-test-%d" % i, "ip": "10.10.10.1%d" % i, "minion": "node-%d" % i} for i in (1, 2, 3)]
    drained = {"op": "UP", "admin": "DRAIN", "addr": "x", "held": False}
    ready = {"op": "UP", "admin": "READY", "addr": "x", "held": False}
    view = {"pg-test-primary": {"pg-test-1": ready, "pg-test-2": drained, "pg-test-3": drained}}
    sent = []

    def fan(minions, fun, arg=None, kwarg=None, timeout=None):
        if fun == "pigsty_haproxy.servers":
            return {m: view for m in minions}
        sent.append((fun, arg))
        return {m: {"commands": []} for m in minions}
    ctx = type("Ctx", (), {"fan": staticmethod(fan)})
    # pg-test-3 still forwards clients of the earlier hand-off: its drain stays
    cleaned = sw._leftovers(ctx, members, members[0], [members[2]], ["pg-test-primary"], ["pg-test-primary"])
    assert cleaned == ["pg-test-2"]
    assert sent == [("pigsty_haproxy.run", [[
        "set server pg-test-primary/pg-test-2 health down", "enable health pg-test-primary/pg-test-2",
        "set server pg-test-primary/pg-test-2 state ready"]])]


@pytest.fixture
def pigsty_runner(tmp_path, monkeypatch):
    mod = load_module("_runners/pigsty.py", opts={"cachedir": str(tmp_path)}, context={})
    members = [{"pg_instance": "pg-test-%d" % i, "ip": "10.10.10.1%d" % i, "minion": "node-%d" % i,
                "pg_role": "primary" if i == 1 else "replica"} for i in (1, 2, 3)]
    monkeypatch.setattr(mod, "cluster", lambda name: {"name": name, "members": members, "patroni_port": 8008})
    monkeypatch.setattr(mod, "_live_leader", lambda info: (None, ["no answer"]))
    monkeypatch.setattr(mod, "_progress", lambda text: None)

    def unreachable(host, port, path, timeout=None, access=None):
        raise mod.pigsty_patroni.PatroniError("Patroni REST API at %s unreachable" % host)
    monkeypatch.setattr(mod.pigsty_patroni, "get_json", unreachable)
    return mod


@pytest.mark.parametrize("minion_says,refused", [
    ({}, "cannot confirm it is stopped (no answer)"),
    ({"node-1": True, "node-2": False, "node-3": False}, "pg-test-1: Patroni runs but its REST API does not answer"),
])
def test_removal_with_patroni_unreachable_fails_closed(pigsty_runner, monkeypatch, minion_says, refused):
    monkeypatch.setattr(pigsty_runner.pigsty_fanout, "fan_out", lambda *a, **k: minion_says)
    plan = pigsty_runner.removal_plan("pg-test")
    assert plan["result"] is False and refused in plan["comment"]
    assert "nothing was removed" in plan["comment"] and pigsty_runner.__context__["retcode"] == 1


def test_removal_goes_ahead_when_every_minion_confirms_patroni_is_stopped(pigsty_runner, monkeypatch):
    monkeypatch.setattr(pigsty_runner.pigsty_fanout, "fan_out",
                        lambda *a, **k: {"node-1": False, "node-2": False, "node-3": False})
    plan = pigsty_runner.removal_plan("pg-test")
    assert plan["result"] is True and plan["whole_cluster"] is True
    forced = pigsty_runner.removal_plan("pg-test", force=True)     # force skips the confirmation
    assert forced["result"] is True


def test_a_reconciliation_during_a_planned_operation_leaves_haproxy_and_the_vip_to_it(runner, monkeypatch):
    """A view read mid-switchover is stale when applied: the event path must not route."""
    members = [{"pg_instance": n, "ip": ip, "minion": "node-%s" % n[-1]} for n, ip in MEMBERS.items()]
    monkeypatch.setattr(runner, "_inventory", lambda: ({}, {}))
    monkeypatch.setattr(runner, "_members", lambda inv, c: members)
    monkeypatch.setattr(runner.pigsty_inventory, "cluster_vars", lambda inv, c: {"patroni_port": 8008})
    monkeypatch.setattr(runner, "_live_roles", lambda m, p, access=None: (
        {"pg-test-1": "stopped", "pg-test-2": "replica", "pg-test-3": "replica"}, {}))
    ran = []
    steps = runner.pigsty_ha_steps
    for name in ("haproxy", "vip", "meta", "stale_pauses"):
        monkeypatch.setattr(steps, name, lambda *a, _n=name: ran.append(_n) or {"result": True})
    monkeypatch.setattr(runner, "_record", lambda cluster, entry: None)
    with pigsty_ha_locks.operation_lock(runner.__opts__, "pg-test", "switchover pg-test-1 -> pg-test-2"):
        res = runner.reconcile("pg-test")
    assert ran == ["meta"]
    assert "planned operation in progress" in res["steps"]["haproxy"]["comment"]
    assert res["result"] is True
    ran.clear()
    res = runner.reconcile("pg-test")        # the operation ended: everything runs again
    assert sorted(ran) == ["haproxy", "meta", "stale_pauses", "vip"]


def test_the_checks_before_a_switchover_wait_for_a_busy_patroni(monkeypatch):
    """A leader whose REST API takes 1 s (busy, TLS) is not refused as 'did not answer'."""
    import pigsty_ha_switchover as sw
    import pigsty_patroni
    asked = []

    def slow_get_json(host, port, path, timeout=None, access=None):
        asked.append((path, timeout))
        if timeout < 1.0:
            raise pigsty_patroni.PatroniError("no complete answer within %ss" % timeout)
        raise pigsty_patroni.PatroniError("stop here: the timeouts are what this test checks")
    monkeypatch.setattr(pigsty_patroni, "get_json", slow_get_json)
    leader = {"name": "pg-test-1", "host": "10.10.10.11"}
    _healthy, _why, refusal = sw.takeover_candidates(leader, 8008, "pg-test-2", 1048576)
    assert "stop here" in refusal and asked == [("/cluster", sw.PRECHECK_TIMEOUT)]
    assert sw.PRECHECK_TIMEOUT >= 2 * sw.REST_TIMEOUT


# ------------------------------------------------------------------ the hold must be confirmed
def _switch_with(monkeypatch, deaf, cluster_states=None, deaf_once=False):
    """Run pigsty_ha_switchover._switch with a fan-out in which the minions ``deaf`` never
    answer pigsty_haproxy.run (or only the second time, ``deaf_once``). Returns (result,
    the calls made)."""
    import pigsty_ha_switchover as sw
    members = [{"pg_instance": "pg-test-%d" % i, "ip": "10.10.10.1%d" % i, "minion": "node-%d" % i} for i in (1, 2, 3)]
    calls, asked = [], {}

    def fan(minions, fun, arg=None, kwarg=None, timeout=None):
        calls.append((fun, sorted(minions), arg))
        if fun == "pigsty_haproxy.servers":
            return {m: {} for m in minions}
        if fun == "pigsty_handoff.state":
            return {m: {"forward": None, "clients": 0} for m in minions}
        if fun == "pigsty_haproxy.run":
            out = {}
            for m in minions:
                asked[m] = asked.get(m, 0) + 1
                if m not in deaf or (deaf_once and asked[m] > 1):
                    out[m] = {"commands": arg[0]}
            return out
        if fun == "pigsty_handoff.switchover":
            return {m: {"result": True, "new": "pg-test-2", "paused_s": 0.4} for m in minions}
        return {m: True for m in minions}
    states = cluster_states or {"pg-test-1": "running", "pg-test-2": "streaming", "pg-test-3": "streaming"}
    doc = {"members": [{"name": n, "role": "leader" if n == "pg-test-1" else "replica", "state": st,
                        "host": "10.10.10.1%s" % n[-1]} for n, st in states.items()]}
    monkeypatch.setattr(sw.pigsty_patroni, "get_json", lambda host, port, path, timeout=None, access=None: doc)
    monkeypatch.setattr(sw.pigsty_ha_steps, "handoff_plan", lambda merged, members: (["pg-test-primary"], ["pg-test-primary"]))
    ctx = type("Ctx", (), {"fan": staticmethod(fan)})
    leader = {"name": "pg-test-1", "host": "10.10.10.11"}
    res, new, _paused, _t0 = sw._switch(ctx, {}, members, 8008, leader, "pg-test-2", True, True)
    return res, new, calls


def test_a_member_whose_haproxy_does_not_confirm_the_hold_stops_the_switchover_before_any_pause(monkeypatch):
    res, new, calls = _switch_with(monkeypatch, deaf={"node-3"})
    assert res["result"] is False and new is None
    assert "switchover not started: HAProxy on node-3 did not confirm" in res["comment"]
    funs = [c[0] for c in calls]
    assert "pigsty_handoff.switchover" not in funs and "pgbouncer.pause" not in funs
    assert "pigsty_handoff.checkpoint" not in funs
    runs = [c for c in calls if c[0] == "pigsty_haproxy.run"]
    assert runs[0] == ("pigsty_haproxy.run", ["node-1", "node-2", "node-3"],
                       [["disable health pg-test-primary/pg-test-1"]])
    assert runs[1] == ("pigsty_haproxy.run", ["node-3"], [["disable health pg-test-primary/pg-test-1"]])  # asked again
    # and the hold is given back everywhere: the old primary is still the primary
    assert runs[2] == ("pigsty_haproxy.run", ["node-1", "node-2", "node-3"],
                       [["enable health pg-test-primary/pg-test-1"]])


def test_a_minion_that_confirms_the_second_time_lets_the_switchover_go_on(monkeypatch):
    res, new, calls = _switch_with(monkeypatch, deaf={"node-3"}, deaf_once=True)
    assert res["result"] is True and new == "pg-test-2"
    assert [c[0] for c in calls].count("pigsty_handoff.switchover") == 1


def test_a_member_whose_node_is_down_need_not_confirm(monkeypatch):
    # pg-test-3's Patroni is not running (its node is down): nothing of it carries sessions
    res, new, _calls = _switch_with(monkeypatch, deaf={"node-3"},
                                    cluster_states={"pg-test-1": "running", "pg-test-2": "streaming"})
    assert res["result"] is True and new == "pg-test-2"
    res, new, _calls = _switch_with(monkeypatch, deaf={"node-3"},
                                    cluster_states={"pg-test-1": "running", "pg-test-2": "streaming",
                                                    "pg-test-3": "stopped"})
    assert res["result"] is True and new == "pg-test-2"
