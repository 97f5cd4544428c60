"""Event payload checks (malformed or forged events change nothing) and the HAProxy
routing that the reconciliation derives from Patroni's live view."""
import pytest

import pigsty_events as ev
import pigsty_haproxy as hx
import pigsty_inventory as inv
import pigsty_pgsql as pgsql
from pillar_fixture import default_pillar

CLUSTERS = {"pg-test": {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12", "pg-test-3": "10.10.10.13"}}
GOOD = {"cluster": "pg-test", "instance": "pg-test-2", "ip": "10.10.10.12", "new_role": "primary"}


def test_good_payload_is_accepted():
    assert ev.check_payload(GOOD, CLUSTERS) == []


@pytest.mark.parametrize("change,fragment", [
    ({"cluster": "pg-prod"}, "event data:cluster: unknown cluster 'pg-prod'"),
    ({"cluster": "PG;drop"}, "event data:cluster: 'PG;drop' is not a cluster name"),
    ({"instance": "pg-test-9"}, "event data:instance: pg-test-9 is not a member of pg-test"),
    ({"instance": "../etc"}, "is not an instance name"),
    ({"ip": "10.10.10.66"}, "event data:ip: '10.10.10.66' does not match pg-test-2's address"),
    ({"new_role": "king"}, "event data:new_role: 'king'"),
    ({"instance": None}, "is not an instance name"),
])
def test_forged_or_bad_payloads_are_refused(change, fragment):
    data = dict(GOOD, **change)
    problems = ev.check_payload(data, CLUSTERS)
    assert problems and fragment in problems[0], problems


@pytest.mark.parametrize("missing", ["cluster", "instance", "ip", "new_role"])
def test_missing_fields_are_named(missing):
    data = dict(GOOD)
    del data[missing]
    assert any("event data:%s: missing" % missing in p for p in ev.check_payload(data, CLUSTERS))


def test_non_mapping_payload():
    assert ev.check_payload("boom", CLUSTERS) == ["event data: expected a mapping, got str"]


def services():
    return pgsql.haproxy_services(inv.instance_config(default_pillar(), "node-2"))


def test_desired_health_after_failover_to_pg_test_2():
    want = hx.desired_health(services(), {"pg-test-1": "unreachable", "pg-test-2": "primary", "pg-test-3": "replica"})
    assert want["pg-test-primary"] == {"pg-test-1": "down", "pg-test-2": "up", "pg-test-3": "down"}
    assert "pg-test-default" not in want      # tracks pg-test-primary: HAProxy refuses health on it
    # 5434's checked servers are up on live replicas only; the "-primary" copies follow 5433
    assert want["pg-test-replica"] == {"pg-test-1": "down", "pg-test-2": "down", "pg-test-3": "up"}
    assert "pg-test-offline" not in want      # tracks 5434's checked servers


def test_old_primary_back_as_replica_returns_to_the_read_services():
    want = hx.desired_health(services(), {"pg-test-1": "replica", "pg-test-2": "primary", "pg-test-3": "replica"})
    assert want["pg-test-replica"]["pg-test-1"] == "up" and want["pg-test-primary"]["pg-test-1"] == "down"


def test_plan_only_touches_what_differs():
    current = {"pg-test-primary": {"pg-test-1": {"op": "UP", "admin": "READY", "addr": "x"},
                                   "pg-test-2": {"op": "DOWN", "admin": "READY", "addr": "y"},
                                   "pg-test-3": {"op": "DOWN", "admin": "READY", "addr": "z"}}}
    want = {"pg-test-primary": {"pg-test-1": "down", "pg-test-2": "up", "pg-test-3": "down"},
            "pg-test-gone": {"pg-test-1": "up"}}
    assert hx.plan(current, want) == ["set server pg-test-primary/pg-test-1 health down",
                                      "set server pg-test-primary/pg-test-2 health up"]
    assert hx.plan(current, {"pg-test-primary": {"pg-test-1": "up"}}) == []


def test_an_unresponsive_leader_is_left_to_the_health_checks():
    """A leader whose REST API was too slow to answer is not a dead one: the reconciler must
    not force it down (that would cut writes); HAProxy's own checks decide."""
    want = hx.desired_health(services(), {"pg-test-1": "unresponsive", "pg-test-2": "replica", "pg-test-3": "replica"})
    assert "pg-test-1" not in want.get("pg-test-primary", {}) and "pg-test-1" not in want["pg-test-replica"]
    # with no primary in the view, the live replicas are left to the checks too (see below)
    assert want.get("pg-test-primary", {}) == {}


def test_a_view_without_primary_forces_no_live_member_down_in_the_leader_service():
    """Mid-promotion (old leader stopped, candidate still answering as a replica) the view has
    no primary; by the time the commands land, HAProxy's check may already have marked the
    candidate up, and forcing it down closes new connections (issue 18, seen in the sandbox).
    Only unreachable members are forced down; the replica service still follows the view."""
    want = hx.desired_health(services(), {"pg-test-1": "stopped", "pg-test-2": "replica", "pg-test-3": "unreachable"})
    assert want["pg-test-primary"] == {"pg-test-3": "down"}
    assert want["pg-test-replica"]["pg-test-2"] == "up" and want["pg-test-replica"]["pg-test-3"] == "down"
    # once a primary is in the view, the others are forced down in the leader service again
    want = hx.desired_health(services(), {"pg-test-1": "stopped", "pg-test-2": "primary", "pg-test-3": "replica"})
    assert want["pg-test-primary"] == {"pg-test-1": "down", "pg-test-2": "up", "pg-test-3": "down"}
