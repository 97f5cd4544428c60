"""Progress lines of the long runner jobs (_utils/pigsty_progress.py), one helper for the
runners pigsty and pigsty_backup: a log line always, a ``progress`` event when the job has a bus."""
import logging
import weakref

import pytest

import pigsty_progress
from loader import load_module


class Bus:
    def __init__(self):
        self.fired = []

    def fire_event(self, data, tag):
        self.fired.append((data, tag))


def test_fires_a_progress_event_and_logs(caplog):
    bus = Bus()
    with caplog.at_level(logging.INFO, logger="progress-test"):
        pigsty_progress.report(logging.getLogger("progress-test"), bus, "pg-test: step 1")
    assert bus.fired == [({"message": "pg-test: step 1", "outputter": "pigsty_progress"}, "progress")]
    assert [r.getMessage() for r in caplog.records] == ["pg-test: step 1"]


def test_without_a_bus_only_logs(caplog):
    with caplog.at_level(logging.INFO, logger="progress-test"):
        pigsty_progress.report(logging.getLogger("progress-test"), None, "no bus")
    assert [r.getMessage() for r in caplog.records] == ["no bus"]


def test_a_bus_gone_at_the_end_of_a_long_job_is_not_an_error(caplog):
    bus = Bus()
    proxy = weakref.proxy(bus)          # what Salt hands a runner as __jid_event__
    del bus
    with caplog.at_level(logging.INFO, logger="progress-test"):
        pigsty_progress.report(logging.getLogger("progress-test"), proxy, "restore done")
    assert [r.getMessage() for r in caplog.records] == ["restore done"]


def test_other_errors_of_the_bus_are_not_hidden():
    class Broken:
        def fire_event(self, data, tag):
            raise RuntimeError("bus broken")
    with pytest.raises(RuntimeError):
        pigsty_progress.report(logging.getLogger("progress-test"), Broken(), "x")


@pytest.mark.parametrize("relpath", ["_runners/pigsty.py", "_runners/pigsty_backup.py", "_runners/pigsty_orch.py"])
def test_the_runners_progress_goes_through_the_helper(relpath, caplog):
    runner = load_module(relpath)
    with caplog.at_level(logging.INFO):
        runner._progress("called as a function")           # no __jid_event__: the log only
    assert "called as a function" in [r.getMessage() for r in caplog.records]
    bus = Bus()
    runner.__jid_event__ = weakref.proxy(bus)               # as salt.client.mixins sets it
    runner._progress("in a job")
    assert bus.fired == [({"message": "in a job", "outputter": "pigsty_progress"}, "progress")]
