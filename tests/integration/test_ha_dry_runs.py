"""Issue 16 in the real sandbox: `salt-run pigsty_ha.switchover pg-test test=True` and
`pigsty_ha.reconcile pg-test test=True` report what they would do and change nothing: the
leader stays, every HAProxy's servers are as they were, no pgbouncer waits, no history
entry is written. The default output is the pigsty_ha table; --out=json gives the dict."""
import json

import pytest

from pg import query
from pg_test_cluster import handoff_state, holds_vip, IPS, live_leader, NODE_OF, TEST
from sandbox_cli import node_exec, salt_run, wait_for


def haproxy_view(node):
    res = node_exec("meta", "salt", "--out=json", node, "pigsty_haproxy.servers")
    return json.loads(res.stdout)[node]


def history():
    return salt_run("pigsty_ha.history", "pg-test", "last=1000")[0] or []


@pytest.fixture(scope="module")
def steady(pg_test_as_built):
    # pg-test as built, and HAProxy's own checks agree with the live roles: a member that has
    # just started (put_back starts the machines) is DOWN in HAProxy until its checks rise
    # (rise 3 x downinter 5 s), and a dry run meanwhile rightly says it would set it up
    wait_for(lambda: (salt_run("pigsty_ha.reconcile", "pg-test", "test=True")[0] or {}).get("plan") == {}, 120, 3)


def after_a_scheduled_reconciliation():
    """The master's schedule reconciles every 30 s (one history entry each): start right
    after one, so that the next does not land while the dry runs are checked."""
    n = len(history())
    wait_for(lambda: len(history()) > n, 45, 1)
    return len(history())


def test_dry_runs_change_nothing_and_name_the_candidate(steady):
    current = live_leader()
    views = {n: haproxy_view(n) for n in NODE_OF.values()}
    vip = {n: holds_vip(n) for n in NODE_OF.values()}
    entries = after_a_scheduled_reconciliation()

    data, rc, res = salt_run("pigsty_ha.switchover", "pg-test", "test=True")
    assert rc == 0, res.stdout + res.stderr
    assert data["test"] is True and data["result"] is None, data
    assert data["leader"] == current and data["candidate"] in IPS and data["candidate"] != current
    assert "would switch over pg-test from %s to %s" % (current, data["candidate"]) in data["comment"]
    assert [s["step"] for s in data["steps"]][-3:] == ["hand-off", "route", "reconcile"]
    table = node_exec("meta", "salt-run", "pigsty_ha.switchover", "pg-test", "test=True")
    assert table.returncode == 0 and "candidate  %s" % data["candidate"] in table.stdout, table.stdout

    # a refusal exits 1, like the real run's
    refused, rc, res = salt_run("pigsty_ha.switchover", "pg-test", "candidate=" + current, "test=True")
    assert rc == 1 and refused["result"] is False and "is the leader already" in refused["comment"], res.stdout

    rec, rc, res = salt_run("pigsty_ha.reconcile", "pg-test", "test=True")
    assert rc == 0, res.stdout + res.stderr
    assert rec["test"] is True and rec["roles"][current] == "primary"
    assert rec["result"] is True and rec["plan"] == {}, (rec["comment"], rec["plan"])   # just reconciled

    # nothing changed anywhere
    assert live_leader() == current
    assert {n: haproxy_view(n) for n in NODE_OF.values()} == views
    assert {n: holds_vip(n) for n in NODE_OF.values()} == vip
    assert handoff_state(NODE_OF[current])["forward"] is None
    assert query(IPS[current], 5433, *TEST, "select 1", dbname="test") == [(1,)]   # pgbouncer not paused
    assert len(history()) == entries


def test_status_prints_a_table_and_json_on_request(steady):
    table = node_exec("meta", "salt-run", "pigsty_ha.status", "pg-test")
    assert table.returncode == 0 and table.stdout.startswith("cluster pg-test"), table.stdout
    assert "INSTANCE" in table.stdout and "pg-test-1" in table.stdout
    data, rc, _res = salt_run("pigsty_ha.status", "pg-test")
    assert rc == 0 and data["cluster"] == "pg-test" and len(data["members"]) == 3
