"""pigsty_events.admit and its parts: an event is acted on only when the minion of its tag
owns the instance it names, within that minion's rate limit; refusals are counted; only
known fields are kept; the history file is bounded and its reader takes only cluster names."""
import json
import multiprocessing
import os

import pytest

import pigsty_events as ev
import pigsty_ha_history as history
import pigsty_inventory as inv
from pillar_fixture import REPO, default_pillar


def tag_of(minion):
    return "salt/beacon/%s/patroni/pigsty/patroni/change" % minion


def members():
    i = inv.inventory(default_pillar())
    return {name: inv.cluster_members(i, name) for name in i["clusters"]}


def beacon_event(minion="node-2", **change):
    data = {"cluster": "pg-test", "instance": "pg-test-2", "ip": "10.10.10.12",
            "old_role": "replica", "new_role": "primary", "old_state": "running",
            "state": "running", "timeline": 3, "lsn": 123456, "changed": ["role"],
            "source": "beacon", "time": 1700000000.5, "id": minion,
            "_stamp": "2026-12-01T10:00:00.000000", ev.TAG_KEY: tag_of(minion)}
    data.update(change)
    return data


def test_sender_of_tag():
    assert ev.sender_of(tag_of("node-2")) == "node-2"
    for bad in ("salt/beacon/node-2/patroni/other", "salt/beacon//patroni/pigsty/patroni/change",
                "salt/beacon/a/b/patroni/pigsty/patroni/change", tag_of("../x"), None, 5,
                "salt/minion/node-2/start", tag_of("node-2") + "\n"):
        assert ev.sender_of(bad) is None, bad


def test_owner_sending_a_good_event_is_admitted(tmp_path):
    event, problems = ev.admit(beacon_event(), members(), str(tmp_path))
    assert problems == [] and event["sender"] == "node-2"
    assert ev.TAG_KEY not in event and event["new_role"] == "primary"
    assert ev.EventCounters(str(tmp_path)).read()["accepted"] == 1


def test_tag_passed_apart_is_used(tmp_path):
    data = beacon_event()
    del data[ev.TAG_KEY]
    assert ev.admit(data, members(), str(tmp_path), tag=tag_of("node-2"))[1] == []
    assert ev.admit(data, members(), str(tmp_path))[0] is None          # no tag: refused


@pytest.mark.parametrize("minion, change, reason, fragment", [
    ("node-1", {}, "not the owner", "minion node-1 does not own instance 'pg-test-2'"),
    ("meta", {}, "not the owner", "minion meta does not own instance 'pg-test-2'"),
    ("node-2", {"id": "node-1"}, "not the owner", "event data:id: 'node-1' is not the minion"),
    ("node-2", {"instance": "pg-meta-1", "cluster": "pg-meta", "ip": "10.10.10.10"},
     "not the owner", "minion node-2 does not own instance 'pg-meta-1' (its node is meta)"),
    ("node-2", {"ip": "10.10.10.66"}, "bad payload", "does not match pg-test-2's address"),
    ("node-2", {"new_role": "king"}, "bad payload", "event data:new_role"),
    ("node-2", {"padding": "x" * 5000}, "too large", "larger than 4096 bytes"),
    ("evil-host", {}, "unknown sender", "minion evil-host does not own"),
])
def test_forged_events_are_refused_and_counted(tmp_path, minion, change, reason, fragment):
    data = beacon_event(minion, **change)
    event, problems = ev.admit(data, members(), str(tmp_path))
    assert event is None and problems and fragment in problems[0], problems
    counts = ev.EventCounters(str(tmp_path)).read()
    assert counts["refused"] == {reason: 1} and counts["last_refused"]["reason"] == reason
    assert "accepted" not in counts
    expected = minion if minion != "evil-host" else "(not an inventory minion)"
    assert counts["refused_by_minion"] == {expected: 1}


def test_a_forged_tag_inside_the_data_is_what_the_reactor_overwrites():
    """reactor/patroni_change.sls, rendered by Salt's own Jinja: the data's _tag loses."""
    import salt.config
    import salt.utils.templates
    import yaml
    with open(os.path.join(REPO, "reactor", "patroni_change.sls")) as fh:
        text = fh.read()
    opts = dict(salt.config.DEFAULT_MASTER_OPTS, file_roots={"base": []})
    rendered = salt.utils.templates.render_jinja_tmpl(text, {
        "opts": opts, "saltenv": "base", "tag": tag_of("node-2"), "salt": {}, "grains": {},
        "pillar": {}, "data": beacon_event("node-2", **{ev.TAG_KEY: tag_of("node-1")})})
    low = yaml.safe_load(rendered)["pigsty-reconcile-on-patroni-change"]
    event = low["runner.pigsty_ha.reconcile"][0]["event"]
    assert event[ev.TAG_KEY] == tag_of("node-2") and event["instance"] == "pg-test-2"


def test_only_known_fields_with_valid_values_are_kept():
    data = beacon_event(extra="x" * 100000, nested={"a": [1, 2]}, state="s" * 1000,
                        changed=["role", "evil"], timeline=True, lsn="0/3000000")
    kept = ev.clean(data, "node-2")
    assert set(kept) <= set(ev.KNOWN_FIELDS)
    for dropped in ("extra", "nested", "state", "changed", "timeline", "lsn", ev.TAG_KEY):
        assert dropped not in kept
    assert kept["sender"] == "node-2" and kept["cluster"] == "pg-test"
    assert ev.clean("not a mapping") == {} and ev.clean(None, "n") == {"sender": "n"}


