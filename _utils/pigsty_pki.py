"""The Pigsty CA: where it lives, what each node's certificate says, the signing policies.

The CA (key and self-signed certificate) lives on one meta node, the CA server: the first
meta node by minion id. Its key never leaves that node. Every node, the CA server included,
gets ``node.crt`` signed under a policy of its own, ``pigsty-node-<minion id>``, that only
that minion may use (the policy's ``minions``) and that fixes the certificate's names: a
minion can obtain a certificate for its own id and address only, whatever it asks for.

Paths (the contract other roles build on): PKI_DIR/ca.crt, PKI_DIR/node.crt,
PKI_DIR/node.key, and on the CA server PKI_DIR/ca/ca.key and PKI_DIR/ca/ca.crt.

Pure functions of the inventory: used by the ext_pillar on the master (the policies the CA
server receives) and by the execution module on a minion (what its state asks for).
"""
import posixpath

import pigsty_defaults as D
import pigsty_model
import pigsty_syntax

PKI_DIR = "/etc/pki/pigsty"
SSL_GROUP = "ssl-cert"          # Debian's group for readers of private keys (postgres is in it)
CA_CN = "Pigsty CA"
CA_DAYS_VALID = 3650
CA_DAYS_REMAINING = 90
NODE_DAYS_VALID = 365
NODE_DAYS_REMAINING = 30         # the node role renews the certificate this long before expiry
POLICY_PREFIX = "pigsty-node-"
# etcd's peers: every member presents a certificate of this CN on the peer port, and etcd
# admits no other (--peer-cert-allowed-cn: etcd 3.4 takes one CN): a database node's own
# certificate opens no peer connection. Only the nodes that run a member get one.
ETCD_PEER_CN = "pigsty-etcd-peer"
ETCD_POLICY_PREFIX = "pigsty-etcd-"


def paths(pki_dir=PKI_DIR):
    return {
        "dir": pki_dir,
        "ca_dir": posixpath.join(pki_dir, "ca"),
        "ca_key": posixpath.join(pki_dir, "ca", "ca.key"),
        "ca_crt_master": posixpath.join(pki_dir, "ca", "ca.crt"),
        "ca_crt": posixpath.join(pki_dir, "ca.crt"),
        "node_crt": posixpath.join(pki_dir, "node.crt"),
        "node_key": posixpath.join(pki_dir, "node.key"),
        "etcd_peer_crt": posixpath.join(pki_dir, "etcd-peer.crt"),
        "etcd_peer_key": posixpath.join(pki_dir, "etcd-peer.key"),
    }


def ca_server(inv):
    """Minion id of the CA server: the first meta node (None when there is no meta node)."""
    meta = pigsty_model.index(inv).meta_nodes
    return meta[0] if meta else None


def policy_name(minion_id):
    return POLICY_PREFIX + minion_id


def portal_domains(gvars):
    """The domains the portal (Nginx on the meta nodes) serves over HTTPS, in
    PORTAL_SERVICES order, without duplicates: infra_portal's entries that Nginx uses."""
    portal = gvars.get("infra_portal") or {}
    out = []
    for name in D.PORTAL_SERVICES:
        entry = portal.get(name)
        domain = entry.get("domain") if isinstance(entry, dict) else None
        if not domain:
            continue
        if not isinstance(domain, str) or not pigsty_syntax.HOSTNAME_RE.fullmatch(domain):
            raise ValueError("pigsty:vars:infra_portal:%s:domain: expected a host name such as "
                             "p.pigsty, got %r" % (name, domain))
        if domain not in out:
            out.append(domain)
    return out


def node_names(inv, minion_id):
    """CN and subjectAltName of a node's certificate. The minion id is the node's host name
    (scripts/bootstrap-salt.sh's default), so DNS:<id> names both. A meta node's certificate
    also names the portal's domains (pigsty, p.pigsty, ...), after its own names: browsers
    and clients check the name they asked for."""
    idx = pigsty_model.index(inv)
    node = idx.node(minion_id)
    if node is None:
        raise ValueError("pigsty:nodes:%s: this minion is not in the node map" % minion_id)
    ip = str(node.get("ip"))
    san = "DNS:%s, IP:%s, IP:127.0.0.1" % (minion_id, ip)
    if node.get("meta"):
        san += "".join(", DNS:%s" % d for d in portal_domains(idx.gvars) if d != minion_id)
    return {"CN": minion_id, "subjectAltName": san}


