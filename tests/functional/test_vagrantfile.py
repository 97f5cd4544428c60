"""The Vagrantfile is valid (`vagrant validate --ignore-provider`, no VM booted) and describes the
same nodes and addresses as the default pillar.

Functional, not unit: it shells out to Debian's vagrant. `--ignore-provider` checks the Vagrantfile
without a provider plugin: Debian's vagrant 2.3.4 refuses a plain `vagrant validate` with "No usable
default provider" on a machine that has no hypervisor (this one), and the VirtualBox block is then
not checked (Debian has no VirtualBox to check it against)."""
import os
import re
import shutil
import subprocess

import pytest

from pillar_fixture import REPO, load


def test_vagrantfile_matches_the_pillar_nodes():
    text = open(os.path.join(REPO, "Vagrantfile")).read()
    vagrant_nodes = dict(re.findall(r'"([\w-]+)"\s*=>\s*\{\s*ip:\s*"([\d.]+)"', text))
    pillar_nodes = {k: v["ip"] for k, v in load("pigsty.sls")["pigsty"]["nodes"].items()}
    assert vagrant_nodes == pillar_nodes
    assert "scripts/bootstrap-salt.sh" in text and os.path.exists(os.path.join(REPO, "scripts/bootstrap-salt.sh"))


def test_vagrant_validate(tmp_path):
    vagrant = shutil.which("vagrant")
    if vagrant is None:
        pytest.fail("vagrant is not installed (tests/run.sh installs it)")
    res = subprocess.run([vagrant, "validate", "--ignore-provider"], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, VAGRANT_CHECKPOINT_DISABLE="1", VAGRANT_HOME=str(tmp_path / "home"),
                                  VAGRANT_DOTFILE_PATH=str(tmp_path / "dot")))   # no .vagrant/ in the checkout
    assert res.returncode == 0, res.stdout + res.stderr
    assert "validated successfully" in res.stdout
