"""Last integration test: `down` leaves nothing behind (machines, mounts, cgroups, veths,
bridge, processes). Set KEEP_SANDBOX=1 to keep the sandbox for more work."""
import os
import subprocess

import pytest

from conftest import SANDBOX


@pytest.mark.skipif(os.environ.get("KEEP_SANDBOX") == "1", reason="KEEP_SANDBOX=1")
def test_down_leaves_nothing_behind(sandbox):
    res = subprocess.run(SANDBOX + ["down"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    left = subprocess.run(SANDBOX + ["leftovers"], capture_output=True, text=True)
    assert left.returncode == 0 and left.stdout.strip() == "nothing", left.stdout
    assert not os.path.exists("/sys/class/net/pgsty-br0")
