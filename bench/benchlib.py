"""Shared by the bench scripts: run the sandbox's CLI, stop the benchmark on a failure."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANDBOX = ["/usr/bin/python3", os.path.join(REPO, "sandbox", "sandbox.py")]
sys.path.insert(0, os.path.join(REPO, "sandbox"))


def sandbox(*args, check=True, timeout=3600):
    """stdout of `sandbox.py ARGS`; exits the benchmark with the output when it fails."""
    res = subprocess.run(SANDBOX + list(args), capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        sys.exit("sandbox %s failed:\n%s\n%s" % (" ".join(args[:4]), res.stdout[-3000:], res.stderr[-3000:]))
    return res.stdout
