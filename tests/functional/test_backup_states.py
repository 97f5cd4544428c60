"""The backup states rendered by Salt itself (``salt-call --local state.show_sls``) with the
repository's modules and default pillar: infra.backup_repo on the meta node and
pgsql.pgbackrest on a database node. Every requisite names a state of the same run (the
node certificate's ``pki-node-cert`` included), the configuration file holds what the
execution module renders, and the repository host gets no pgsql.pgbackrest of its own."""
import json
import os
import subprocess
import sys

import yaml

from pillar_fixture import REPO, default_pillar

SALT_CALL = os.path.join(os.path.dirname(sys.executable), "salt-call")
# node.pki asks the CA server (the meta node, through the master) for the signing policy
# while it renders: without a master, a stand-in with its two state IDs that others use
PKI_STANDIN = """pki-group:
  group.present:
    - name: ssl-cert
pki-node-cert:
  x509.certificate_managed:
    - name: /etc/pki/pigsty/node.crt
    - require:
      - group: pki-group
"""
REQUISITES = ("require", "watch", "onchanges", "require_in", "watch_in")


def _config_dir(tmp_path, minion, clusters):
    root = tmp_path / minion
    (root / "pillar").mkdir(parents=True)
    (root / "standin" / "node").mkdir(parents=True)
    (root / "standin" / "node" / "pki.sls").write_text(PKI_STANDIN)
    (root / "pillar" / "top.sls").write_text("base:\n  '*':\n    - pigsty\n")
    (root / "pillar" / "pigsty.sls").write_text(yaml.safe_dump(default_pillar(clusters=clusters)))
    conf = {"id": minion, "file_client": "local", "master_type": "disable",
            "root_dir": str(root / "root"), "pki_dir": str(root / "root" / "pki"),
            "cachedir": str(root / "cache"), "log_file": str(root / "minion.log"),
            "file_roots": {"base": [str(root / "standin"), os.path.join(REPO, "salt")]},
            "pillar_roots": {"base": [str(root / "pillar")]},
            "module_dirs": [os.path.join(REPO, "_modules")],
            "states_dirs": [os.path.join(REPO, "_states")],
            "utils_dirs": [os.path.join(REPO, "_utils")],
            "grains": {"mem_total": 2048}}
    (root / "minion").write_text(yaml.safe_dump(conf))
    return str(root)


def show(config_dir, sls):
    res = subprocess.run([SALT_CALL, "--local", "-c", config_dir, "--out=json",
                          "--retcode-passthrough", "state.show_sls", sls],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return json.loads(res.stdout)["local"]


def _args(state):
    """{module: {arg: value}} of one rendered state."""
    out = {}
    for key, value in state.items():
        if key.startswith("__"):
            continue
        args = {}
        for item in value:
            if isinstance(item, dict):
                args.update(item)
        args.pop("order", None)            # Salt's own
        out[key] = args
    return out


def assert_requisites_exist(high):
    present = {(mod, sid) for sid, state in high.items() for mod in _args(state)}
    for sid, state in high.items():
        for _mod, args in _args(state).items():
            for req in REQUISITES:
                for ref in args.get(req) or []:
                    (rmod, rid), = ref.items()
                    assert (rmod, rid) in present, "%s: %s %s:%s is not in the run" % (
                        sid, req, rmod, rid)


def test_repository_host_states(tmp_path):
    high = show(_config_dir(tmp_path, "meta", ["pg-meta"]), "infra.backup_repo")
    assert_requisites_exist(high)
    assert "pki-node-cert" in high
    config = _args(high["pgbackrest-repo-config"])["file"]
    assert config["name"] == "/etc/pgbackrest/pgbackrest.conf"
    assert "[pg-test]\npg1-host=node-1\n" in config["contents"]
    assert "[pg-meta]\npg1-path=/pg/data\n" in config["contents"]
    assert _args(high["pgbackrest-peer-node-3"])["host"] == {"name": "node-3", "ip": "10.10.10.13"}
    assert _args(high["pgbackrest-repo-user"])["user"]["groups"] == ["ssl-cert"]


def test_database_node_states(tmp_path):
    high = show(_config_dir(tmp_path, "node-2", ["pg-test"]), "pgsql.pgbackrest")
    assert_requisites_exist(high)
    config = _args(high["pgbackrest-config"])["file"]
    assert "repo1-host=meta\nrepo1-host-type=tls\n" in config["contents"]
    assert "tls-server-auth=meta=pg-test" in config["contents"]
    server = _args(high["pgbackrest-server"])["service"]
    assert {"x509": "pki-node-cert"} in server["watch"]
    assert _args(high["pgbackrest-key-access"])["group"]["addusers"] == ["postgres"]
    assert _args(high["pgbackrest-peer-meta"])["host"] == {"name": "meta", "ip": "10.10.10.10"}


def test_repository_host_gets_no_database_node_pgbackrest(tmp_path):
    high = show(_config_dir(tmp_path, "meta", ["pg-meta"]), "pgsql.pgbackrest")
    assert high == {}, sorted(high)
