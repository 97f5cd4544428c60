"""Private pillar files encrypted for Salt's gpg renderer, for real (docs/security.md,
"Encrypted pillar").

Real gpg, Salt's own pillar compiler and gpg renderer, offline (no daemon, no network): two
throwaway keys (the master's and a stranger's, no passphrase) in temporary key rings; a copy
of the repository's pillar in a temp dir where pillar/clusters/pg-test.sls (``#!yaml|gpg``)
and pillar/dcs.sls hold their passwords as PGP messages made by scripts/pillar_encrypt.py
(secret on stdin). The master compiles each minion's pillar with ``gpg_keydir`` at its key
ring and the project's validating ext_pillar:

- a member of pg-test gets the plain passwords, and its pillar validates;
- the meta node gets pg-test's etcd password in plain text through pillar/dcs_clusters.sls
  (import_yaml copies the PGP message; its own pipeline ends in gpg) and etcd's root password;
- ``salt-run pigsty.validate`` (the runner, on Salt's full view) passes;
- a value encrypted for another key: the minion's pillar carries Salt's render error (no
  state runs), and pigsty.validate names the file, the field and the key, never a secret;
- a PGP message in a file whose shebang does not end in gpg reaches the pillar encrypted:
  the validation names the field as still encrypted, never as a bad password.

Everything (key rings, gpg-agent, the pillar copy) is removed at the end, whatever happened.
"""
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest

pytest.importorskip("salt.pillar")

import salt.pillar                              # noqa: E402

import pigsty_inventory                         # noqa: E402
import pigsty_pillar                            # noqa: E402
from loader import load_module                  # noqa: E402
from pillar_fixture import REPO                 # noqa: E402
from salt_master import master_opts             # noqa: E402

ENCRYPT = os.path.join(REPO, "scripts", "pillar_encrypt.py")
SYSTEM = ("pg_admin_password", "pg_replication_password", "pg_monitor_password",
          "pg_etcd_password", "patroni_password", "haproxy_admin_password")
MASTER_UID = "pigsty master <salt-master@pigsty.invalid>"
STRANGER_UID = "someone else <stranger@pigsty.invalid>"


def gpg(home, *args, stdin=None):
    res = subprocess.run(["gpg", "--homedir", home, "--batch"] + list(args), input=stdin,
                         capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    return res.stdout.decode()


def new_keyring(home, uid):
    """A key ring with one key pair (no passphrase); returns its encryption subkey's id."""
    os.makedirs(home, mode=0o700)
    gpg(home, "--passphrase", "", "--quick-gen-key", uid, "default", "default", "never")
    for line in gpg(home, "--with-colons", "--list-secret-keys").splitlines():
        fields = line.split(":")
        if fields[0] == "ssb" and "e" in fields[11]:
            return fields[4]
    raise AssertionError("no encryption subkey in %s" % home)


@pytest.fixture(scope="module")
def keys():
    """The master's key ring (gpg_keydir) and a stranger's; removed with their agents."""
    if not shutil.which("gpg"):
        pytest.fail("gpg is not installed (tests/run.sh installs gnupg)")
    root = tempfile.mkdtemp(prefix="pigsty-gpg-")
    homes = {"master": os.path.join(root, "master"), "stranger": os.path.join(root, "stranger")}
    try:
        ids = {"master": new_keyring(homes["master"], MASTER_UID),
               "stranger": new_keyring(homes["stranger"], STRANGER_UID)}
        # the stranger's public key, so that one can encrypt for it from the master's side too
        gpg(homes["master"], "--import", stdin=gpg(homes["stranger"], "--armor", "--export").encode())
        yield {"root": root, "homes": homes, "ids": ids}
    finally:
        for home in homes.values():
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True,
                           timeout=30, check=False)
        shutil.rmtree(root, ignore_errors=True)


