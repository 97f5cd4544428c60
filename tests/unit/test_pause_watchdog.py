"""The node's pgbouncer pause watchdog (salt/pgsql/files/pgbouncer_pause_watchdog.py):
resumes only an expired pause of ours with no hand-off running."""
import fcntl
import json
import os

import pytest

from loader import load_module

wd = load_module("salt/pgsql/files/pgbouncer_pause_watchdog.py", "pgbouncer_pause_watchdog")


@pytest.fixture
def paths(tmp_path):
    return str(tmp_path / "pgbouncer-paused"), str(tmp_path / "handoff.lock")


def write(path, doc):
    with open(path, "w") as fh:
        fh.write(doc if isinstance(doc, str) else json.dumps(doc))


def test_an_expired_pause_with_no_handoff_is_resumed_and_the_marker_removed(paths):
    marker, lock = paths
    write(marker, {"time": 1000.0, "pid": 1, "expires": 1060.0})
    resumed = []
    verdict = wd.run(6432, "postgres", marker, lock, resume=lambda p, u: resumed.append((p, u)), now=1061.0)
    assert verdict == "resume" and resumed == [(6432, "postgres")] and not os.path.exists(marker)


def test_a_pause_not_yet_expired_is_left(paths):
    marker, lock = paths
    write(marker, {"time": 1000.0, "pid": 1, "expires": 1060.0})
    resumed = []
    assert wd.run(6432, "postgres", marker, lock, resume=lambda p, u: resumed.append(p), now=1059.0) == "not expired"
    assert resumed == [] and os.path.exists(marker)


def test_a_running_handoff_keeps_its_pause_even_when_expired(paths):
    marker, lock = paths
    write(marker, {"time": 1000.0, "pid": 1, "expires": 1060.0})
    resumed = []
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)           # another open file: like the hand-off's process
        assert wd.run(6432, "postgres", marker, lock, resume=lambda p, u: resumed.append(p), now=2000.0) \
            == "hand-off running"
    assert resumed == [] and os.path.exists(marker)


def test_no_marker_means_a_pause_by_hand_or_none_and_nothing_is_done(paths):
    marker, lock = paths
    assert wd.run(6432, "postgres", marker, lock, resume=lambda p, u: 1 / 0, now=1e12) == "no marker"


def test_an_old_marker_without_expiry_expires_after_the_default_hold_and_garbage_at_once(paths):
    assert wd.decide({"time": 1000.0}, 1000.0 + wd.DEFAULT_HOLD - 1, True) == "not expired"
    assert wd.decide({"time": 1000.0}, 1000.0 + wd.DEFAULT_HOLD + 1, True) == "resume"
    assert wd.decide({}, 1e9, True) == "resume"                 # no time: as old as can be
    assert wd.decide({"expires": "soon"}, 5.0, True) == "resume"     # unreadable: nobody's


def test_a_failed_resume_keeps_the_marker_for_the_next_round(paths):
    marker, lock = paths
    write(marker, {"time": 1.0, "expires": 2.0})

    def fail(port, dbsu):
        raise RuntimeError("RESUME failed: no console")
    with pytest.raises(RuntimeError):
        wd.run(6432, "postgres", marker, lock, resume=fail, now=10.0)
    assert os.path.exists(marker)


def test_a_pause_that_belongs_to_a_dead_process_ends_with_it_before_expiry():
    marker = {"time": 1000.0, "pid": 4242, "expires": 1060.0, "while_alive": True}
    assert wd.decide(marker, 1001.0, True, is_alive=lambda pid: False) == "resume"
    assert wd.decide(marker, 1001.0, True, is_alive=lambda pid: True) == "not expired"
    assert wd.decide(marker, 1001.0, False, is_alive=lambda pid: False) == "hand-off running"
    # a pause without while_alive (the runner's, of forwarding members) waits for its expiry
    assert wd.decide(dict(marker, while_alive=False), 1001.0, True, is_alive=lambda pid: False) == "not expired"


def test_alive_tells_this_process_from_a_pid_that_does_not_exist():
    assert wd.alive(os.getpid()) is True
    assert wd.alive(2 ** 22 + 12345) is False