def test_a_burst_from_one_minion_is_rate_limited(tmp_path):
    limiter = ev.RateLimiter(str(tmp_path), burst=5, rate=1.0)
    verdicts = [ev.admit(beacon_event(), members(), str(tmp_path), now=1000.0,
                         limiter=limiter)[0] is not None for _ in range(8)]
    assert verdicts == [True] * 5 + [False] * 3
    counts = ev.EventCounters(str(tmp_path)).read()
    assert counts["accepted"] == 5 and counts["refused"] == {"rate limited": 3}
    # another minion has its own bucket; the first one refills at `rate`
    other = beacon_event("node-3", instance="pg-test-3", ip="10.10.10.13")
    assert ev.admit(other, members(), str(tmp_path), now=1000.0, limiter=limiter)[1] == []
    assert ev.admit(beacon_event(), members(), str(tmp_path), now=1002.1, limiter=limiter)[1] == []
    assert ev.admit(beacon_event(), members(), str(tmp_path), now=1002.2, limiter=limiter)[1] == []
    assert ev.admit(beacon_event(), members(), str(tmp_path), now=1002.3, limiter=limiter)[0] is None


def _take(directory, n, queue):
    limiter = ev.RateLimiter(directory, burst=10, rate=0.001)
    queue.put(sum(limiter.allow("node-2", now=5000.0) for _ in range(n)))


def test_rate_limit_is_shared_across_processes(tmp_path):
    """The reactor runs each runner call in a process of its own: 4 processes x 10 tries
    share one bucket of 10."""
    queue = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_take, args=(str(tmp_path), 10, queue))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert sum(queue.get(timeout=5) for _ in procs) == 10


def test_rate_limiter_survives_a_corrupt_bucket(tmp_path):
    limiter = ev.RateLimiter(str(tmp_path), burst=2, rate=1)
    assert limiter.allow("node-2", now=1.0)
    path = limiter._path("node-2")                      # pylint: disable=protected-access
    with open(path, "w") as fh:
        fh.write("{not json")
    assert limiter.allow("node-2", now=1.0)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


# ------------------------------------------------------------------ history
@pytest.mark.parametrize("name", ["../../etc/passwd", "pg-test/../x", "PG-TEST", "", None,
                                  "pg_test", "-pg", "pg-test\n", "a" * 100, 5])
def test_history_file_refuses_what_is_not_a_cluster_name(tmp_path, name):
    with pytest.raises(ValueError) as err:
        history.history_file(str(tmp_path), name)
    assert "is not a cluster name" in str(err.value)


def test_history_file_of_a_cluster():
    assert history.history_file("/var/cache/x", "pg-test") == "/var/cache/x/pg-test.jsonl"


def test_history_is_rotated_and_bounded(tmp_path):
    path = str(tmp_path / "hist" / "pg-test.jsonl")
    for i in range(200):
        history.append_jsonl(path, {"i": i, "pad": "x" * 80}, max_bytes=1000, keep=3)
    files = sorted(os.listdir(tmp_path / "hist"))
    assert files == ["pg-test.jsonl", "pg-test.jsonl.1", "pg-test.jsonl.2", "pg-test.jsonl.3",
                     "pg-test.jsonl.lock"]
    for name in files[:-1]:
        assert os.path.getsize(tmp_path / "hist" / name) <= 1000
        assert oct(os.stat(tmp_path / "hist" / name).st_mode & 0o777) == "0o600"
    newest = [e["i"] for e in history.read_jsonl(path, last=25, keep=3)]
    assert newest == list(range(175, 200))
    everything = [e["i"] for e in history.read_jsonl(path, last=10000, keep=3)]
    assert everything == list(range(200 - len(everything), 200)) and len(everything) < 50


def test_history_reader_skips_damaged_lines_and_missing_files(tmp_path):
    path = str(tmp_path / "pg-test.jsonl")
    assert history.read_jsonl(path) == []
    history.append_jsonl(path, {"i": 1})
    with open(path, "a") as fh:
        fh.write("{truncated\n[1, 2]\n")
    history.append_jsonl(path, {"i": 2})
    assert history.read_jsonl(path) == [{"i": 1}, {"i": 2}]
    assert history.read_jsonl(path, last=0) == []


def test_history_without_rotated_copies(tmp_path):
    path = str(tmp_path / "pg-test.jsonl")
    for i in range(30):
        history.append_jsonl(path, {"i": i}, max_bytes=50, keep=0)
    assert not os.path.exists(path + ".1") and os.path.getsize(path) <= 50
    kept = [e["i"] for e in history.read_jsonl(path, keep=0)]
    assert kept == list(range(30 - len(kept), 30)) and len(kept) < 6


def test_history_lines_are_json_of_the_entry(tmp_path):
    path = str(tmp_path / "pg-test.jsonl")
    history.append_jsonl(path, {"b": 1, "a": "caf\u00e9\nline"})
    with open(path) as fh:
        assert json.loads(fh.read().splitlines()[0]) == {"a": "caf\u00e9\nline", "b": 1}
