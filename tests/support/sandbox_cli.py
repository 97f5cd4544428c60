"""The sandbox from the host: a command inside a node, Salt's JSON from the master, a runner's
return, a bounded wait. Shared by the integration tests and the helpers in tests/support."""
import json
import os
import subprocess
import time

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


def last_json(text):
    """The runner's return from `salt-run --out=json` output: the last JSON document that is
    not a progress event (runners that report progress print one document per event first);
    a runner that returns text (a table) prints a JSON string on a line of its own."""
    decoder, docs, i = json.JSONDecoder(), [], 0

    def starts(i):
        return text[i] in "{[" or (text[i] == '"' and (i == 0 or text[i - 1] == "\n"))
    while True:
        while i < len(text) and not starts(i):
            i += 1
        if i >= len(text):
            break
        try:
            doc, i = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        docs.append(doc)
    docs = [d for d in docs if not (isinstance(d, dict) and d.get("suffix") == "progress")]
    return docs[-1] if docs else None


def salt_run(*args, timeout=600):
    res = node_exec("meta", "salt-run", "--out=json", *args, timeout=timeout)
    try:
        data = json.loads(res.stdout) if res.stdout.strip() else None
    except ValueError:
        data = last_json(res.stdout)
    return data, res.returncode, res


def wait_for(check, timeout, interval=1.0):
    """Poll ``check`` until it returns something true (bounded by ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last = exc
        time.sleep(interval)
    raise AssertionError("condition not met within %ss (last: %r)" % (timeout, last))