def encrypt(keys, secret, recipient, name, indent):
    """scripts/pillar_encrypt.py: the secret on stdin, a YAML block out."""
    res = subprocess.run([sys.executable, ENCRYPT, "-r", recipient, "--homedir",
                          keys["homes"]["master"], "--name", name, "--indent", str(indent)],
                         input=secret + "\n", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert secret not in res.stdout and "-----BEGIN PGP MESSAGE-----" in res.stdout
    return res.stdout


def write_tree(keys, root, shebang="#!yaml|gpg", strangers=()):
    """A copy of the repository's pillar under ``root`` with pg-test's and the meta nodes'
    passwords encrypted for the master (``strangers``: those fields for the stranger's key);
    returns the plain values {field: secret}."""
    shutil.copytree(os.path.join(REPO, "pillar"), root)
    plain = {f: "Gpg.%s.%s" % (f, secrets.token_hex(4)) for f in SYSTEM + ("test", "etcd_root")}

    def block(field, name, indent):
        who = "stranger@pigsty.invalid" if field in strangers else "salt-master@pigsty.invalid"
        return encrypt(keys, plain[field], who, name, indent)

    text = (shebang + "\n# pg-test private vars, encrypted for the master's gpg key\n"
            "pigsty:\n  clusters:\n    pg-test:\n      vars:\n"
            + "".join(block(f, f, 8) for f in SYSTEM)
            + "        pg_users:\n          - name: test\n"
            + block("test", "password", 12)
            + "            pgbouncer: true\n            roles: [dbrole_readwrite]\n"
            + "        pg_databases:\n          - {name: test, owner: test}\n")
    with open(os.path.join(root, "clusters", "pg-test.sls"), "w") as fh:
        fh.write(text)
    with open(os.path.join(root, "dcs.sls")) as fh:
        dcs = fh.read()
    line = "    etcd_root_password: Sandbox.Etcd.Root\n"
    assert line in dcs
    with open(os.path.join(root, "dcs.sls"), "w") as fh:
        fh.write(shebang + "\n" + dcs.replace(line, block("etcd_root", "etcd_root_password", 4)))
    for path in (os.path.join(root, "clusters", "pg-test.sls"), os.path.join(root, "dcs.sls")):
        with open(path) as fh:
            written = fh.read()
        assert not any(secret in written for secret in plain.values())
    return plain


def opts_for(keys, tmp, root):
    """The master's options: the pillar copy, the master's key ring, the project's ext_pillar."""
    opts = master_opts(tmp, [root])
    opts.update(gpg_keydir=keys["homes"]["master"], ext_pillar=[{"pigsty": {}}],
                pillar_dirs=[os.path.join(REPO, "_pillar")],
                utils_dirs=[os.path.join(REPO, "_utils")])
    return opts


def compile_for(opts, minion_id):
    return salt.pillar.get_pillar(opts, {}, minion_id, saltenv="base").compile_pillar()


def runner_validate(opts):
    runner = load_module("_runners/pigsty.py", opts=opts, context={})
    return runner.validate()


@pytest.fixture(scope="module")
def encrypted(keys, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpg-good")
    root = os.path.join(keys["root"], "pillar-good")
    plain = write_tree(keys, root)
    return {"opts": opts_for(keys, tmp, root), "plain": plain, "root": root}


def test_a_member_gets_the_plain_passwords_and_its_pillar_validates(encrypted):
    pillar = compile_for(encrypted["opts"], "node-1")
    assert "_errors" not in pillar, pillar.get("_errors")        # the ext_pillar validated it
    cvars = pillar["pigsty"]["clusters"]["pg-test"]["vars"]
    plain = encrypted["plain"]
    assert {f: cvars[f] for f in SYSTEM} == {f: plain[f] for f in SYSTEM}
    assert cvars["pg_users"][0]["password"] == plain["test"]
    assert pigsty_inventory.validate(pillar, private={"pg-test"}) == []
    assert "dcs" not in pillar["pigsty"]                          # the meta nodes' file only


def test_the_meta_node_gets_the_plain_etcd_passwords(encrypted):
    pillar = compile_for(encrypted["opts"], "meta")
    assert "_errors" not in pillar, pillar.get("_errors")
    dcs = pillar["pigsty"]["dcs"]
    plain = encrypted["plain"]
    assert dcs["etcd_root_password"] == plain["etcd_root"]
    # copied by dcs_clusters.sls (import_yaml) as a PGP message, decrypted by its own pipeline
    assert dcs["etcd_users"]["pg-test"] == plain["pg_etcd_password"]
    assert dcs["etcd_users"]["pg-meta"] == "Sandbox.Etcd.meta"     # a plain file still works
    assert "pg_admin_password" not in pillar["pigsty"]["clusters"]["pg-test"].get("vars", {})
    assert pigsty_inventory.validate_dcs_secrets(pillar) == []


def test_the_full_view_and_pigsty_validate_pass(encrypted):
    merged, problems = pigsty_pillar.full_inventory(encrypted["opts"])
    assert problems == []
    assert merged["pigsty"]["clusters"]["pg-test"]["vars"]["patroni_password"] == \
        encrypted["plain"]["patroni_password"]
    ret = runner_validate(encrypted["opts"])
    assert ret["result"] is True, ret


@pytest.fixture(scope="module")
def foreign(keys, tmp_path_factory):
    """pg-test's monitor and etcd passwords encrypted for the stranger's key."""
    tmp = tmp_path_factory.mktemp("gpg-foreign")
    root = os.path.join(keys["root"], "pillar-foreign")
    plain = write_tree(keys, root, strangers=("pg_monitor_password", "pg_etcd_password"))
    return {"opts": opts_for(keys, tmp, root), "plain": plain, "root": root}


def test_a_value_for_another_key_stops_the_minion_pillar(foreign):
    pillar = compile_for(foreign["opts"], "node-1")
    assert any("clusters.pg-test" in e for e in pillar.get("_errors", [])), pillar.get("_errors")
    assert "pg_admin_password" not in pillar["pigsty"]["clusters"]["pg-test"].get("vars", {})
    meta = compile_for(foreign["opts"], "meta")
    assert any("dcs_clusters" in e for e in meta.get("_errors", [])), meta.get("_errors")


def test_pigsty_validate_names_the_file_field_and_key_never_a_secret(foreign, keys):
    ret = runner_validate(foreign["opts"])
    assert ret["result"] is False and ret["retcode"] == 1
    text = json.dumps(ret)
    stranger = keys["ids"]["stranger"].upper()
    wanted = {
        "pigsty:clusters:pg-test:vars:pg_monitor_password": os.path.join("clusters", "pg-test.sls"),
        "pigsty:clusters:pg-test:vars:pg_etcd_password": os.path.join("clusters", "pg-test.sls"),
        "pigsty:dcs:etcd_users:pg-test": "dcs_clusters.sls",
    }
    for field, path in wanted.items():
        hits = [p for p in ret["problems"] if ": %s: cannot be decrypted" % field in p]
        assert len(hits) == 1, (field, ret["problems"])
        assert os.path.join(foreign["root"], path) in hits[0]
        assert "encrypted for key %s" % stranger in hits[0]
        assert keys["homes"]["master"] in hits[0]                 # the key ring looked in
    # the values the master can decrypt are not reported as such (the file's failure leaves
    # the cluster without any password: reported as missing), and no secret is printed
    assert len([p for p in ret["problems"] if "cannot be decrypted" in p]) == 3
    assert not any(secret in text for secret in foreign["plain"].values())
    assert "BEGIN PGP MESSAGE" not in text


def test_a_message_in_a_file_without_gpg_is_reported_as_still_encrypted(keys, tmp_path):
    root = os.path.join(keys["root"], "pillar-nogpg")
    try:
        plain = write_tree(keys, root, shebang="#!yaml")
        opts = opts_for(keys, tmp_path, root)
        pillar = compile_for(opts, "node-1")
        errors = "\n".join(pillar.get("_errors", []))
        for field in SYSTEM:
            assert "pigsty:clusters:pg-test:vars:%s: still encrypted (a PGP message for key %s " % (
                field, keys["ids"]["master"].upper()) in errors, errors
        assert "pigsty:clusters:pg-test:vars:pg_users[0]:password: still encrypted" in errors
        assert "control character" not in errors                  # not taken for a password
        assert not any(secret in errors for secret in plain.values())
        ret = runner_validate(opts)
        assert ret["result"] is False
        assert "pigsty:dcs:etcd_root_password: still encrypted" in "\n".join(ret["problems"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
