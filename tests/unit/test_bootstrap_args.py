"""scripts/bootstrap-salt.sh refuses a bad --master-ip list or --id with a message that names
the argument and what was expected, before it installs or writes anything (checked here with a
--venv and a --repo that do not exist: a run that got past the checks would create the one
or complain about the other)."""
import os
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "bootstrap-salt.sh")


def run(master_ip, minion_id="node-1"):
    venv = os.path.join(tempfile.mkdtemp(prefix="pigsty-boot-"), "venv")
    res = subprocess.run(["bash", SCRIPT, "--master-ip", master_ip, "--id", minion_id, "--venv", venv,
                          "--master", "--repo", "/nonexistent-pigsty-repo"],
                         capture_output=True, text=True, timeout=30)
    assert not os.path.exists(venv), "the script went on to install"
    os.rmdir(os.path.dirname(venv))
    return res


@pytest.mark.parametrize("master_ip, why", [
    ("10.10.10.10,", "an empty item"),
    (",10.10.10.10", "an empty item"),
    ("10.10.10.10,,10.10.10.9", "an empty item"),
    ("10.10.10.300", "'10.10.10.300' is not an IPv4 address (an octet above 255)"),
    ("10.10.10", "'10.10.10' is not an IPv4 address"),
    ("10.10.10.10,10.10.10.10", "'10.10.10.10' is given twice"),
    ("10.10.10.10 10.10.10.9", "is neither an IPv4 address nor a host name"),
    ("10.10.10.10;reboot", "is neither an IPv4 address nor a host name"),
])
def test_a_bad_master_list_is_refused_naming_it(master_ip, why):
    res = run(master_ip)
    assert res.returncode == 2
    assert res.stderr.startswith("bootstrap-salt: --master-ip '%s': " % master_ip), res.stderr
    assert why in res.stderr and "expected IP[,IP...]" in res.stderr, res.stderr


@pytest.mark.parametrize("master_ip", ["10.10.10.10", "10.10.10.10,10.10.10.9", "meta.example,10.10.10.9"])
def test_a_good_master_list_passes_the_check(master_ip):
    res = run(master_ip)
    # past the master check: the next one (the repository of a master) stops it
    assert res.returncode == 2 and "--repo /nonexistent-pigsty-repo has no master.d/" in res.stderr, res.stderr


def test_a_bad_minion_id_is_refused():
    res = run("10.10.10.10", "node 1")
    assert res.returncode == 2 and res.stderr.startswith("bootstrap-salt: --id 'node 1': expected"), res.stderr
