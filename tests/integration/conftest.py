"""Integration tests run against the real sandbox (sandbox/sandbox.py): the session fixture
brings it up (reusing running machines) and runs the main job once."""
import json
import os
import subprocess

import pytest

from pg_test_cluster import live_leader, put_back
from sandbox_cli import SANDBOX, salt_run


def sandbox_down():
    """Tear the sandbox down unless KEEP_SANDBOX=1; returns the CompletedProcess or None."""
    if os.environ.get("KEEP_SANDBOX") == "1":
        return None
    return subprocess.run(SANDBOX + ["down"], capture_output=True, text=True, timeout=300)


_DIAGNOSED = []


def _diagnosis():
    """What the sandbox's HA path says now: pg-test's leader and its last HA events (the
    runner's history), for the first failing test's report."""
    lines = ["pg-test leader now: %s" % live_leader()]
    for cluster in ("pg-test", "pg-meta"):
        data, code, res = salt_run("pigsty_ha.history", cluster, "last=200", timeout=60)
        lines.append("salt-run pigsty_ha.history %s (rc %s), the last events and primary "
                     "changes:" % (cluster, code))
        if not isinstance(data, list):
            lines.append(res.stderr[-1000:])
            continue
        notable, primary = [], None
        for e in (e for e in data if isinstance(e, dict)):
            if e.get("trigger") != "reconcile" or (e.get("primary") and e.get("primary") != primary):
                notable.append(e)
            primary = e.get("primary") or primary
        lines.append(json.dumps(notable[-8:], default=str)[:3000])
    return "\n".join(lines)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """The first test of the session that fails against the sandbox gets the HA history in its
    report (an unexpected failover shows there, with what moved the leader)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call") and not _DIAGNOSED and "sandbox" in item.fixturenames:
        _DIAGNOSED.append(item.nodeid)
        try:
            rep.sections.append(("sandbox at the first failure", _diagnosis()))
        except Exception as exc:  # noqa: BLE001 - never hide the test's own failure
            rep.sections.append(("sandbox at the first failure", "could not be read: %r" % exc))


def pytest_collection_modifyitems(session, config, items):
    """Modules marked ``disruptive`` (they kill machines, move the leader, stop a master or
    add nodes) run after the others, in the order collected; the rest read the sandbox as the
    main job leaves it. The order no longer comes from file names (test_y_..., test_zz_...):
    every module's fixtures establish what it needs (pg_test_as_built) and every disruptive
    module puts the sandbox back in its teardown, so the order only keeps a disruption that
    failed to put things back away from the read-only checks' reports."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)   # stable


@pytest.fixture(scope="module")
def pg_test_as_built(sandbox):
    """pg-test as orch.site leaves it (pg_test_cluster.put_back): every node running,
    pg-test-1 leading, two streaming replicas, nothing held."""
    put_back()


@pytest.fixture(scope="session")
def sandbox():
    """The sandbox, up with the main job applied. It is torn down at the end of the session
    whatever happened, so a failed `up` or an interrupted run leaves no machines, mounts or
    interfaces behind; the teardown then checks that `down` left nothing (machines, mounts,
    cgroups, veths, the bridge, processes) and reports an error if it did. KEEP_SANDBOX=1
    keeps the sandbox for more work (and skips that check)."""
    try:
        res = subprocess.run(SANDBOX + ["up"], capture_output=True, text=True, timeout=3600)
        if res.returncode != 0:
            pytest.fail("sandbox up failed:\n%s\n%s" % (res.stdout[-6000:], res.stderr[-4000:]))
        yield res
    finally:
        down = sandbox_down()
        if down is not None:
            left = subprocess.run(SANDBOX + ["leftovers"], capture_output=True, text=True, timeout=120)
            problems = []
            if down.returncode != 0:
                problems.append("sandbox down failed:\n%s\n%s" % (down.stdout[-3000:], down.stderr[-2000:]))
            if left.returncode != 0 or left.stdout.strip() != "nothing":
                problems.append("sandbox down left: %s%s" % (left.stdout[-3000:], left.stderr[-1000:]))
            if os.path.exists("/sys/class/net/pgsty-br0"):
                problems.append("the bridge pgsty-br0 is still there")
            assert not problems, "\n".join(problems)
