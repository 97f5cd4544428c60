"""The node certificate of salt/node/pki.sls, made for real on this host: ``salt-call
--local`` applies node.pki as the CA server (minion id ``meta``) with the repository's
modules into a scratch directory (minion option ``pigsty_pki_dir``). For functional tests
of the services that use the certificate (etcd, ...)."""
import json
import os
import subprocess
import sys

import yaml

import pigsty_pki
from pillar_fixture import REPO

SALT_CALL = os.path.join(os.path.dirname(sys.executable), "salt-call")


def make_node_pki(root, node_ip):
    """Apply node.pki for minion ``meta`` at ``node_ip`` under directory ``root``; returns
    the contract's paths (ca_crt, node_crt, node_key, ...)."""
    inventory = {"pigsty": {"nodes": {"meta": {"ip": node_ip, "meta": True}}, "clusters": {}}}
    pki_dir = os.path.join(root, "pki")
    os.makedirs(os.path.join(root, "pillar"), exist_ok=True)
    with open(os.path.join(root, "pillar", "top.sls"), "w") as fh:
        fh.write("base:\n  '*':\n    - pigsty\n")
    with open(os.path.join(root, "pillar", "pigsty.sls"), "w") as fh:
        fh.write(yaml.safe_dump(inventory))
    conf = {
        "id": "meta", "file_client": "local", "master_type": "disable",
        "root_dir": os.path.join(root, "root"), "pki_dir": os.path.join(root, "root", "minion-pki"),
        "cachedir": os.path.join(root, "cache"), "log_file": os.path.join(root, "minion.log"),
        "file_roots": {"base": [os.path.join(REPO, "salt")]},
        "pillar_roots": {"base": [os.path.join(root, "pillar")]},
        "module_dirs": [os.path.join(REPO, "_modules")],
        "utils_dirs": [os.path.join(REPO, "_utils")],
        "pigsty_pki_dir": pki_dir,
        "x509_signing_policies": pigsty_pki.signing_policies(inventory["pigsty"], pki_dir),
    }
    with open(os.path.join(root, "minion"), "w") as fh:
        fh.write(yaml.safe_dump(conf))
    res = subprocess.run([SALT_CALL, "--local", "-c", root, "--out=json", "--retcode-passthrough",
                          "state.apply", "node.pki"], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError("node.pki failed:\n" + res.stdout[-4000:] + res.stderr[-4000:])
    json.loads(res.stdout)
    return pigsty_pki.paths(pki_dir)
