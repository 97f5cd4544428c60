"""A second meta node and Salt master in the sandbox (docs/multi-master.md), for a test or a
benchmark:

    with second_master(on_exit=put_back) as meta2:
        stop_first_master()          # salt-master, Prometheus, Alertmanager, Nginx, dnsmasq on meta
        ...

On entry: `sandbox.py add meta-2` (a second salt-master with meta's keys, every minion
connected to both), meta-2 in the inventory as a meta node (extra_nodes), then, through
meta's master: saltutil.sync_all on meta-2, `node` on meta-2 (its certificate), `dcs` on meta
(its etcd user in the masters' role), `infra` on both meta nodes (meta-2's infra, and the
Alertmanagers' cluster). On exit, whatever happened: meta's master and infra started again
(``on_exit`` runs then, while meta-2 is still in: e.g. starting killed machines), the
inventory put back, `infra.alertmanager` and `dcs` on meta for one meta node, and
`sandbox.py remove meta-2` (the minions back on meta's master alone).
"""
import contextlib
import json
import subprocess
import time

from extra_cluster import extra_nodes
from sandbox_cli import SANDBOX, node_exec

NAME, IP = "meta-2", "10.10.10.9"
FIRST_MASTER_INFRA = ["salt-master", "prometheus", "prometheus-alertmanager", "nginx", "dnsmasq"]


class SecondMasterError(RuntimeError):
    pass


def salt_on(master, *args, timeout=900):
    """`salt --out=json` on ``master``'s salt-master: (minion -> return, exit code, process)."""
    res = node_exec(master, "salt", "--out=json", "--out-indent=-1", *args, timeout=timeout)
    data = {}
    for line in res.stdout.splitlines():
        if line.strip().startswith("{"):
            data.update(json.loads(line))
    return data, res.returncode, res


def apply(master, targets, sls):
    """state.apply ``sls`` on the minions ``targets`` (a list) through ``master``; raises
    naming the states that did not succeed."""
    data, code, res = salt_on(master, "-L", ",".join(targets), "state.apply", sls)
    bad = {m: ([c.get("comment") for c in r.values() if not c.get("result")] if isinstance(r, dict) else r)
           for m, r in data.items() if not isinstance(r, dict) or not all(c.get("result") for c in r.values())}
    if sorted(data) != sorted(targets) or code != 0 or bad:
        raise SecondMasterError("state.apply %s on %s via %s: rc %d %s %s" % (
            sls, targets, master, code, json.dumps(bad)[:3000], res.stderr[-1000:]))


def stop_first_master():
    """Stop meta's salt-master and infra (etcd, a DCS member, stays)."""
    res = node_exec("meta", "systemctl", "stop", *FIRST_MASTER_INFRA, timeout=120)
    if res.returncode != 0:
        raise SecondMasterError("stopping meta's master and infra: %s" % res.stderr[-1000:])


def start_first_master(timeout=60):
    """Start meta's salt-master and infra again; returns once meta's master answers."""
    node_exec("meta", "systemctl", "start", *FIRST_MASTER_INFRA, timeout=120)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node_exec("meta", "salt", "-t", "5", "meta", "test.ping", timeout=60).returncode == 0:
            return
        time.sleep(2)
    raise SecondMasterError("meta's master does not answer after a start")


@contextlib.contextmanager
def second_master(on_exit=None):
    try:
        added = subprocess.run(SANDBOX + ["add", NAME], capture_output=True, text=True, timeout=900)
        if added.returncode != 0:
            raise SecondMasterError("sandbox add %s: %s%s" % (NAME, added.stdout[-3000:], added.stderr[-2000:]))
        with extra_nodes({NAME: {"ip": IP, "meta": True}}):
            synced, _code, res = salt_on("meta", NAME, "saltutil.sync_all")
            if NAME not in synced:
                raise SecondMasterError("saltutil.sync_all on %s: %s" % (NAME, res.stdout[-2000:] + res.stderr[-1000:]))
            for sls, targets in (("node", [NAME]), ("dcs", ["meta"]), ("infra", ["meta", NAME])):
                apply("meta", targets, sls)
            try:
                yield NAME
            finally:
                # meta's master first: the inventory's restore refreshes the pillars through it
                start_first_master()
                if on_exit:
                    on_exit()
    finally:
        start_first_master()
        for sls in ("infra.alertmanager", "dcs"):       # one meta node again
            node_exec("meta", "salt", "meta", "state.apply", sls, timeout=900)
        subprocess.run(SANDBOX + ["remove", NAME], capture_output=True, timeout=600)
