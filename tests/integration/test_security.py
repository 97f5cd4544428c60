"""Security in the sandbox (issue 12): the Pigsty CA and node certificates (salt/node/pki.sls,
remote signing over the master) and Patroni's REST API over HTTPS with authentication."""
import json
import subprocess

import pytest

from conftest import node_exec, salt_json

NODES = {"meta": "10.10.10.10", "node-1": "10.10.10.11", "node-2": "10.10.10.12",
         "node-3": "10.10.10.13"}
PKI = "/etc/pki/pigsty"


def sh(node, script, check=True):
    return node_exec(node, "sh", "-c", script, timeout=120, check=check)


# ------------------------------------------------------------------ the CA and node certificates
@pytest.mark.parametrize("node", sorted(NODES))
def test_every_node_has_a_certificate_signed_by_the_ca_with_its_names(sandbox, node):
    out = sh(node, "openssl verify -CAfile %s/ca.crt %s/node.crt" % (PKI, PKI)).stdout
    assert out.strip().endswith(": OK"), out
    text = sh(node, "openssl x509 -in %s/node.crt -noout -subject -ext subjectAltName,extendedKeyUsage"
              % PKI).stdout
    assert "CN = %s" % node in text or "CN=%s" % node in text, text
    assert "DNS:%s, IP Address:%s, IP Address:127.0.0.1" % (node, NODES[node]) in text, text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text, text
    assert sh(node, "stat -c '%%a %%U %%G' %s/node.key" % PKI).stdout.split() == ["640", "root", "ssl-cert"]
    assert sh(node, "stat -c '%%a %%U' %s/ca.crt %s/node.crt" % (PKI, PKI)).stdout.split() == \
        ["644", "root", "644", "root"]


def test_the_ca_key_exists_on_the_ca_server_only_and_every_node_has_its_certificate(sandbox):
    assert sh("meta", "stat -c '%%a %%U' %s/ca/ca.key" % PKI).stdout.split() == ["600", "root"]
    ca = sh("meta", "cat %s/ca/ca.crt" % PKI).stdout
    for node in ("node-1", "node-2", "node-3"):
        assert sh(node, "test -e %s/ca" % PKI, check=False).returncode != 0, node
        assert sh(node, "cat %s/ca.crt" % PKI).stdout == ca, node


def test_a_second_apply_of_node_pki_changes_nothing(sandbox):
    ret, rc = salt_json("node-2", "state.apply", "node.pki")
    assert rc == 0, ret
    steps = ret["node-2"]
    assert all(step["result"] for step in steps.values()), steps
    assert {sid: step["changes"] for sid, step in steps.items() if step["changes"]} == {}


def salt_call(node, *args):
    res = node_exec(node, "salt-call", "--out=json", *args, timeout=180)
    try:
        return json.loads(res.stdout)["local"], res
    except (ValueError, KeyError):
        return None, res


def test_a_node_cannot_use_another_nodes_policy(sandbox):
    ret, res = salt_call("node-2", "x509.create_certificate", "ca_server=meta",
                         "signing_policy=pigsty-node-node-1", "private_key=%s/node.key" % PKI)
    text = json.dumps(ret) + res.stdout + res.stderr
    assert "BEGIN CERTIFICATE" not in text
    assert "not permitted" in text, text


def test_the_policy_fixes_the_names_whatever_the_node_asks_for(sandbox):
    ret, res = salt_call("node-2", "x509.create_certificate", "ca_server=meta",
                         "signing_policy=pigsty-node-node-2", "private_key=%s/node.key" % PKI,
                         "CN=meta", "subjectAltName=DNS:meta, IP:10.10.10.10")
    assert ret and "BEGIN CERTIFICATE" in ret, res.stdout + res.stderr
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"],
                         input=ret, capture_output=True, text=True, check=True).stdout
    assert "CN = node-2" in out and "DNS:node-2, IP Address:10.10.10.12" in out, out
    assert "10.10.10.10" not in out, out


def test_peers_may_call_only_the_signing_function(sandbox):
    ret, res = salt_call("node-2", "publish.publish", "meta", "cmd.run", "id")
    assert not ret, res.stdout        # the master refuses the publication: no return