def node_policy(inv, minion_id, pki_dir=PKI_DIR):
    """x509_v2 signing policy for one node (on the CA server): only that minion may use it,
    and it fixes the names, the usages and the lifetime."""
    p = paths(pki_dir)
    policy = {
        "minions": minion_id,
        "signing_private_key": p["ca_key"],
        "signing_cert": p["ca_crt_master"],
        "basicConstraints": "critical, CA:false",
        "keyUsage": "critical, digitalSignature, keyEncipherment",
        "extendedKeyUsage": "serverAuth, clientAuth",
        "subjectKeyIdentifier": "hash",
        "authorityKeyIdentifier": "keyid:always",
        "days_valid": NODE_DAYS_VALID,
    }
    policy.update(node_names(inv, minion_id))
    return policy


def etcd_peer_names(inv, minion_id):
    """CN and subjectAltName of the etcd peer certificate of a node that runs a member
    (peers check each other's address against the SAN)."""
    idx = pigsty_model.index(inv)
    ip = idx.node_ip(minion_id)
    return {"CN": ETCD_PEER_CN, "subjectAltName": "DNS:%s, IP:%s" % (minion_id, ip)}


def etcd_peer_policy(inv, minion_id, pki_dir=PKI_DIR):
    """x509_v2 signing policy of a member node's etcd peer certificate: only that minion."""
    policy = node_policy(inv, minion_id, pki_dir)
    policy.update(etcd_peer_names(inv, minion_id))
    return policy


def signing_policies(inv, pki_dir=PKI_DIR):
    """Every node's policy, and the etcd peer policy of each node that runs an etcd member,
    keyed by policy name (the CA server's ``x509_signing_policies``)."""
    idx = pigsty_model.index(inv)
    out = {policy_name(nid): node_policy(inv, nid, pki_dir) for nid in sorted(idx.nodes)}
    if idx.gvars.get("dcs_type") == "etcd":
        for member in idx.dcs_members:
            out[ETCD_POLICY_PREFIX + member["node"]] = etcd_peer_policy(inv, member["node"], pki_dir)
    return out


def etcd_peer_request(inv, minion_id, pki_dir=PKI_DIR):
    """What salt/dcs asks for on a member node: paths, CA server (None on the CA server:
    it signs locally), policy, names, renewal."""
    ca = ca_server(inv)
    req = {"paths": paths(pki_dir), "ca_server": None if minion_id == ca else ca,
           "is_ca": minion_id == ca, "signing_policy": ETCD_POLICY_PREFIX + minion_id,
           "group": SSL_GROUP, "days_remaining": NODE_DAYS_REMAINING}
    req.update(etcd_peer_names(inv, minion_id))
    return req


def node_request(inv, minion_id, pki_dir=PKI_DIR):
    """What salt/node/pki.sls needs for this minion: paths, whether it is the CA server,
    the CA server to ask (None on the CA server itself: it signs locally), the policy and
    the names it asks for (the same as the policy's, so the state compares like with like)."""
    ca = ca_server(inv)
    if ca is None:
        raise ValueError("pigsty:nodes: no meta node (expected at least one node with "
                         "'meta: true' to hold the CA)")
    req = {
        "paths": paths(pki_dir),
        "is_ca": minion_id == ca,
        "ca_server": None if minion_id == ca else ca,
        "signing_policy": policy_name(minion_id),
        "group": SSL_GROUP,
        "ca_cn": CA_CN,
        "ca_days_valid": CA_DAYS_VALID,
        "ca_days_remaining": CA_DAYS_REMAINING,
        "days_remaining": NODE_DAYS_REMAINING,
    }
    req.update(node_names(inv, minion_id))
    return req
