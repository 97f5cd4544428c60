"""The sandbox from the host: a command inside a node, Salt's JSON from the master. Shared by
the integration tests (tests/integration/conftest.py) and the helpers in tests/support."""
import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANDBOX = [os.environ.get("PIGSTY_HOST_PYTHON", "/usr/bin/python3"),
           os.path.join(REPO, "sandbox", "sandbox.py")]


def node_exec(node, *cmd, timeout=600, check=False):
    """Run a command inside a sandbox node; returns CompletedProcess (text)."""
    res = subprocess.run(SANDBOX + ["exec", node] + list(cmd), capture_output=True, text=True,
                         timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError("%s: %s -> %d\n%s\n%s" % (node, cmd, res.returncode, res.stdout, res.stderr))
    return res


def salt_json(*args, timeout=600):
    """`salt ... --out=json` on the master; returns (minion -> return, exit code).

    Not --static: that loses the exit code. Each minion's return is one JSON line."""
    res = node_exec("meta", "salt", "--out=json", "--out-indent=-1", *args, timeout=timeout)
    data = {}
    for line in res.stdout.splitlines():
        if line.strip().startswith("{"):
            try:
                data.update(json.loads(line))
            except ValueError:
                raise AssertionError("salt %s printed bad JSON:\n%s" % (args, res.stdout))
    return data, res.returncode
