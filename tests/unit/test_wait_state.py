"""pigsty_wait.http: a readiness check that never reports changes and answers at once in
test mode (real HTTP servers on loopback)."""
import time

import pytest

from loader import load_module
from scripted_http import ScriptedHTTP, free_port


def wait_state(test):
    return load_module("_states/pigsty_wait.py", opts={"test": test})


def test_dry_run_of_a_ready_service_is_nothing_to_do():
    with ScriptedHTTP([(200, {"health": "true"})]) as srv:
        started = time.monotonic()
        ret = wait_state(True).http("http://127.0.0.1:%d/health" % srv.port, match='"health": ?"true"', timeout=60)
    assert ret["result"] is True and ret["changes"] == {}
    assert time.monotonic() - started < 1
    assert "is ready" in ret["comment"]


def test_dry_run_of_a_service_that_does_not_answer_says_it_would_wait_at_once():
    started = time.monotonic()
    ret = wait_state(True).http("http://127.0.0.1:%d/-/ready" % free_port(), timeout=60)
    assert ret["result"] is None and ret["changes"] == {}
    assert time.monotonic() - started < 3           # one probe, not the 60 s bound
    assert "would wait up to 60s" in ret["comment"]


def test_waits_until_ready():
    with ScriptedHTTP([(503, {}), (503, {}), (200, {})]) as srv:
        ret = wait_state(False).http("http://127.0.0.1:%d/-/ready" % srv.port, timeout=10, interval=0.1)
    assert ret["result"] is True and ret["changes"] == {}
    assert srv.hits == 3


def test_gives_up_after_its_bound_naming_what_it_saw():
    with ScriptedHTTP([(200, {"health": "false"})]) as srv:
        started = time.monotonic()
        ret = wait_state(False).http("http://127.0.0.1:%d/health" % srv.port, match='"health":"true"',
                                     timeout=0.5, interval=0.1)
    assert ret["result"] is False and time.monotonic() - started < 2
    assert "not ready after 0.5s" in ret["comment"] and "without" in ret["comment"]


@pytest.mark.parametrize("field", ["timeout", "interval", "request_timeout"])
def test_bad_bounds_are_refused_by_name(field):
    ret = wait_state(False).http("http://127.0.0.1:1/", **{field: "soon"})
    assert ret["result"] is False and field in ret["comment"]
