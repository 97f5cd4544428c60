"""A rewound member waiting for WAL an idle primary has not written: the reconciliation
step (_utils/pigsty_ha_steps.rejoin) and the primary's side (_modules/pigsty_rejoin.py)."""
import pytest
import salt.exceptions

import pigsty_ha_steps
import pigsty_patroni
from loader import load_module

MEMBERS = [{"pg_instance": "pg-test-%d" % i, "ip": "10.10.10.1%d" % i, "minion": "node-%d" % i} for i in (1, 2, 3)]


def _fan(answer, calls):
    def fan(minions, fun, arg=None, kwarg=None, timeout=None):
        calls.append((minions, fun))
        return {m: answer for m in minions}
    return fan


def _no_doc(ip):
    raise AssertionError("the primary's /cluster was asked although every member answered")


def _doc(states):
    def cluster_doc(ip):
        assert ip == "10.10.10.12"
        return {"members": [{"name": n, "role": "leader" if n == "pg-test-2" else "replica", "state": st}
                            for n, st in states.items()]}
    return cluster_doc


def test_a_starting_member_makes_the_primary_write_one_record():
    calls = []
    roles = {"pg-test-1": "stopped", "pg-test-2": "primary", "pg-test-3": "replica"}
    details = {"pg-test-1": {"state": "starting"}, "pg-test-2": {"state": "running"}, "pg-test-3": {"state": "running"}}
    assert pigsty_ha_steps.starting(MEMBERS, details) == ["pg-test-1"]
    assert pigsty_ha_steps.may_wait_for_wal(MEMBERS, roles, details)
    out = pigsty_ha_steps.rejoin(MEMBERS, roles, details, _fan({"result": True, "lsn": "0/2F000068"}, calls), _no_doc)
    assert calls == [(["node-2"], "pigsty_rejoin.wal_record")]
    assert out["result"] is True and "pg-test-2 at 0/2F000068 (starting: pg-test-1)" in out["actions"][0]


def test_a_starting_member_too_slow_to_answer_is_found_in_the_primarys_view():
    """A starting member's own Patroni took 1.7 s to answer in the sandbox: unreachable in
    the live view, "starting" in the DCS."""
    calls = []
    roles = {"pg-test-1": "unreachable", "pg-test-2": "primary", "pg-test-3": "replica"}
    details = {"pg-test-1": {"state": "unreachable"}, "pg-test-2": {"state": "running"}, "pg-test-3": {"state": "running"}}
    assert pigsty_ha_steps.may_wait_for_wal(MEMBERS, roles, details)
    states = {"pg-test-1": "starting", "pg-test-2": "running", "pg-test-3": "running"}
    out = pigsty_ha_steps.rejoin(MEMBERS, roles, details, _fan({"result": True, "lsn": "0/1"}, calls), _doc(states))
    assert calls == [(["node-2"], "pigsty_rejoin.wal_record")] and "starting: pg-test-1" in out["actions"][0]
    # a dead member (its key gone from the DCS) asks for nothing
    calls.clear()
    del states["pg-test-1"]
    out = pigsty_ha_steps.rejoin(MEMBERS, roles, details, _fan({"result": True}, calls), _doc(states))
    assert calls == [] and out["result"] is True


def test_a_primary_whose_view_is_unavailable_is_reported_and_left():
    def broken(ip):
        raise pigsty_patroni.PatroniError("no complete answer within 3.0s")
    roles = {"pg-test-1": "unreachable", "pg-test-2": "primary"}
    details = {"pg-test-1": {"state": "unreachable"}, "pg-test-2": {"state": "running"}}
    calls = []
    out = pigsty_ha_steps.rejoin(MEMBERS, roles, details, _fan({"result": True}, calls), broken)
    assert calls == [] and out["result"] is True and "not available" in out["comment"]


@pytest.mark.parametrize("roles,details", [
    ({"pg-test-1": "primary", "pg-test-2": "replica"}, {"pg-test-1": {"state": "running"}, "pg-test-2": {"state": "running"}}),
    ({"pg-test-1": "stopped", "pg-test-2": "stopped"}, {"pg-test-1": {"state": "starting"}, "pg-test-2": {"state": "unreachable"}}),
])
def test_nothing_is_asked_without_a_starting_member_or_without_a_primary(roles, details):
    calls = []
    out = pigsty_ha_steps.rejoin(MEMBERS, roles, details, _fan({"result": True}, calls), _no_doc)
    assert calls == [] and out["result"] is True
    assert not pigsty_ha_steps.may_wait_for_wal(MEMBERS, roles, details)


def test_a_primary_that_writes_nothing_is_reported():
    calls = []
    roles = {"pg-test-1": "primary", "pg-test-3": "stopped"}
    details = {"pg-test-1": {"state": "running"}, "pg-test-3": {"state": "starting"}, "pg-test-2": "garbage"}
    out = pigsty_ha_steps.rejoin(MEMBERS, roles, details, _fan("Minion did not return", calls), _no_doc)
    assert out["result"] is False and "Minion did not return" in out["comment"] and "pg-test-3" in out["comment"]


def _module(stdout="", retcode=0, stderr="", conf=True):
    seen = []

    def run_all(cmd, **kwargs):
        seen.append((cmd, kwargs))
        return {"retcode": retcode, "stdout": stdout, "stderr": stderr}
    config = {"pg_port": 5433, "pg_dbsu": "dbsu"} if conf else {}
    mod = load_module("_modules/pigsty_rejoin.py", salt={"pigsty.config": lambda: config, "cmd.run_all": run_all})
    return mod, seen


def test_the_primary_writes_a_logical_message_as_the_dbsu_over_the_socket():
    mod, seen = _module(stdout="0/2F000068\n")
    assert mod.wal_record() == {"result": True, "lsn": "0/2F000068"}
    cmd, kwargs = seen[0]
    assert cmd[:2] == ["psql", "-X"] and "5433" in cmd and "-h" not in cmd and kwargs["runas"] == "dbsu"
    assert "pg_logical_emit_message(false" in cmd[-1] and "pg_is_in_recovery()" in cmd[-1]


def test_a_standby_or_a_silent_instance_writes_nothing():
    assert _module(stdout="\n")[0].wal_record()["result"] is False
    res = _module(retcode=2, stderr="psql: error: connection refused")[0].wal_record()
    assert res["result"] is False and "connection refused" in res["comment"]
    with pytest.raises(salt.exceptions.CommandExecutionError, match="no PostgreSQL instance"):
        _module(conf=False)[0].wal_record()


def test_the_module_says_why_it_cannot_load_without_the_pigsty_module():
    mod = load_module("_modules/pigsty_rejoin.py", salt={})
    assert mod.__virtual__()[0] is False
