"""The Pigsty CA's names and policies (_utils/pigsty_pki.py), the ext_pillar that gives the
policies to the CA server only, and salt/node/pki.sls rendered for the CA server and for
another node (Salt's functions stubbed). The state runs for real in
tests/functional/test_pki_state.py."""
import json
import os

import jinja2
import pytest
import yaml

import pigsty_pki
from loader import load_module
from pillar_fixture import REPO, default_pillar

INV = default_pillar()["pigsty"]


def load_ext_pillar():
    return load_module("_pillar/pigsty_pki.py", "pigsty_pki_ext_pillar", opts={"id": "meta_master"})


def test_the_ca_server_is_the_first_meta_node():
    assert pigsty_pki.ca_server(INV) == "meta"
    inv = {"nodes": {"m2": {"ip": "10.0.0.2", "meta": True}, "m1": {"ip": "10.0.0.1", "meta": True},
                     "n": {"ip": "10.0.0.3"}}}
    assert pigsty_pki.ca_server(inv) == "m1"
    assert pigsty_pki.ca_server({"nodes": {"n": {"ip": "10.0.0.3"}}}) is None


def test_a_policy_binds_the_names_to_the_requesting_minion():
    policies = pigsty_pki.signing_policies(INV)
    assert sorted(policies) == ["pigsty-etcd-meta", "pigsty-etcd-node-1", "pigsty-etcd-node-2",
                                "pigsty-node-meta", "pigsty-node-node-1", "pigsty-node-node-2",
                                "pigsty-node-node-3"]
    pol = policies["pigsty-node-node-2"]
    assert pol["minions"] == "node-2"          # no other minion may use it
    assert pol["CN"] == "node-2"
    assert pol["subjectAltName"] == "DNS:node-2, IP:10.10.10.12, IP:127.0.0.1"
    assert pol["signing_private_key"] == "/etc/pki/pigsty/ca/ca.key"
    assert pol["signing_cert"] == "/etc/pki/pigsty/ca/ca.crt"
    assert pol["extendedKeyUsage"] == "serverAuth, clientAuth"
    assert pol["basicConstraints"] == "critical, CA:false"
    assert 0 < pigsty_pki.NODE_DAYS_REMAINING < pol["days_valid"]


def test_a_meta_nodes_certificate_also_names_the_portals_domains():
    # after its own names (what database nodes and clients check), the domains Nginx serves
    assert pigsty_pki.node_names(INV, "meta")["subjectAltName"] == (
        "DNS:meta, IP:10.10.10.10, IP:127.0.0.1, DNS:pigsty, DNS:p.pigsty, DNS:a.pigsty, "
        "DNS:g.pigsty, DNS:h.pigsty")
    assert pigsty_pki.signing_policies(INV)["pigsty-node-meta"]["subjectAltName"] == \
        pigsty_pki.node_names(INV, "meta")["subjectAltName"]
    # a database node's does not
    assert "pigsty" not in pigsty_pki.node_names(INV, "node-1")["subjectAltName"].replace("node-1", "")


def test_the_portal_domains_follow_infra_portal_without_duplicates():
    inv = json.loads(json.dumps(INV))
    inv["vars"]["infra_portal"] = {"home": {"domain": "ops.example.org"},
                                   "prometheus": {"domain": "prom.example.org"},
                                   "alertmanager": {"domain": "prom.example.org"},
                                   "custom": {"domain": "not-served.example.org"}}
    san = pigsty_pki.node_names(inv, "meta")["subjectAltName"]
    assert san.endswith("IP:127.0.0.1, DNS:ops.example.org, DNS:prom.example.org"), san
    # a domain that is no host name is refused, naming the field (it would inject names)
    inv["vars"]["infra_portal"]["home"] = {"domain": "x.pigsty, IP:1.2.3.4"}
    with pytest.raises(ValueError) as err:
        pigsty_pki.node_names(inv, "meta")
    assert "infra_portal:home:domain" in str(err.value)


