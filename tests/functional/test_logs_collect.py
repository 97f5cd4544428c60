"""Log collection for real on this host: systemd-journal-upload sends a node's journal to
systemd-journal-remote over HTTPS on loopback, both with the options salt/node/logs.sls and
salt/infra/logs.sls configure (node certificate of node.pki, the Pigsty CA, split by
host); then `pigsty.logs`'s own code (_utils/pigsty_logs.py) reads the received files back
with the real journalctl. The sender is filed under its address (Debian 12's journal-remote
cannot check client certificates); the client refuses a server it cannot verify, and the
sink refuses plain HTTP. (The services themselves run in the sandbox:
tests/integration/test_observability.py.)"""
import os
import shutil
import signal
import subprocess
import time

import pytest

import pigsty_logs
from pki_local import client_cert, make_node_pki, stranger_ca
from scripted_http import free_port

REMOTE = "/lib/systemd/systemd-journal-remote"
UPLOAD = "/lib/systemd/systemd-journal-upload"

pytestmark = pytest.mark.skipif(not (os.path.exists(REMOTE) and shutil.which("journalctl")),
                                reason="systemd-journal-remote is not installed (tests/run.sh installs it)")


def _export(host, entries, now):
    out = []
    for i, (age_s, unit, message) in enumerate(entries):
        us = now - int(age_s * 1e6)
        out.append("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"
                   "_HOSTNAME=%s\n_SYSTEMD_UNIT=%s\nSYSLOG_IDENTIFIER=%s\n_PID=%d\nMESSAGE=%s\n\n"
                   % (us, us, host, unit, unit.split(".")[0], 100 + i, message))
    return "".join(out).encode()


def _journal(path, host, entries, now):
    res = subprocess.run([REMOTE, "--output=%s" % path, "-"], input=_export(host, entries, now),
                         capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("logs"))
    paths = make_node_pki(os.path.join(base, "meta"), "127.0.0.1")
    out = os.path.join(base, "remote")
    os.makedirs(out)
    port = free_port()
    proc = subprocess.Popen([REMOTE, "--listen-https=127.0.0.1:%d" % port, "--key=%s" % paths["node_key"],
                             "--cert=%s" % paths["node_crt"], "--split-mode=host", "--output=%s/" % out],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if subprocess.run(["ss", "-ltn", "sport = :%d" % port], capture_output=True,
                              text=True).stdout.count("LISTEN"):
                break
            time.sleep(0.2)
        else:
            pytest.fail("journal-remote did not listen on %d" % port)
        yield {"base": base, "paths": paths, "out": out, "url": "https://127.0.0.1:%d" % port}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def _upload(sink, journal, cert, key, trust=None):
    return subprocess.run([UPLOAD, "--url=%s" % sink["url"], "--key=%s" % key, "--cert=%s" % cert,
                           "--trust=%s" % (trust or sink["paths"]["ca_crt"]), "--file=%s" % journal,
                           "--follow=no"], capture_output=True, text=True, timeout=60)


def _received(sink, host, wait=15):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        files, missing = pigsty_logs.files_of([host], sink["out"])
        if files:
            return files
        time.sleep(0.2)
    return []


def test_a_node_uploads_over_tls_and_its_logs_come_back_merged_in_time_order(sink):
    now = int(time.time() * 1e6)
    src = os.path.join(sink["base"], "src")
    os.makedirs(src)
    # two journals of the node (e.g. before and after a rotation), uploaded one after the other
    _journal(os.path.join(src, "a.journal"), "node-1",
             [(50, "patroni.service", "first"), (30, "pgbouncer.service", "third")], now)
    _journal(os.path.join(src, "b.journal"), "node-1",
             [(40, "patroni.service", "second"), (20, "patroni.service", "promoted self to leader")], now)
    crt, key = client_cert(sink["paths"], "node-1", os.path.join(sink["base"], "clients"))
    for name in ("a", "b"):
        res = _upload(sink, os.path.join(src, "%s.journal" % name), crt, key)
        assert res.returncode == 0, res.stderr
    # one file per sender, named after its address
    files = _received(sink, "127.0.0.1")
    assert [os.path.basename(f) for f in files] == ["remote-127.0.0.1.journal"]
    since = pigsty_logs.parse_since("10m")
    files, missing = pigsty_logs.files_of(["127.0.0.1", "10.10.10.13"], sink["out"])
    assert missing == ["10.10.10.13"]
    res = subprocess.run(pigsty_logs.journalctl_argv(files, since), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines, matched = pigsty_logs.format_lines(res.stdout.splitlines(), limit=100)
    assert [ln.split(": ", 1)[1] for ln in lines] == ["first", "second", "third", "promoted self to leader"]
    assert lines[0].split()[1:3] == ["node-1", "patroni[100]:"]
    # a unit and a pattern
    res = subprocess.run(pigsty_logs.journalctl_argv(files, since, ["patroni.service"]), capture_output=True,
                         text=True, timeout=60)
    lines, _ = pigsty_logs.format_lines(res.stdout.splitlines(), grep=pigsty_logs.parse_grep("promot"), limit=10)
    assert len(lines) == 1 and lines[0].endswith("node-1 patroni[101]: promoted self to leader")
    assert "--since=" in " ".join(pigsty_logs.journalctl_argv(files, since))


def test_the_client_refuses_a_server_it_cannot_verify(sink):
    now = int(time.time() * 1e6)
    src = os.path.join(sink["base"], "src-cautious")
    os.makedirs(src)
    _journal(os.path.join(src, "c.journal"), "node-1", [(5, "patroni.service", "must not arrive")], now)
    crt, key = client_cert(sink["paths"], "node-1", os.path.join(sink["base"], "clients"))
    other_ca, _ = stranger_ca(os.path.join(sink["base"], "other"))
    res = _upload(sink, os.path.join(src, "c.journal"), crt, key, trust=other_ca)
    assert res.returncode != 0
    files, _ = pigsty_logs.files_of(["127.0.0.1"], sink["out"])
    res = subprocess.run(pigsty_logs.journalctl_argv(files, pigsty_logs.parse_since("10m")),
                         capture_output=True, text=True, timeout=60) if files else None
    assert res is None or "must not arrive" not in res.stdout


def test_the_sink_speaks_no_plain_http(sink):
    url = sink["url"].replace("https://", "http://")
    res = subprocess.run(["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                          "-H", "Content-Type: application/vnd.fdo.journal", "--data-binary", "MESSAGE=x\n\n",
                          url + "/upload"], capture_output=True, text=True, timeout=30)
    assert res.stdout.strip() in ("000", "400") and res.stdout.strip() != "202", (res.stdout, res.stderr)
