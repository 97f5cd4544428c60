"""salt/node/crontab.sls for real: ``salt-call --local`` applies it with the repository's
modules to a scratch crontab (minion option ``pigsty_crontab_file``), through Salt's own
file.blockreplace / file.managed / file.replace. Append mode keeps the node's lines and adds
the marked block, test mode reports the diff and changes nothing, a second apply changes
nothing, a changed line replaces the block; overwrite mode writes Debian's lines and the
block; no lines remove the block and nothing else."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from pillar_fixture import REPO

import pigsty_crontab

SALT_CALL = os.path.join(os.path.dirname(sys.executable), "salt-call")
NODE_OWN = ("SHELL=/bin/sh\n"
            "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
            "30 2 * * * root /usr/local/bin/the-nodes-own-job\n")
LINE = "*/5 * * * * root /usr/local/bin/check-disk >/dev/null 2>&1"


@pytest.fixture
def minion(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the crontab state sets the file's owner: run the functional tests as root")
    crontab = tmp_path / "crontab"
    crontab.write_text(NODE_OWN)
    (tmp_path / "pillar").mkdir()
    (tmp_path / "pillar" / "top.sls").write_text("base:\n  '*':\n    - pigsty\n")
    conf = {
        "id": "node-1", "file_client": "local", "master_type": "disable",
        "root_dir": str(tmp_path / "root"), "pki_dir": str(tmp_path / "root" / "pki"),
        "cachedir": str(tmp_path / "cache"), "log_file": str(tmp_path / "minion.log"),
        "file_roots": {"base": [os.path.join(REPO, "salt")]},
        "pillar_roots": {"base": [str(tmp_path / "pillar")]},
        "module_dirs": [os.path.join(REPO, "_modules")],
        "utils_dirs": [os.path.join(REPO, "_utils")],
        "pigsty_crontab_file": str(crontab),
    }
    (tmp_path / "minion").write_text(yaml.safe_dump(conf))
    return {"dir": tmp_path, "crontab": crontab}


def apply(minion, test=False, **gvars):
    inventory = {"pigsty": {"vars": gvars, "clusters": {},
                            "nodes": {"meta": {"ip": "10.10.10.10", "meta": True},
                                      "node-1": {"ip": "10.10.10.11"}}}}
    (minion["dir"] / "pillar" / "pigsty.sls").write_text(yaml.safe_dump(inventory))
    argv = [SALT_CALL, "--local", "-c", str(minion["dir"]), "--out=json", "--retcode-passthrough",
            "state.apply", "node.crontab"] + (["test=True"] if test else [])
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    states = json.loads(res.stdout)["local"]
    return {key.split("_|-")[1]: value for key, value in states.items()}


def test_append_mode_keeps_the_nodes_lines_and_manages_its_block(minion):
    ret = apply(minion, test=True, node_crontab=[LINE], node_crontab_overwrite=False)
    assert ret["node-crontab"]["result"] is None and LINE in ret["node-crontab"]["changes"]["diff"]
    assert minion["crontab"].read_text() == NODE_OWN                 # test mode: untouched
    ret = apply(minion, node_crontab=[LINE], node_crontab_overwrite=False)
    assert ret["node-crontab"]["result"] is True and ret["node-crontab"]["changes"]
    assert "node-cron-package" not in ret                             # not /etc/crontab: no package
    text = minion["crontab"].read_text()
    assert text == NODE_OWN + pigsty_crontab.block([LINE])
    again = apply(minion, node_crontab=[LINE], node_crontab_overwrite=False)
    assert again["node-crontab"]["result"] is True and again["node-crontab"]["changes"] == {}
    assert minion["crontab"].read_text() == text
    other = "@daily root /bin/true"
    apply(minion, node_crontab=[other], node_crontab_overwrite=False)
    assert minion["crontab"].read_text() == NODE_OWN + pigsty_crontab.block([other])
    # no lines: the block goes, the node's own lines stay
    ret = apply(minion, test=True)
    assert ret["node-crontab"]["result"] is None and other in ret["node-crontab"]["changes"]["diff"]
    assert other in minion["crontab"].read_text()
    ret = apply(minion)
    assert ret["node-crontab"]["changes"] and minion["crontab"].read_text() == NODE_OWN
    assert apply(minion)["node-crontab"]["changes"] == {}


def test_overwrite_mode_writes_debians_lines_and_the_block(minion):
    ret = apply(minion, test=True, node_crontab=[LINE])
    assert ret["node-crontab"]["result"] is None and minion["crontab"].read_text() == NODE_OWN
    apply(minion, node_crontab=[LINE])
    text = minion["crontab"].read_text()
    assert text == pigsty_crontab.DEBIAN_CRONTAB + pigsty_crontab.block([LINE])
    assert "the-nodes-own-job" not in text and "/etc/cron.daily" in text
    assert oct(os.stat(minion["crontab"]).st_mode & 0o777) == "0o644"
    assert apply(minion, node_crontab=[LINE])["node-crontab"]["changes"] == {}
    # switching to append keeps the whole file and finds the same block
    ret = apply(minion, node_crontab=[LINE], node_crontab_overwrite=False)
    assert ret["node-crontab"]["changes"] == {} and minion["crontab"].read_text() == text
