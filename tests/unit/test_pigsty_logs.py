"""_utils/pigsty_logs.py: the arguments of `salt-run pigsty.logs`, the files and the lines."""
import datetime
import json
import os

import pytest

import pigsty_logs as L

NOW = datetime.datetime(2026, 12, 2, 10, 0, 0, tzinfo=datetime.timezone.utc)
CLUSTERS = {"pg-test": {"pg-test-1": "node-1", "pg-test-2": "node-2"}, "pg-meta": {"pg-meta-1": "meta"}}


def test_since_takes_an_age_or_an_iso_time_in_utc():
    assert L.parse_since("10m", NOW) == NOW - datetime.timedelta(minutes=10)
    assert L.parse_since("2h", NOW) == NOW - datetime.timedelta(hours=2)
    assert L.parse_since("2026-12-02T09:00:00", NOW) == NOW - datetime.timedelta(hours=1)
    assert L.parse_since("2026-12-02T10:00:00+01:00", NOW) == NOW - datetime.timedelta(hours=1)


@pytest.mark.parametrize("value, words", [
    ("10", "expected an age"), ("-5m", "expected an age"), ("10 minutes; rm -rf /", "expected an age"),
    ("32d", "at most 31 days"), ("2027-01-01T00:00:00", "in the future"),
])
def test_a_bad_since_names_the_argument(value, words):
    with pytest.raises(L.LogsError) as err:
        L.parse_since(value, NOW)
    assert str(err.value).startswith("since:") and words in str(err.value)


def test_units_default_to_service_and_refuse_option_like_or_odd_names():
    assert L.parse_units(None) == []
    assert L.parse_units("patroni,pgbouncer.service") == ["patroni.service", "pgbouncer.service"]
    assert L.parse_units(["etcd"]) == ["etcd.service"]
    for bad in ("patroni --all", "a/b", "x" * 200):
        with pytest.raises(L.LogsError) as err:
            L.parse_units(bad)
        assert str(err.value).startswith("unit:")


def test_grep_and_limit_are_checked():
    assert L.parse_grep(None) is None and L.parse_grep("promot|demot").search("promoted")
    with pytest.raises(L.LogsError) as err:
        L.parse_grep("(")
    assert str(err.value).startswith("grep:")
    assert L.parse_limit("20") == 20
    for bad in (0, "x", 10001, None):
        with pytest.raises(L.LogsError) as err:
            L.parse_limit(bad)
        assert str(err.value).startswith("limit:")


def test_hosts_of_a_cluster_an_instance_or_everything():
    assert L.hosts_of(CLUSTERS, ["meta", "node-1", "node-2"], "pg-test") == ["node-1", "node-2"]
    assert L.hosts_of(CLUSTERS, ["meta", "node-1", "node-2"], "pg-test", "pg-test-2") == ["node-2"]
    assert L.hosts_of(CLUSTERS, ["node-2", "meta", "node-1"]) == ["meta", "node-1", "node-2"]
    with pytest.raises(L.LogsError, match="^cluster: 'pg-x' is not in the inventory"):
        L.hosts_of(CLUSTERS, [], "pg-x")
    with pytest.raises(L.LogsError, match="^ins: 'pg-meta-1' is not an instance of pg-test"):
        L.hosts_of(CLUSTERS, [], "pg-test", "pg-meta-1")
    with pytest.raises(L.LogsError, match="^ins: give the cluster too"):
        L.hosts_of(CLUSTERS, [], None, "pg-test-1")


def test_files_of_a_host_include_its_rotated_files_and_not_a_longer_name(tmp_path):
    for name in ("remote-node-1.journal", "remote-node-1@0001-0002.journal", "remote-node-10.journal",
                 "remote-node-2.journal~"):
        (tmp_path / name).write_text("")
    files, missing = L.files_of(["node-1", "node-2"], str(tmp_path))
    assert [os.path.basename(f) for f in files] == ["remote-node-1.journal", "remote-node-1@0001-0002.journal"]
    assert missing == ["node-2"]


def test_journalctl_gets_files_since_and_units_as_separate_arguments():
    argv = L.journalctl_argv(["/d/remote-node-1.journal"], NOW, ["patroni.service"])
    assert argv[0] == "journalctl" and "--output=json" in argv
    assert "--since=2026-12-02 10:00:00 UTC" in argv
    assert "--file=/d/remote-node-1.journal" in argv and "--unit=patroni.service" in argv


def _entry(us, host, ident, message, pid=7):
    return json.dumps({"__REALTIME_TIMESTAMP": str(us), "_HOSTNAME": host, "SYSLOG_IDENTIFIER": ident,
                       "_PID": str(pid), "MESSAGE": message})


def test_lines_are_formatted_filtered_and_limited_to_the_last_ones():
    base = int(NOW.timestamp() * 1e6)
    raw = [_entry(base + i * 1000, "node-%d" % (i % 2 + 1), "patroni", "line %d" % i) for i in range(6)]
    raw.insert(2, "not json")
    raw.insert(0, json.dumps({"__REALTIME_TIMESTAMP": str(base + 10000), "_HOSTNAME": "node-1",
                              "MESSAGE": list(b"bytes \xff here")}))     # newest, arrived first
    lines, matched = L.format_lines(raw, limit=3)
    assert matched == 7 and len(lines) == 3
    assert lines[0] == "2026-12-02T10:00:00.004Z node-1 patroni[7]: line 4"
    assert lines[-1].endswith("node-1 -: bytes \ufffd here")     # time order, not arrival order
    lines, matched = L.format_lines(raw, grep=L.parse_grep(r"line [13]"), limit=10)
    assert matched == 2 and [ln.split(": ")[1] for ln in lines] == ["line 1", "line 3"]


def test_a_multi_line_message_stays_on_one_line():
    lines, _ = L.format_lines([_entry(1, "node-1", "x", "a\nb")], limit=5)
    assert lines[0].endswith("x[7]: a | b")


def test_retention_parameters_are_validated_with_their_path():
    ok = {"log_retention_size": "1G", "log_retention_time": "15d"}
    assert L.problems(ok) == []
    bad = L.problems({"log_retention_size": "1 GB", "log_retention_time": "forever"})
    assert bad == ["pigsty:vars:log_retention_size: expected a size such as 500M or 1G, got '1 GB'",
                   "pigsty:vars:log_retention_time: expected a duration such as 12h, 15d or 4weeks, "
                   "got 'forever'"]
    assert L.vacuum_argv("1G", "15d", "/d") == ["journalctl", "--directory=/d", "--vacuum-size=1G",
                                                 "--vacuum-time=15d"]


def test_the_sink_is_the_first_meta_node_and_off_without_collection():
    gv = {"log_collect": True, "log_port": 19532}
    assert L.sink(["10.10.10.10", "10.10.10.9"], gv) == {"ip": "10.10.10.10", "port": 19532,
                                                         "url": "https://10.10.10.10:19532"}
    assert L.sink([], gv) is None
    assert L.sink(["10.10.10.10"], dict(gv, log_collect=False)) is None
