"""Each cluster's HA history on the master: one JSON line per reconciliation (the event
that caused it, the live roles, what each step did), and a readable summary of it."""
import json
import os
import time

import pigsty_events


def path(opts, cluster):
    """The history file of ``cluster``; the name is checked (it becomes a file name)."""
    if not isinstance(cluster, str) or not pigsty_events.CLUSTER_RE.match(cluster):
        raise ValueError("cluster: %r is not a cluster name (expected lowercase letters, digits "
                         "and '-')" % (cluster,))
    return os.path.join(opts["cachedir"], "pigsty", "history", "%s.jsonl" % cluster)


def record(opts, cluster, entry):
    target = path(opts, cluster)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "a") as fh:
        fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


def read(opts, cluster, last=20):
    """The last ``last`` entries, summarised: trigger, primary, roles, what changed."""
    target = path(opts, cluster)
    if not os.path.exists(target):
        return []
    with open(target) as fh:
        lines = fh.readlines()[-int(last):]
    out = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue                       # a line cut by a crash mid-write
        ev = e.get("event") or {}
        steps = e.get("steps") or {}
        out.append({
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"])),
            "trigger": "%s %s: %s -> %s" % (ev.get("source", "event"), ev.get("instance"), ev.get("old_role"),
                                          ev.get("new_role")) if ev else "reconcile",
            "primary": next((i for i, r in e["roles"].items() if r == "primary"), None),
            "roles": e["roles"],
            "haproxy": {m: c for m, c in steps.get("haproxy", {}).get("members", {}).items() if c},
            "vip": (steps.get("vip", {}).get("actions") or steps.get("vip", {}).get("comment")
                    or ("covered by the run before" if e.get("covered_by") else "in place")),
            "handoff": steps.get("handoff", {}).get("actions"),
            "ok": all(s.get("result") for s in steps.values()),
            "duration": e["duration"],
        })
    return out
