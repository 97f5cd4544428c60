"""The live portal's recent HA events (pigsty_ha_history.publish): written beside the live
role records only where the portal is installed, newest first, at most PORTAL_EVENTS_KEEP,
and only for what a person wants to see (events, failures, changes, new roles), not for the
scheduled reconciliations that found everything in place."""
import json
import os

import pytest

import pigsty_ha_history as history

ROLES = {"pg-test-1": "primary", "pg-test-2": "replica", "pg-test-3": "replica"}
SWITCHED = {"pg-test-1": "replica", "pg-test-2": "primary", "pg-test-3": "replica"}


def entry(t, roles=ROLES, event=None, steps=None, comment=None):
    e = {"time": t, "cluster": "pg-test", "event": event, "roles": dict(roles), "duration": 0.2,
         "steps": steps if steps is not None else {
             "haproxy": {"result": True, "members": {"pg-test-1": [], "pg-test-2": []}},
             "vip": {"result": True, "actions": [], "comment": "in place"}}}
    if comment:
        e["comment"] = comment
    return e


@pytest.fixture
def portal(tmp_path):
    live = tmp_path / "live"
    (live / "events").mkdir(parents=True)
    opts = {"cachedir": str(tmp_path / "cache"), "pigsty_live_dir": str(live)}
    return opts, live / "events" / "pg-test.json"


def shown(path):
    return json.loads(path.read_text())


def test_a_quiet_reconciliation_is_shown_once_then_only_what_changes(portal):
    opts, path = portal
    history.record(opts, "pg-test", entry(1000.0))
    assert [e["trigger"] for e in shown(path)] == ["reconcile"]     # the first: where things stand
    for t in (1030.0, 1060.0, 1090.0):                               # the schedule, nothing changed
        history.record(opts, "pg-test", entry(t))
    assert len(shown(path)) == 1
    # a failover the schedule found (the event was missed): new roles are shown
    history.record(opts, "pg-test", entry(1120.0, SWITCHED))
    got = shown(path)
    assert [e["primary"] for e in got] == ["pg-test-2", "pg-test-1"] and got[0]["epoch"] == 1120.0
    # and everything stays in the history file itself
    assert len(history.read(opts, "pg-test", last=50)) == 5


def test_events_failures_and_changes_are_shown(portal):
    opts, path = portal
    history.record(opts, "pg-test", entry(1000.0))
    ev = {"source": "beacon", "instance": "pg-test-2", "old_role": "replica", "new_role": "primary"}
    history.record(opts, "pg-test", entry(1001.0, event=ev))
    history.record(opts, "pg-test", entry(1002.0, steps={
        "haproxy": {"result": True, "members": {"pg-test-1": ["set server pg-test-primary/pg-test-2 state ready"]}},
        "vip": {"result": True, "actions": ["VIP 10.10.10.3 to pg-test-2"]}}))
    history.record(opts, "pg-test", entry(1003.0, steps={"vip": {"result": False, "actions": []}},
                                          comment="reconciling pg-test failed: vip: no answer"))
    got = shown(path)
    assert [e["epoch"] for e in got] == [1003.0, 1002.0, 1001.0, 1000.0]
    assert got[0]["ok"] is False and "vip: no answer" in got[0]["comment"]
    assert got[1]["vip"] == ["VIP 10.10.10.3 to pg-test-2"] and got[1]["haproxy"]
    assert got[2]["trigger"] == "beacon pg-test-2: replica -> primary"


def test_at_most_keep_newest_first(portal):
    opts, path = portal
    for i in range(history.PORTAL_EVENTS_KEEP + 5):
        history.record(opts, "pg-test", entry(2000.0 + i, SWITCHED if i % 2 else ROLES))
    got = shown(path)
    assert len(got) == history.PORTAL_EVENTS_KEEP
    assert [e["epoch"] for e in got] == sorted((e["epoch"] for e in got), reverse=True)
    assert got[0]["epoch"] == 2000.0 + history.PORTAL_EVENTS_KEEP + 4


def test_nothing_is_written_where_the_portal_is_not_installed(tmp_path):
    live = tmp_path / "live"                     # no events/ directory: not a portal node
    opts = {"cachedir": str(tmp_path / "cache"), "pigsty_live_dir": str(live)}
    history.record(opts, "pg-test", entry(1000.0))
    assert not live.exists()
    assert len(history.read(opts, "pg-test")) == 1


def test_an_unreadable_events_file_is_replaced(portal):
    opts, path = portal
    path.write_text("not json")
    history.record(opts, "pg-test", entry(1000.0))
    assert [e["epoch"] for e in shown(path)] == [1000.0]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"         # Nginx (www-data) reads it


def test_the_events_file_name_is_a_checked_cluster_name(tmp_path):
    assert history.events_path(str(tmp_path), "pg-test") == str(tmp_path / "events" / "pg-test.json")
    with pytest.raises(ValueError):
        history.events_path(str(tmp_path), "../etc")


def test_a_slow_reconciliation_recorded_late_is_sorted_by_its_start(portal):
    opts, path = portal
    ev = {"source": "beacon", "instance": "pg-test-2", "old_role": "replica", "new_role": "primary"}
    history.record(opts, "pg-test", entry(1005.0, event=ev))
    history.record(opts, "pg-test", entry(1002.0, event=ev))        # started earlier, finished later
    history.record(opts, "pg-test", entry(1007.0, event=ev))
    assert [e["epoch"] for e in shown(path)] == [1007.0, 1005.0, 1002.0]
