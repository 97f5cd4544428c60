"""Issue 16: `pigsty_ha.switchover ... test=True` and `pigsty_ha.reconcile ... test=True`
change nothing (no minion is asked to run anything but a read-only function or its own test
mode; no lock, no history), refuse what the real run refuses with the same reason and exit
code, and plan exactly what the real run then does on the same view. The runner's reports
print through the pigsty_ha outputter; --out=json still gets the dict.

The cluster is the repository's default pillar (pg-test on node-1..3, meta); Patroni,
HAProxy, the VIP and the minions are a small in-memory world (``World``): each minion
function behaves as the real one does on its node (apply_health plans with the same
pigsty_haproxy.plan, pigsty_live.record runs pigsty_live_files.record on temporary
directories)."""
import copy
import json
import os

import pytest

import pigsty_ha_inventory
import pigsty_ha_locks
import pigsty_haproxy
import pigsty_inventory
import pigsty_live_files
import pigsty_pgsql
from loader import load_module
from pillar_fixture import default_pillar

IPS = {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12", "pg-test-3": "10.10.10.13"}
NODE = {"pg-test-1": "node-1", "pg-test-2": "node-2", "pg-test-3": "node-3"}
INSTANCE = {v: k for k, v in NODE.items()}
# what a minion may be asked in a dry run: read-only functions, or a function's own test mode
READ_ONLY = {"pigsty_haproxy.servers", "pigsty_handoff.state", "pigsty_vip.holds"}
TEST_MODE = {"pigsty_haproxy.apply_health", "pigsty_live.record", "pigsty_handoff.resume_stale",
             "pigsty_handoff.end"}


class World:
    """Patroni, each node's HAProxy and VIP, the meta node's files; every call recorded."""

    def __init__(self, merged, inv, tmp_path, leader="pg-test-1", lags=None, streaming=("pg-test-2", "pg-test-3")):
        self.merged, self.inv = merged, inv
        self.leader, self.lags, self.streaming = leader, dict(lags or {"pg-test-2": 300, "pg-test-3": 10}), streaming
        self.calls, self.deaf = [], set()
        conf = pigsty_inventory.instance_config(merged, "node-1")
        self.services = pigsty_pgsql.haproxy_services(conf)
        self.haproxy = {n: self._routing(leader) for n in NODE.values()}
        self.vip = {n: n == NODE[leader] for n in NODE.values()}
        self.dirs = {"live_dir": str(tmp_path / "live"), "target_dir": str(tmp_path / "targets"),
                     "hosts_file": str(tmp_path / "dns" / "hosts")}
        for d in ("live", "targets/pgsql", "dns"):
            (tmp_path / d).mkdir(parents=True)
        pigsty_live_files.record(inv, "pg-test", self.roles(), lambda: None, **self.dirs)
        self.files = tmp_path

    def roles(self):
        return {i: "primary" if i == self.leader else "replica" for i in IPS}

    def _routing(self, leader):
        want = pigsty_haproxy.desired_health(self.services, {i: "primary" if i == leader else "replica" for i in IPS})
        out = {}
        for svc in self.services:
            for srv in svc["servers"]:
                up = want.get(svc["name"], {}).get(srv["name"], "up") == "up"
                out.setdefault(svc["name"], {})[srv["name"]] = {"op": "UP" if up else "DOWN", "admin": "READY",
                                                                "addr": "x", "held": False}
        return out

    def snapshot(self):
        files = {}
        for root, _dirs, names in os.walk(str(self.files)):
            for name in names:
                with open(os.path.join(root, name)) as fh:
                    files[os.path.join(root, name)] = fh.read()
        return copy.deepcopy((self.leader, self.haproxy, self.vip)), files

    # ---- Patroni's REST API (pigsty_patroni.get_json / find_leader)
    def get_json(self, host, port, path, timeout=None, wait=0, interval=0.5, access=None):
        name = next(i for i, ip in IPS.items() if ip == host)
        if path == "/cluster":
            return {"members": [
                {"name": i, "role": "leader" if i == self.leader else "replica", "host": ip, "port": 5432,
                 "state": "running" if i == self.leader else "streaming", "timeline": 9, "tags": {},
                 **({} if i == self.leader else {"lag": self.lags.get(i, 0)})} for i, ip in IPS.items()]}
        if name == self.leader:
            return {"role": "master", "state": "running", "timeline": 9, "xlog": {"location": 1000},
                    "replication": [{"application_name": n, "state": "streaming"} for n in self.streaming]}
        return {"role": "replica", "state": "running", "timeline": 9, "xlog": {"received_location": 1000}}

    def find_leader(self, hosts, port, timeout=None, access=None):
        return {"name": self.leader, "host": IPS[self.leader]}, []

    # ---- the minions (pigsty_fanout.fan_out)
    def fan(self, minions, fun, arg=None, kwarg=None, timeout=None):
        self.calls.append((fun, list(minions), copy.deepcopy(arg), copy.deepcopy(kwarg)))
        return {m: self._call(m, fun, list(arg or []), dict(kwarg or {})) for m in minions if m not in self.deaf}

    def _call(self, minion, fun, arg, kwarg):
        if fun == "pigsty_haproxy.servers":
            return copy.deepcopy(self.haproxy[minion])
        if fun == "pigsty_haproxy.apply_health":                # as _modules/pigsty_haproxy.py
            current = self.haproxy[minion]
            cmds = pigsty_haproxy.plan(current, arg[0])
            if not kwarg.get("test"):
                self._run(minion, cmds)
            return {"commands": cmds, "held": pigsty_haproxy.held_servers(current)}
        if fun == "pigsty_haproxy.run":
            self._run(minion, arg[0])
            return {"commands": arg[0]}
        if fun == "pigsty_vip.holds":
            return self.vip[minion]
        if fun == "pigsty_vip.ensure":
            self.vip[minion] = kwarg["present"]
            return True
        if fun == "pigsty_live.record":                         # as _modules/pigsty_live.py
            return pigsty_live_files.record(self.inv, arg[0], arg[1], lambda: None, test=bool(kwarg.get("test")),
                                            **self.dirs)
        if fun == "pigsty_handoff.state":
            return {"forward": None, "clients": 0}
        if fun == "pigsty_handoff.resume_stale":
            return {"resumed": False, "paused_since": None}
        if fun == "pigsty_handoff.switchover":                  # the hand-off on the old primary
            self.leader = kwarg["candidate"]
            return {"result": True, "new": kwarg["candidate"], "paused_s": 0.4}
        if fun in ("pigsty_handoff.checkpoint", "pgbouncer.pause", "pgbouncer.resume", "pgbouncer.forward"):
            return True
        raise AssertionError("unexpected minion call %s" % fun)

    def _run(self, minion, cmds):
        for cmd in cmds:
            words = cmd.split()
            if words[:2] == ["set", "server"]:
                backend, server = words[2].split("/")
                st = self.haproxy[minion][backend][server]
                if words[3] == "health":
                    st["op"] = "UP" if words[4] == "up" else "DOWN"
                else:
                    st["admin"] = words[4].upper()
            else:                                               # enable|disable health B/S
                backend, server = words[2].split("/")
                self.haproxy[minion][backend][server]["held"] = words[0] == "disable"

    def mutating(self):
        """The calls that were neither read-only nor a function's test mode."""
        return [c for c in self.calls
                if c[0] not in READ_ONLY and not (c[0] in TEST_MODE and (c[3] or {}).get("test") is True)]


@pytest.fixture
def env(tmp_path, monkeypatch):
    merged, inv = pigsty_ha_inventory._indexed(default_pillar(), pigsty_inventory.inventory(default_pillar()))
    runner = load_module("_runners/pigsty_ha.py", opts={"cachedir": str(tmp_path / "cache"), "pillar_roots": {}},
                         context={})
    world = World(merged, inv, tmp_path / "world")
    monkeypatch.setattr(runner, "_inventory", lambda: (merged, inv))
    monkeypatch.setattr(runner, "_fan_out", world.fan)
    patroni = runner.pigsty_patroni
    monkeypatch.setattr(patroni, "get_json", world.get_json)
    monkeypatch.setattr(patroni, "find_leader", world.find_leader)
    monkeypatch.setattr(patroni, "request", lambda *a, **k: pytest.fail("no Patroni request may be made"))
    # no Pigsty CA on this machine (the world's Patroni is in memory)
    monkeypatch.setattr(runner.pigsty_patroni_rest, "access", lambda conf: patroni.PLAIN)
    # the meta node is reached through Salt (this machine is not it)
    monkeypatch.setattr(runner.pigsty_ha_steps, "local_meta", lambda inv, metas: None)
    runner.world = world
    return runner


def history(runner):
    path = os.path.join(runner.__opts__["cachedir"], "pigsty", "history", "pg-test.jsonl")
    return open(path).read().splitlines() if os.path.exists(path) else []


def shown(ret):
    """The report inside the runner's {"outputter": "pigsty_ha", "data": ...}."""
    assert set(ret) == {"outputter", "data"} and ret["outputter"] == "pigsty_ha"
    return ret["data"]


# ------------------------------------------------------------------ switchover test=True
def test_switchover_dry_run_names_the_candidate_and_changes_nothing(env):
    before = env.world.snapshot()
    out = shown(env.switchover("pg-test", test=True))
    assert out["result"] is None and out["test"] is True and "retcode" not in out
    assert out["leader"] == "pg-test-1" and out["candidate"] == "pg-test-3"
    assert "least lag (10 bytes)" in out["chosen"] and "would switch over pg-test from pg-test-1 to pg-test-3" in out["comment"]
    rows = {r["instance"]: r for r in out["members"]}
    assert rows["pg-test-2"]["lag"] == 300 and rows["pg-test-2"]["streaming"] is True
    assert rows["pg-test-1"]["takeover"] == "leader" and rows["pg-test-3"]["takeover"] == "yes"
    assert all(c["ok"] for c in out["checks"])
    assert [s["step"] for s in out["steps"]] == ["hold", "checkpoint", "hand-off", "route", "reconcile"]
    # nothing changed: no hold, no CHECKPOINT, no pause, no hand-off; no lock, no history
    assert env.world.mutating() == []
    assert {c[0] for c in env.world.calls} == {"pigsty_handoff.state", "pigsty_haproxy.servers"}
    assert env.world.snapshot() == before
    assert history(env) == []
    lock_dir = os.path.join(env.__opts__["cachedir"], "pigsty")
    assert not os.path.exists(os.path.join(lock_dir, "operation-pg-test"))
    assert env.__context__.get("retcode", 0) == 0


def test_switchover_dry_run_plans_exactly_the_calls_the_real_run_makes(env, monkeypatch):
    # an earlier hand-off left pg-test-2 drained, nobody forwards: both release it first
    for node in NODE.values():
        env.world.haproxy[node]["pg-test-primary"]["pg-test-2"]["admin"] = "DRAIN"
    before = env.world.snapshot()
    dry = shown(env.switchover("pg-test", candidate="pg-test-2", test=True))
    assert dry["result"] is None and dry["candidate"] == "pg-test-2" and dry["held_by_earlier_handoff"] == ["pg-test-2"]
    assert env.world.mutating() == [] and env.world.snapshot() == before
    planned = [(s["fun"], s["minions"], s.get("arg"), s.get("kwarg")) for s in dry["steps"]]
    env.world.calls.clear()
    real_reconcile = env.reconcile
    monkeypatch.setattr(env, "reconcile", lambda cluster: env.world.calls.append(
        ("pigsty_ha.reconcile", [], None, None)) or real_reconcile(cluster))
    out = env.switchover("pg-test", candidate="pg-test-2")
    assert out["result"] is True and out["new"] == "pg-test-2", out
    made = env.world.mutating()
    made = made[:made.index(("pigsty_ha.reconcile", [], None, None)) + 1]
    assert made == planned
    assert len(history(env)) == 1                    # the real run's reconciliation, not the dry run


def test_switchover_dry_run_refuses_what_the_real_run_refuses_with_the_same_reason(env):
    env.world.streaming = ("pg-test-3",)
    dry = shown(env.switchover("pg-test", candidate="pg-test-2", test=True))
    assert dry["result"] is False and dry["retcode"] == 1 and env.__context__["retcode"] == 1
    reason = "candidate pg-test-2 cannot take over: not streaming from the leader"
    assert reason in dry["comment"] and dry["comment"].startswith("would refuse: ")
    assert dry["steps"] == [] and env.world.calls == []
    env.__context__.clear()
    real = env.switchover("pg-test", candidate="pg-test-2")
    assert real["result"] is False and real["retcode"] == 1 and reason in real["comment"]
    assert env.world.calls == []


@pytest.mark.parametrize("candidate,reason", [
    ("pg-test-9", "candidate: 'pg-test-9' is not a member of pg-test"),
    ("pg-test-1", "candidate pg-test-1 is the leader already"),
])
def test_switchover_dry_run_refuses_a_bad_candidate(env, candidate, reason):
    dry = shown(env.switchover("pg-test", candidate=candidate, test=True))
    assert dry["result"] is False and reason in dry["comment"] and env.world.calls == []


def test_switchover_dry_run_checks_arguments_as_the_real_run(env):
    for test in (True, False):
        lag = env.switchover("pg-test", max_lag="lots", test=test)
        assert lag["retcode"] == 1 and lag["comment"].startswith("max_lag: expected a number of bytes")
        nope = env.switchover("pg-nope", test=test)
        assert nope["retcode"] == 1 and nope["comment"].startswith("cluster: 'pg-nope' is not a cluster")
    assert env.world.calls == []


def test_switchover_dry_run_looks_at_the_operation_lock_without_taking_it(env):
    with pigsty_ha_locks.operation_lock(env.__opts__, "pg-test", "failover to pg-test-3"):
        dry = shown(env.switchover("pg-test", test=True))
        real = env.switchover("pg-test")
    assert dry["result"] is False and "failover to pg-test-3" in dry["comment"] and "in progress" in dry["comment"]
    assert real["result"] is False and real["comment"] in dry["comment"]   # the same refusal
    assert env.world.mutating() == []
    path = os.path.join(env.__opts__["cachedir"], "pigsty", "operation-pg-test")
    assert open(path).read() == ""                  # released by its holder, untouched by the dry run


def test_switchover_dry_run_refuses_when_a_running_members_haproxy_does_not_answer(env):
    env.world.deaf = {"node-3"}
    dry = shown(env.switchover("pg-test", test=True))
    assert dry["result"] is False and "HAProxy on node-3 did not answer" in dry["comment"]
    assert [c["ok"] for c in dry["checks"]][-1] is False and env.world.mutating() == []


# ------------------------------------------------------------------ reconcile test=True
def test_reconcile_dry_run_plans_what_the_real_run_does_and_changes_nothing(env):
    env.world.leader = "pg-test-2"              # Patroni promoted pg-test-2; routing still on pg-test-1
    before = env.world.snapshot()
    dry = shown(env.reconcile("pg-test", test=True))
    assert dry["result"] is None and dry["test"] is True
    assert env.world.mutating() == [] and env.world.snapshot() == before
    assert history(env) == []
    assert not os.path.exists(os.path.join(env.__opts__["cachedir"], "pigsty", "reconcile-pg-test"))
    plan = dry["plan"]
    assert set(plan["haproxy"]) == {"node-1", "node-2", "node-3"}
    assert "set server pg-test-primary/pg-test-2 health up" in plan["haproxy"]["node-1"]
    assert plan["vip"] == ["would remove from pg-test-1", "would add on pg-test-2"]
    assert plan["targets_dns"] == {"meta": ["record", "targets", "dns"]}
    meta = dry["steps"]["targets_dns"]["meta"]["meta"]
    assert meta["labels"]["pg-test-2"] == "primary" and meta["primary_dns"] == "10.10.10.12"
    # the real run on the same view does exactly that
    env.world.calls.clear()
    real = env.reconcile("pg-test")
    assert real["result"] is True
    assert {m: c for m, c in real["steps"]["haproxy"]["members"].items() if c} == plan["haproxy"]
    assert real["steps"]["vip"]["actions"] == ["removed from pg-test-1", "added on pg-test-2"]
    assert {n: [k for k in ("record", "targets", "dns") if a[k]] for n, a in real["steps"]["targets_dns"]["meta"].items()} \
        == plan["targets_dns"]
    assert env.world.vip == {"node-1": False, "node-2": True, "node-3": False}
    assert len(history(env)) == 1
    # and then there is nothing left to do
    again = shown(env.reconcile("pg-test", test=True))
    assert again["result"] is True and again["plan"] == {} and "nothing would change" in again["comment"]


def test_reconcile_dry_run_says_when_it_cannot_tell(env):
    env.world.deaf = {"node-2"}
    dry = shown(env.reconcile("pg-test", test=True))
    assert dry["result"] is False and dry["retcode"] == 1 and "haproxy" in dry["comment"]
    assert env.world.mutating() == []


def test_reconcile_dry_run_takes_a_cluster_not_an_event(env):
    refused = env.reconcile(event={"cluster": "pg-test"}, test=True)
    assert refused == {"result": False, "retcode": 1,
                       "comment": "test: a dry run takes a cluster (not an event)"}


def test_reconcile_all_dry_run(env, monkeypatch):
    monkeypatch.setattr(env.pigsty_ha_reconcile, "dry_run", lambda ctx, name: {
        "result": None if name == "pg-test" else True, "comment": "x"})
    out = shown(env.reconcile_all(test=True))
    assert out["result"] is None and out["clusters"]["pg-test"]["result"] is None
    assert env.world.mutating() == []


# ------------------------------------------------------------------ minion test modes
def test_live_record_test_mode_writes_nothing_and_says_what_would_change(env):
    world = env.world
    roles = {"pg-test-1": "replica", "pg-test-2": "primary", "pg-test-3": "replica"}
    before = world.snapshot()
    reloads = []
    would = pigsty_live_files.record(world.inv, "pg-test", roles, lambda: reloads.append(1), test=True, **world.dirs)
    assert would["record"] and would["targets"] and would["dns"] and would["primary_dns"] == "10.10.10.12"
    assert world.snapshot() == before and reloads == []
    done = pigsty_live_files.record(world.inv, "pg-test", roles, lambda: reloads.append(1), **world.dirs)
    assert done == {"record": True, "targets": True, "dns": True} and reloads == [1]
    again = pigsty_live_files.record(world.inv, "pg-test", roles, lambda: None, test=True, **world.dirs)
    assert not (again["record"] or again["targets"] or again["dns"])


def test_handoff_test_modes_resume_and_forward_nothing(tmp_path, monkeypatch):
    done = []
    salt_funcs = {"pgbouncer.paused_by_us": lambda: {"time": 5.0}, "pgbouncer.resume": lambda: done.append("resume"),
                  "pgbouncer.forwarding": lambda: "10.10.10.11", "pgbouncer.clients": lambda: 3,
                  "pgbouncer.forward": lambda host: done.append(("forward", host)) or True}
    mod = load_module("_modules/pigsty_handoff.py", salt=salt_funcs)
    monkeypatch.setattr(mod, "LOCK_FILE", str(tmp_path / "handoff.lock"))
    assert mod.resume_stale(test=True) == {"resumed": True, "paused_since": 5.0, "test": True}
    assert mod.end("10.10.10.12", test=True) == {"forward": "10.10.10.12", "changed": True, "test": True}
    assert mod.end(None, test=True) == {"forward": None, "changed": True, "test": True}
    assert done == []
    assert mod.resume_stale()["resumed"] is True and done == ["resume"]


# ------------------------------------------------------------------ the outputter
@pytest.fixture
def outputter():
    return load_module("_output/pigsty_ha.py")


def test_status_prints_a_table_and_json_stays_available(env, outputter):
    ret = env.status("pg-test")
    data = shown(ret)
    text = outputter.output(data)
    lines = text.splitlines()
    assert lines[0].startswith("cluster pg-test") and "leader pg-test-1" in lines[0]
    assert lines[1].split()[:4] == ["INSTANCE", "IP", "PILLAR", "ROLE"]
    row = next(line for line in lines if line.split()[:1] == ["pg-test-1"])
    assert "primary" in row and "10.10.10.11" in row
    assert json.loads(json.dumps(data)) == data       # what --out=json prints


def test_switchover_dry_run_table_names_the_candidate_and_the_steps(env, outputter):
    text = outputter.output(shown(env.switchover("pg-test", test=True)))
    assert "candidate  pg-test-3: the streaming replica with the least lag (10 bytes)" in text
    assert "disable health pg-test-primary/pg-test-1" in text and "pigsty_handoff.switchover" in text
    assert text.splitlines()[-1].startswith("WOULD ACT (test, nothing changed): would switch over")
    env.world.streaming = ()
    refused = outputter.output(shown(env.switchover("pg-test", test=True)))
    assert refused.splitlines()[-1].startswith("REFUSED: would refuse: pg-test has no healthy replica")


def test_reconcile_dry_run_table_lists_each_change(env, outputter):
    env.world.leader = "pg-test-2"
    text = outputter.output(shown(env.reconcile("pg-test", test=True)))
    assert any(line.split()[:3] == ["haproxy", "node-1", "set"] for line in text.splitlines())
    assert "would add on pg-test-2" in text and "rewrite record, targets, dns" in text
    assert "pg-test-primary -> 10.10.10.12" in text


def test_anything_else_prints_as_json(outputter):
    assert json.loads(outputter.output({"a": [1, 2]})) == {"a": [1, 2]}
