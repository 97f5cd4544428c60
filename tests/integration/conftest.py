"""Integration tests run against the real sandbox (sandbox/sandbox.py): the session fixture
brings it up (reusing running machines) and runs the main job once."""
import json
import os
import subprocess
import time

import pytest

from sandbox_cli import REPO, SANDBOX, node_exec, salt_json

__all__ = ["REPO", "SANDBOX", "node_exec", "salt_json"]   # the tests import them from here too


def last_json(text):
    """The runner's return from `salt-run --out=json` output: the last JSON document that is
    not a progress event (runners that report progress print one document per event first);
    a runner that returns text (a table) prints a JSON string on a line of its own."""
    decoder, docs, i = json.JSONDecoder(), [], 0

    def starts(i):
        return text[i] in "{[" or (text[i] == '"' and (i == 0 or text[i - 1] == "\n"))
    while True:
        while i < len(text) and not starts(i):
            i += 1
        if i >= len(text):
            break
        try:
            doc, i = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        docs.append(doc)
    docs = [d for d in docs if not (isinstance(d, dict) and d.get("suffix") == "progress")]
    return docs[-1] if docs else None


def salt_run(*args, timeout=600):
    res = node_exec("meta", "salt-run", "--out=json", *args, timeout=timeout)
    try:
        data = json.loads(res.stdout) if res.stdout.strip() else None
    except ValueError:
        data = last_json(res.stdout)
    return data, res.returncode, res


def wait_for(check, timeout, interval=1.0):
    """Poll ``check`` until it returns something true (bounded by ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last = exc
        time.sleep(interval)
    raise AssertionError("condition not met within %ss (last: %r)" % (timeout, last))


PG_TEST = {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12", "pg-test-3": "10.10.10.13"}


def pg_test_leader():
    """pg-test's leader now, as the first member's Patroni that answers says (None: none)."""
    import patroni_rest   # noqa: E402 - tests/support, on the path once pytest has started
    for ip in PG_TEST.values():
        try:
            members = patroni_rest.get(ip, "/cluster", timeout=3)["members"]
        except Exception:  # noqa: BLE001 - try the next member
            continue
        return next((m["name"] for m in members if m.get("role") in ("leader", "master", "primary")), None)
    return None


def leader_back_on(member="pg-test-1", attempts=4):
    """Modules written for the cluster as orch.site leaves it (pg-test-1 leading) call this
    first: when an earlier module, or Patroni on its own, moved the leader, switch back through
    the runner (bounded; a replica that has just rejoined may be refused for a while, so wait
    and ask again). Fails, naming the runner's answers, when it cannot."""
    answers = []
    for _attempt in range(attempts):
        current = wait_for(pg_test_leader, 120)
        if current == member:
            return current
        data, code, res = salt_run("pigsty_ha.switchover", "pg-test", "candidate=" + member, timeout=300)
        answers.append((current, code, data if data is not None else res.stdout[-1500:] + res.stderr[-800:]))
        try:
            return wait_for(lambda: pg_test_leader() == member and member, 60)
        except AssertionError:
            time.sleep(10)
    raise AssertionError("pg-test's leader could not be moved back to %s: %r" % (member, answers))


def sandbox_down():
    """Tear the sandbox down unless KEEP_SANDBOX=1; returns the CompletedProcess or None."""
    if os.environ.get("KEEP_SANDBOX") == "1":
        return None
    return subprocess.run(SANDBOX + ["down"], capture_output=True, text=True, timeout=300)


_DIAGNOSED = []


def _diagnosis():
    """What the sandbox's HA path says now: pg-test's leader and its last HA events (the
    runner's history), for the first failing test's report."""
    lines = ["pg-test leader now: %s" % pg_test_leader()]
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


@pytest.fixture(scope="session")
def sandbox():
    """The sandbox, up with the main job applied. It is torn down at the end of the session
    whatever happened (test_zz_sandbox_down checks that down leaves nothing; tearing down
    again here is a no-op then), so a failed `up` or an interrupted run leaves no machines,
    mounts or interfaces behind. KEEP_SANDBOX=1 keeps it for more work."""
    try:
        res = subprocess.run(SANDBOX + ["up"], capture_output=True, text=True, timeout=3600)
        if res.returncode != 0:
            pytest.fail("sandbox up failed:\n%s\n%s" % (res.stdout[-6000:], res.stderr[-4000:]))
        yield res
    finally:
        down = sandbox_down()
        if down is not None and down.returncode != 0:
            print("sandbox down at the end of the session failed:\n%s\n%s"
                  % (down.stdout[-3000:], down.stderr[-2000:]))
