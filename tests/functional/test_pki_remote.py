"""Remote signing for real, on loopback: a Salt master with the repository's peer rule
(master.d/pki.conf) and its ext_pillar pigsty_pki, the CA server's minion daemon ("meta")
and another minion ("node-1") that applies salt/node/pki.sls with salt-call. node-1's
certificate is signed by meta's CA through the master (its key never leaves meta's
directory), under node-1's own policy; node-1 cannot use meta's policy, and the policy
fixes the names whatever node-1 asks for. Every daemon runs from the Salt venv, as root,
under a scratch directory, on free loopback ports, and is stopped at the end."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from local_http import free_port
from pillar_fixture import REPO

BIN = os.path.dirname(sys.executable)
INVENTORY = {"pigsty": {
    "nodes": {"meta": {"ip": "10.10.10.10", "meta": True}, "node-1": {"ip": "10.10.10.11"}},
    "clusters": {}}}


def write(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        yaml.safe_dump(doc, fh)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the pki state sets file owners and groups: run the functional tests as root")
    root = str(tmp_path_factory.mktemp("salt"))
    pub, ret = free_port(), free_port()
    with open(os.path.join(REPO, "master.d", "pki.conf")) as fh:
        peer = yaml.safe_load(fh)["peer"]
    write(os.path.join(root, "pillar", "pigsty.sls"), INVENTORY)
    with open(os.path.join(root, "pillar", "top.sls"), "w") as fh:
        fh.write("base:\n  '*':\n    - pigsty\n")
    pki = {m: os.path.join(root, "pki-" + m) for m in ("meta", "node-1")}
    master = {
        "interface": "127.0.0.1", "publish_port": pub, "ret_port": ret, "user": "root",
        "root_dir": os.path.join(root, "m"), "pki_dir": os.path.join(root, "m", "pki"),
        "cachedir": os.path.join(root, "m", "cache"), "sock_dir": os.path.join(root, "m", "sock"),
        "log_file": os.path.join(root, "master.log"), "log_level_logfile": "info",
        "auto_accept": True, "worker_threads": 2, "timeout": 10,
        "file_roots": {"base": [os.path.join(REPO, "salt")]},
        "pillar_roots": {"base": [os.path.join(root, "pillar")]},
        "pillar_dirs": [os.path.join(REPO, "_pillar")], "utils_dirs": [os.path.join(REPO, "_utils")],
        "ext_pillar": [{"pigsty_pki": {"pki_dir": pki["meta"]}}],
        "peer": peer,                                   # the repository's rule, as it is
    }
    write(os.path.join(root, "master"), master)
    for mid in ("meta", "node-1"):
        d = os.path.join(root, mid)
        write(os.path.join(d, "minion"), {
            "id": mid, "master": "127.0.0.1", "master_port": ret, "publish_port": pub,
            "user": "root", "root_dir": d, "pki_dir": os.path.join(d, "pki"),
            "cachedir": os.path.join(d, "cache"), "sock_dir": os.path.join(d, "sock"),
            "log_file": os.path.join(root, mid + ".log"), "log_level_logfile": "info",
            "module_dirs": [os.path.join(REPO, "_modules")], "utils_dirs": [os.path.join(REPO, "_utils")],
            "pigsty_pki_dir": pki[mid], "acceptance_wait_time": 1, "ipv6": False,
            "enable_fqdns_grains": False})
    procs = []

    def daemon(*cmd):
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        procs.append(proc)
        return proc

    try:
        daemon(os.path.join(BIN, "salt-master"), "-c", root, "-l", "quiet")
        daemon(os.path.join(BIN, "salt-minion"), "-c", os.path.join(root, "meta"), "-l", "quiet")
        yield {"root": root, "pki": pki, "procs": procs}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def salt_call(site, mid, *args, timeout=180):
    res = subprocess.run([os.path.join(BIN, "salt-call"), "-c", os.path.join(site["root"], mid),
                          "--out=json", "--retcode-passthrough", "-l", "quiet"] + list(args),
                         capture_output=True, text=True, timeout=timeout)
    try:
        return json.loads(res.stdout)["local"], res
    except (ValueError, KeyError):
        return None, res


def wait_meta_answers(site, timeout=90):
    """The meta minion daemon is connected: the master can publish to it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in site["procs"]:
            if proc.poll() is not None:
                pytest.fail("%s exited: %s" % (proc.args[0], proc.stderr.read().decode()[-2000:]))
        res = subprocess.run([os.path.join(BIN, "salt"), "-c", site["root"], "--out=json", "-t", "5",
                              "meta", "test.ping"], capture_output=True, text=True, timeout=60)
        if '"meta": true' in res.stdout:
            return
        time.sleep(1)
    pytest.fail("the meta minion does not answer")


