"""Bad input to a runner makes the real ``salt-run`` exit 1 and print the refusal naming the field.

Salt 3008 prints a runner's raised SaltInvocationError as "Passed invalid arguments" and exits 0
(the CLI reads its exit status only from a ``retcode`` in the returned dict): stop 25's CI found
``salt-run pigsty_backup.backup type=weekly`` exiting 0. Here Salt's own ``salt-run`` runs offline
(no master daemon, no network: every directory in a temp dir) with the repository's runners,
``_utils`` on PYTHONPATH as a synced master has them in its extension modules."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from pillar_fixture import REPO

SALT_RUN = os.path.join(os.path.dirname(sys.executable), "salt-run")


@pytest.fixture(scope="module")
def config_dir():
    root = tempfile.mkdtemp(prefix="pigsty-salt-run-")
    try:
        os.makedirs(os.path.join(root, "conf"))
        os.makedirs(os.path.join(root, "cache", "proc"))
        with open(os.path.join(root, "conf", "master"), "w", encoding="utf-8") as fh:
            json.dump({"id": "meta_master", "root_dir": root, "cachedir": os.path.join(root, "cache"),
                       "pki_dir": os.path.join(root, "pki"), "sock_dir": os.path.join(root, "sock"),
                       "log_file": os.path.join(root, "master.log"), "user": "root",
                       "runner_dirs": [os.path.join(REPO, "_runners")]}, fh)
        yield os.path.join(root, "conf")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def salt_run(config_dir, *args):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "_utils"))
    res = subprocess.run([SALT_RUN, "-c", config_dir, "--out=json", *args], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    return res.returncode, res.stdout


@pytest.mark.parametrize("args, message", [
    (("pigsty_backup.backup", "cluster=pg-test", "type=weekly"),
     "type: expected one of full, diff, incr, got 'weekly'"),
    (("pigsty_orch.follow", "timeout=soon"), "timeout: expected seconds, got 'soon'"),
    (("pigsty_orch.run", "mods="), "mods: expected the orchestration's SLS name(s)"),
    (("pigsty_ha.reconcile", "test=True"), "test: a dry run takes a cluster (not an event)"),
    (("pigsty_ha.history", "cluster=../etc"), "cluster"),
])
def test_salt_run_exits_1_on_a_refusal(config_dir, args, message):
    code, out = salt_run(config_dir, *args)
    assert code == 1, (code, out)
    refused = json.loads(out)
    assert refused["result"] is False and refused["retcode"] == 1 and message in refused["comment"], refused


def test_salt_run_exits_0_on_good_input(config_dir):
    code, out = salt_run(config_dir, "pigsty_orch.follow", "timeout=0.1")
    assert code == 0 and json.loads(out)["result"] is True, (code, out)
