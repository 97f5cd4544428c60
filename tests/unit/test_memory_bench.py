"""bench/memory.py's core on a small count, so that the bench cannot rot: the beacon through
Salt's beacon machinery against the scripted Patroni endpoint fires once per change and
stays flat; the HA runner's event path over a synthetic inventory reconciles every event and
stays flat; and the verdict does catch an allocation that grows with the events."""
import os
import sys

import pytest

from loader import load_module


@pytest.fixture(scope="module")
def memory():
    return load_module("bench/memory.py", name="bench_memory")


def test_the_beacon_fires_once_per_change_and_stays_flat(memory, tmp_path):
    with memory.Endpoint("scripted") as endpoint:
        plain, traced = memory.run_beacon(endpoint, 50, every=10, steady=1, workdir=str(tmp_path))
    assert [p[0] for p in traced.points] == [0, 10, 20, 30, 40, 50]
    assert plain.points[-1][3] is None and traced.points[-1][3] is not None
    for tracker in (plain, traced):
        flat, reasons, _top = memory.verdict(tracker.points, 10, 2048, 40)
        assert flat, reasons


def test_the_runner_reconciles_every_event_and_stays_flat(memory, tmp_path):
    bench = memory.RunnerBench(20, 10, str(tmp_path))
    tracker, timings = memory.run_runner(bench, 50, every=10)
    assert len(timings) == 50 and all(wall > 0 for wall, _cpu, _rec in timings)
    flat, reasons, _top = memory.verdict(tracker.points, 20, 2048, 40)
    assert flat, reasons
    # every event went through the real admission, lock, steps and history
    assert sorted(os.listdir(bench.dirs["live_dir"])) == ["pg-c%05d.json" % i for i in range(10)]
    history = [h for h in os.listdir(bench.history_dir()) if h.endswith(".jsonl")]
    assert len(history) == 10
    assert bench.runner.events()["accepted"] == 50
    assert bench.vip["pg-c00000"] == "n00000-%d" % bench.primary["pg-c00000"]


def test_the_verdict_catches_growth_with_the_events(memory, tmp_path):
    bench = memory.RunnerBench(20, 10, str(tmp_path))
    kept, fan = [], bench.fan_out

    def leaking_fan_out(*args, **kwargs):       # a fan-out that keeps something per call
        kept.append(bytearray(4000))
        return fan(*args, **kwargs)
    bench.runner._fan_out = leaking_fan_out
    tracker, _timings = memory.run_runner(bench, 50, every=10)
    flat, reasons, top = memory.verdict(tracker.points, 20, 2048, 40)
    assert not flat
    assert any("test_memory_bench.py" in r for r in reasons), reasons
    assert "test_memory_bench.py" in top[0][0]


def test_the_verdict_on_checkpoints(memory):
    site = "x.py:1"

    def points(sizes, rss):
        return [(100 * k, r, s, {site: s}) for k, (s, r) in enumerate(zip(sizes, rss))]
    steady = points([1000] * 11, [50000] * 11)
    assert memory.verdict(steady, 200, 2048, 40)[0]
    once = points([1000, 1000, 1000, 90000] + [90000] * 7, [50000] * 11)   # grew once: not linear
    assert memory.verdict(once, 200, 2048, 40)[0]
    linear = points([1000 + 5000 * k for k in range(11)], [50000] * 11)
    flat, reasons, _top = memory.verdict(linear, 200, 2048, 40)
    assert not flat and "x.py:1 grew by 40000 bytes (50 per event) in 8 of 8 intervals" in reasons[0]
    rss = points([1000] * 11, [50000 + 300 * k for k in range(11)])
    flat, reasons, _top = memory.verdict(rss, 200, 2048, 40)
    assert not flat and reasons == ["RSS grew by 2400 KiB from event 200 to 1000 (limit 2048 KiB)"]
    assert memory.verdict(steady[:2], 200, 2048, 40)[0] is False     # nothing after the warm-up


def test_the_beacon_run_leaves_the_processes_utils_in_place(memory, tmp_path):
    import pigsty_events
    import pigsty_patroni
    with memory.Endpoint("scripted") as endpoint:     # the beacon takes them out of sys.modules
        memory.run_beacon(endpoint, 2, every=1, steady=0, passes=(False,), workdir=str(tmp_path))
    assert sys.modules["pigsty_events"] is pigsty_events and sys.modules["pigsty_patroni"] is pigsty_patroni
