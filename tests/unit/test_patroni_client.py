"""The Patroni REST client: role names, members, config diff, and bounded failures."""
import socket

import pytest

import pigsty_patroni as p

CLUSTER_3 = {"members": [
    {"name": "pg-test-1", "role": "leader", "state": "running", "host": "10.10.10.11", "timeline": 1},
    {"name": "pg-test-2", "role": "replica", "state": "streaming", "host": "10.10.10.12", "lag": 0, "timeline": 1},
    {"name": "pg-test-3", "role": "replica", "state": "running", "host": "10.10.10.13", "lag": 1024, "timeline": 1},
]}


def test_role_names_of_patroni_3_and_4():
    assert p.normalize_role("master") == "primary"
    assert p.normalize_role("primary") == "primary"
    assert p.normalize_role("replica") == "replica"


def test_members_and_leader():
    members = p.members(CLUSTER_3)
    assert [m["role"] for m in members] == ["primary", "replica", "replica"]
    assert members[2]["lag"] == 1024
    assert p.leader(CLUSTER_3)["name"] == "pg-test-1"
    assert p.leader({"members": [{"name": "x", "role": "replica"}]}) is None


def test_config_diff_is_the_minimal_patch():
    current = {"ttl": 30, "loop_wait": 10, "postgresql": {"parameters": {"max_connections": 100, "wal_level": "logical"}}}
    desired = {"ttl": 30, "loop_wait": 5, "postgresql": {"parameters": {"max_connections": "100", "hot_standby": True}}}
    assert p.config_diff(current, desired) == {"loop_wait": 5, "postgresql": {"parameters": {"hot_standby": True}}}
    assert p.config_diff(desired, desired) == {}


def test_unreachable_patroni_is_a_clear_bounded_error():
    # a port on loopback with nothing listening
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(p.PatroniError) as err:
        p.get_json("127.0.0.1", port, "/patroni", timeout=1)
    assert "unreachable" in str(err.value) and str(port) in str(err.value)
    leader, errors = p.find_leader(["127.0.0.1"], port, timeout=1)
    assert leader is None and errors
