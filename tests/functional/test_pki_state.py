"""salt/node/pki.sls for real on this host, on the CA server: ``salt-call --local`` applies
the state with the repository's modules into a scratch directory (minion option
``pigsty_pki_dir``). The CA is created, the node certificate is signed under the node's own
policy, ``openssl verify`` accepts it, its names and usages are the contract's, the key is
0640 root:ssl-cert, a second apply changes nothing, and a certificate close to expiry is
renewed. Remote signing (a node asking the
CA server over the master): tests/functional/test_pki_remote.py (real daemons on loopback)
and tests/integration/test_security.py (the sandbox)."""
import grp
import json
import os
import stat
import subprocess
import sys

import pytest
import yaml

from pillar_fixture import REPO

import pigsty_pki

SALT_CALL = os.path.join(os.path.dirname(sys.executable), "salt-call")
INVENTORY = {"pigsty": {
    "nodes": {"meta": {"ip": "10.10.10.10", "meta": True}, "node-1": {"ip": "10.10.10.11"}},
    "clusters": {}}}


@pytest.fixture(scope="module")
def minion(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the pki state sets file owners and groups: run the functional tests as root")
    root = tmp_path_factory.mktemp("pki")
    pki_dir = str(root / "etc-pki" / "pigsty")     # its parent does not exist either
    (root / "pillar").mkdir()
    (root / "pillar" / "top.sls").write_text("base:\n  '*':\n    - pigsty\n")
    (root / "pillar" / "pigsty.sls").write_text(yaml.safe_dump(INVENTORY))
    conf = {
        "id": "meta", "file_client": "local", "master_type": "disable",
        "root_dir": str(root / "root"), "pki_dir": str(root / "root" / "minion-pki"),
        "cachedir": str(root / "cache"), "log_file": str(root / "minion.log"),
        "file_roots": {"base": [os.path.join(REPO, "salt")]},
        "pillar_roots": {"base": [str(root / "pillar")]},
        "module_dirs": [os.path.join(REPO, "_modules")],
        "utils_dirs": [os.path.join(REPO, "_utils")],
        "pigsty_pki_dir": pki_dir,
        # what the ext_pillar gives the CA server in a deployment, here as minion config
        # (x509_v2 reads the policies from pillar, then from config)
        "x509_signing_policies": pigsty_pki.signing_policies(INVENTORY["pigsty"], pki_dir),
    }
    (root / "minion").write_text(yaml.safe_dump(conf))
    return {"config_dir": str(root), "paths": pigsty_pki.paths(pki_dir)}


def apply(minion):
    res = subprocess.run([SALT_CALL, "--local", "-c", minion["config_dir"], "--out=json",
                          "--retcode-passthrough", "state.apply", "node.pki"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return json.loads(res.stdout)["local"]


def openssl(*args):
    res = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def applied(minion):
    first = apply(minion)
    second = apply(minion)
    return first, second


def _by_id(result):
    return {key.split("_|-")[1]: value for key, value in result.items()}


def test_first_apply_creates_the_ca_and_the_node_certificate(applied):
    first = _by_id(applied[0])
    assert all(step["result"] for step in first.values()), first
    for sid in ("pki-ca-key", "pki-ca-master-cert", "pki-ca-cert", "pki-node-key", "pki-node-cert"):
        assert first[sid]["changes"], sid


def test_second_apply_changes_nothing(applied):
    second = _by_id(applied[1])
    assert all(step["result"] for step in second.values()), second
    assert {sid: step["changes"] for sid, step in second.items() if step["changes"]} == {}


def test_the_node_certificate_verifies_against_the_ca(applied, minion):
    p = minion["paths"]
    assert openssl("verify", "-CAfile", p["ca_crt"], p["node_crt"]).strip().endswith(": OK")
    with open(p["ca_crt"]) as a, open(p["ca_crt_master"]) as b:
        assert a.read() == b.read()


def test_a_certificate_from_another_ca_does_not_verify(applied, minion, tmp_path):
    other = str(tmp_path / "other.crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "o.key"),
            "-subj", "/CN=other", "-days", "1", "-out", other)
    res = subprocess.run(["openssl", "verify", "-CAfile", other, minion["paths"]["node_crt"]],
                         capture_output=True, text=True)
    assert res.returncode != 0


def test_names_usages_and_the_ca_flags(applied, minion):
    p = minion["paths"]
    text = openssl("x509", "-in", p["node_crt"], "-noout", "-text")
    assert "Subject: CN = meta" in text
    # a meta node: its own names, then the portal's domains (Nginx serves them over HTTPS);
    # the second apply above changes nothing with them
    assert ("DNS:meta, IP Address:10.10.10.10, IP Address:127.0.0.1, DNS:pigsty, DNS:p.pigsty, "
            "DNS:a.pigsty, DNS:g.pigsty, DNS:h.pigsty") in text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
    assert "CA:FALSE" in text
    ca = openssl("x509", "-in", p["ca_crt"], "-noout", "-text")
    assert "CA:TRUE" in ca and "Subject: CN = Pigsty CA" in ca
    # lifetimes: the node's from its policy, the CA's from the state
    import datetime

    def days(path):
        out = openssl("x509", "-in", path, "-noout", "-startdate", "-enddate").splitlines()
        start, end = (datetime.datetime.strptime(line.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
                      for line in out)
        return round((end - start).total_seconds() / 86400)
    assert days(p["node_crt"]) == pigsty_pki.NODE_DAYS_VALID
    assert days(p["ca_crt"]) == pigsty_pki.CA_DAYS_VALID
    # the key matches the certificate
    assert openssl("x509", "-in", p["node_crt"], "-noout", "-pubkey") == \
        openssl("pkey", "-in", p["node_key"], "-pubout")


def test_modes_and_owners(applied, minion):
    p = minion["paths"]

    def mode_owner(path):
        st = os.stat(path)
        return oct(stat.S_IMODE(st.st_mode)), st.st_uid, grp.getgrgid(st.st_gid).gr_name

    assert mode_owner(p["node_key"]) == ("0o640", 0, "ssl-cert")
    assert mode_owner(p["node_crt"])[:2] == ("0o644", 0)
    assert mode_owner(p["ca_crt"])[:2] == ("0o644", 0)
    assert mode_owner(p["ca_key"]) == ("0o600", 0, "root")
    assert mode_owner(p["ca_dir"])[0] == "0o700"


def test_a_certificate_close_to_expiry_is_renewed(applied, minion, tmp_path):
    """days_remaining: a node certificate with 10 days left (fewer than 30) is replaced by
    the next apply with a full-length one, from the same key."""
    p = minion["paths"]
    csr = str(tmp_path / "node.csr")
    openssl("req", "-new", "-key", p["node_key"], "-subj", "/CN=meta", "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", p["ca_crt_master"], "-CAkey", p["ca_key"],
            "-set_serial", "7", "-days", "10", "-out", p["node_crt"])
    res = subprocess.run(["openssl", "x509", "-in", p["node_crt"], "-noout", "-checkend", str(20 * 86400)],
                         capture_output=True, text=True)
    assert res.returncode != 0                       # it does expire within 20 days
    changed = _by_id(apply(minion))
    assert changed["pki-node-cert"]["changes"] and not changed["pki-ca-master-cert"]["changes"]
    res = subprocess.run(["openssl", "x509", "-in", p["node_crt"], "-noout", "-checkend", str(300 * 86400)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout              # renewed: valid for more than 300 days
    assert openssl("verify", "-CAfile", p["ca_crt"], p["node_crt"]).strip().endswith(": OK")