def openssl(*args):
    res = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def signed(site):
    wait_meta_answers(site)
    # the CA server first (it signs its own certificate locally), then node-1 over the master
    ret, res = salt_call(site, "meta", "state.apply", "node.pki")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # the meta daemon's in-memory pillar carries the policies (orch.site refreshes it)
    subprocess.run([os.path.join(BIN, "salt"), "-c", site["root"], "meta", "saltutil.refresh_pillar",
                    "wait=True"], capture_output=True, timeout=60)
    first, res = salt_call(site, "node-1", "state.apply", "node.pki")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    second, res = salt_call(site, "node-1", "state.apply", "node.pki")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return first, second


def by_id(result):
    return {key.split("_|-")[1]: value for key, value in result.items()}


def test_node_1_gets_a_certificate_from_metas_ca_over_the_master(site, signed):
    first = by_id(signed[0])
    assert first["pki-node-cert"]["changes"] and first["pki-ca-cert"]["changes"]
    n1, meta = site["pki"]["node-1"], site["pki"]["meta"]
    assert not os.path.exists(os.path.join(n1, "ca"))            # no CA key on node-1
    with open(os.path.join(n1, "ca.crt")) as a, open(os.path.join(meta, "ca", "ca.crt")) as b:
        assert a.read() == b.read()
    assert openssl("verify", "-CAfile", os.path.join(meta, "ca", "ca.crt"),
                   os.path.join(n1, "node.crt")).strip().endswith(": OK")
    text = openssl("x509", "-in", os.path.join(n1, "node.crt"), "-noout", "-subject", "-ext", "subjectAltName")
    assert "CN = node-1" in text and "DNS:node-1, IP Address:10.10.10.11, IP Address:127.0.0.1" in text


def test_a_second_apply_on_node_1_changes_nothing(signed):
    second = by_id(signed[1])
    assert {sid: st["changes"] for sid, st in second.items() if st["changes"]} == {}


def test_node_1_cannot_use_metas_policy(site, signed):
    ret, res = salt_call(site, "node-1", "x509.create_certificate", "ca_server=meta",
                         "signing_policy=pigsty-node-meta",
                         "private_key=%s" % os.path.join(site["pki"]["node-1"], "node.key"))
    text = json.dumps(ret) + res.stdout + res.stderr
    assert res.returncode != 0 and "not permitted" in text and "BEGIN CERTIFICATE" not in text


def test_the_policy_fixes_the_names_whatever_node_1_asks_for(site, signed):
    ret, res = salt_call(site, "node-1", "x509.create_certificate", "ca_server=meta",
                         "signing_policy=pigsty-node-node-1", "CN=meta",
                         "subjectAltName=DNS:meta, IP:10.10.10.10",
                         "private_key=%s" % os.path.join(site["pki"]["node-1"], "node.key"))
    assert res.returncode == 0 and "BEGIN CERTIFICATE" in ret, res.stdout + res.stderr
    text = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"], input=ret,
                          capture_output=True, text=True, check=True).stdout
    assert "CN = node-1" in text and "10.10.10.10" not in text and "DNS:meta" not in text


def test_peers_may_not_run_anything_else_on_meta(site, signed):
    ret, res = salt_call(site, "node-1", "publish.publish", "meta", "cmd.run", "id")
    assert not ret, res.stdout
