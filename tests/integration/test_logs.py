"""Logs collected on meta, for real in the sandbox: every node's systemd-journal-upload sends
its journal to meta's systemd-journal-remote over HTTPS, and `salt-run pigsty.logs` prints a
cluster's logs merged in time order, filtered by instance, unit and pattern; bad arguments
are refused naming the argument. Traffic goes to 10.10.10.0/24 only; every wait is bounded."""
import re
import uuid

from sandbox_cli import node_exec, wait_for

NODES = {"node-1": "10.10.10.11", "node-2": "10.10.10.12", "node-3": "10.10.10.13"}
LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\S+) (\S+): (.*)$")


def logs(*args):
    res = node_exec("meta", "salt-run", "--out=txt", "pigsty.logs", *args, timeout=180)
    return res


def lines_of(res):
    """The log lines of the runner's text output (after 'salt-run --out=txt' prefixes)."""
    out = []
    for raw in res.stdout.splitlines():
        m = LINE_RE.search(raw.strip())
        if m:
            out.append((raw.strip()[:24], m.group(1), m.group(2), m.group(3)))
    return out


def test_every_node_uploads_over_https_and_the_files_are_per_address(sandbox):
    for node, ip in NODES.items():
        state = node_exec(node, "systemctl", "is-active", "systemd-journal-upload").stdout.strip()
        assert state == "active", (node, state)
    # a marker written on each node arrives on meta, in that node's file
    marker = "pigsty-logs-probe-%s" % uuid.uuid4().hex[:12]
    for node in NODES:
        node_exec(node, "logger", "-t", "pigsty-probe", "%s from %s" % (marker, node), check=True)

    def arrived():
        res = logs("cluster=pg-test", "since=10m", "grep=%s" % marker)
        got = {line[1] for line in lines_of(res) if marker in line[3]}
        return got == set(NODES) and res
    res = wait_for(arrived, 90, interval=3)
    assert "# logs of node-1, node-2, node-3" in res.stdout
    listing = node_exec("meta", "ls", "/var/log/journal/remote").stdout.split()
    for ip in NODES.values():
        assert "remote-%s.journal" % ip in listing, listing
    # plain HTTP is not accepted on the sink
    code = node_exec("node-1", "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                     "http://10.10.10.10:19532/upload").stdout.strip()
    assert code in ("000", "400"), code


def test_logs_of_one_instance_and_unit_in_time_order(sandbox):
    res = logs("cluster=pg-test", "ins=pg-test-2", "unit=patroni", "since=30m", "limit=50")
    assert res.returncode == 0, res.stdout + res.stderr
    lines = lines_of(res)
    assert lines, res.stdout
    assert {line[1] for line in lines} == {"node-2"}
    assert all(line[2].startswith("patroni") for line in lines), lines[:5]
    stamps = [line[0] for line in lines]
    assert stamps == sorted(stamps)
    assert len(lines) <= 50


def test_bad_arguments_are_refused_naming_them(sandbox):
    for args, words in ((("cluster=pg-nope",), "cluster: 'pg-nope' is not in the inventory"),
                        (("cluster=pg-test", "ins=pg-meta-1"), "ins: 'pg-meta-1' is not an instance of pg-test"),
                        (("cluster=pg-test", "since=yesterday-ish"), "since: expected an age"),
                        (("cluster=pg-test", "grep=("), "grep: not a valid regular expression"),
                        (("cluster=pg-test", "limit=0"), "limit: expected a number of lines")):
        res = logs(*args)
        assert res.returncode != 0 and words in res.stdout + res.stderr, (args, res.stdout, res.stderr)