def test_only_the_ca_server_receives_the_policies():
    mod = load_ext_pillar()
    meta = mod.ext_pillar("meta", default_pillar(clusters=["pg-meta"]))
    assert sorted(meta["x509_signing_policies"]) == sorted(pigsty_pki.signing_policies(INV))
    assert mod.ext_pillar("node-1", default_pillar(clusters=["pg-test"])) == {}
    assert mod.ext_pillar("meta", {}) == {}                   # not a Pigsty minion


def test_a_node_without_a_meta_node_gets_a_clear_error():
    with pytest.raises(ValueError, match="no meta node"):
        pigsty_pki.node_request({"nodes": {"n": {"ip": "10.0.0.3"}}}, "n")
    with pytest.raises(ValueError, match="pigsty:nodes:ghost"):
        pigsty_pki.node_request(INV, "ghost")


CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def render(minion_id):
    with open(os.path.join(REPO, "salt", "node", "pki.sls")) as fh:
        text = fh.read()
    asked = []

    def get_signing_policy(name, ca_server=None):
        asked.append((name, ca_server))
        return {"signing_cert": CA_PEM}

    salt = {"pigsty_pki.request": lambda: pigsty_pki.node_request(INV, minion_id),
            "x509.get_signing_policy": get_signing_policy}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["json"] = json.dumps                     # Salt's filter
    out = env.from_string(text).render(salt=salt)
    return yaml.safe_load(out), asked


def args(state, sid):
    (fun, items), = state[sid].items()
    merged = {}
    for item in items:
        if isinstance(item, dict):
            merged.update(item)
    return fun, merged


def test_the_ca_server_creates_the_ca_and_signs_its_own_certificate_locally():
    state, asked = render("meta")
    assert asked == []
    fun, key = args(state, "pki-ca-key")
    assert (fun, key["name"], key["mode"], key["user"]) == (
        "x509.private_key_managed", "/etc/pki/pigsty/ca/ca.key", "0600", "root")
    fun, ca = args(state, "pki-ca-master-cert")
    assert ca["basicConstraints"].startswith("critical, CA:true")
    fun, copy = args(state, "pki-ca-cert")
    assert (fun, copy["name"], copy["text"]) == ("x509.pem_managed", "/etc/pki/pigsty/ca.crt",
                                                  "/etc/pki/pigsty/ca/ca.crt")
    fun, cert = args(state, "pki-node-cert")
    assert fun == "x509.certificate_managed" and "ca_server" not in cert
    assert cert["signing_policy"] == "pigsty-node-meta"


def test_another_node_asks_the_ca_server_under_its_own_policy():
    state, asked = render("node-1")
    assert asked == [("pigsty-node-node-1", "meta")]
    assert not any(sid.startswith("pki-ca-") and sid != "pki-ca-cert" for sid in state)
    fun, ca = args(state, "pki-ca-cert")
    assert (fun, ca["text"], ca["mode"]) == ("x509.pem_managed", CA_PEM, "0644")
    fun, key = args(state, "pki-node-key")
    assert (key["name"], key["mode"], key["user"], key["group"]) == (
        "/etc/pki/pigsty/node.key", "0640", "root", "ssl-cert")
    fun, cert = args(state, "pki-node-cert")
    policy = pigsty_pki.node_policy(INV, "node-1")
    assert (cert["ca_server"], cert["signing_policy"]) == ("meta", "pigsty-node-node-1")
    # it asks for exactly what its policy fixes, so the state compares like with like
    assert (cert["CN"], cert["subjectAltName"]) == (policy["CN"], policy["subjectAltName"])
    assert cert["days_remaining"] == pigsty_pki.NODE_DAYS_REMAINING
    assert {"x509": "pki-node-key"} in cert["require"] and {"x509": "pki-ca-cert"} in cert["require"]


def test_the_peer_config_allows_only_the_signing_function():
    with open(os.path.join(REPO, "master.d", "pki.conf")) as fh:
        conf = yaml.safe_load(fh)
    assert conf == {"peer": {".*": ["x509.sign_remote_certificate"]}}
    with open(os.path.join(REPO, "master.d", "pigsty.conf")) as fh:
        assert {"pigsty_pki": {}} in yaml.safe_load(fh)["ext_pillar"]
