"""Each cluster's HA history on the master: one JSON line per reconciliation (the event
that caused it, the live roles, what each step did), rotated by size, and a readable
summary of it."""
import contextlib
import fcntl
import json
import os
import time

import pigsty_events
import pigsty_live_files
import pigsty_patroni

HISTORY_MAX_BYTES = 1024 * 1024
HISTORY_KEEP = 5


def history_file(directory, cluster):
    """``directory``/<cluster>.jsonl; ValueError when ``cluster`` is not a cluster name
    (the runner's history reader takes it from the command line)."""
    if not isinstance(cluster, str) or not pigsty_events.CLUSTER_RE.fullmatch(cluster):
        raise ValueError("cluster: %r is not a cluster name (lowercase letters, digits and '-')"
                         % (cluster,))
    return os.path.join(directory, cluster + ".jsonl")


def _rotated(path, n):
    return "%s.%d" % (path, n)


@contextlib.contextmanager
def _file_lock(path):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                        # releases the lock


def append_jsonl(path, entry, max_bytes=HISTORY_MAX_BYTES, keep=HISTORY_KEEP):
    """Append ``entry`` as one JSON line. When the file would grow past ``max_bytes`` it
    becomes ``path.1`` first (``path.1`` -> ``path.2`` ..., at most ``keep`` rotated files,
    the oldest dropped), so the history takes at most about (keep + 1) * max_bytes. Safe
    across processes (a lock file beside it)."""
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode("utf-8")
    with _file_lock(path + ".lock"):
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        if size and size + len(line) > max_bytes:
            if keep:
                for n in range(keep - 1, 0, -1):
                    if os.path.exists(_rotated(path, n)):
                        os.replace(_rotated(path, n), _rotated(path, n + 1))
                os.replace(path, _rotated(path, 1))
            else:
                os.remove(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def read_jsonl(path, last=20, keep=HISTORY_KEEP):
    """The last ``last`` entries across ``path`` and its rotated files, oldest first;
    lines that are not JSON objects are skipped."""
    out = []
    for source in [path] + [_rotated(path, n) for n in range(1, keep + 1)]:
        try:
            with open(source, encoding="utf-8", errors="replace") as fh:
                lines = fh.readlines()
        except OSError:
            continue
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        out = entries + out
        if len(out) >= last:
            break
    return out[-last:] if last > 0 else []


def path(opts, cluster):
    """The history file of ``cluster``; the name is checked (it becomes a file name)."""
    return history_file(os.path.join(opts["cachedir"], "pigsty", "history"), cluster)


def record(opts, cluster, entry):
    """Append ``entry`` to the cluster's history and, when it is worth showing, to the
    portal's recent HA events (``publish``)."""
    append_jsonl(path(opts, cluster), entry)
    publish(opts.get("pigsty_live_dir", pigsty_live_files.LIVE_DIR), cluster, entry)


def summary(e):
    """One history entry, summarised: trigger, primary, roles, what changed."""
    ev = e.get("event") or {}
    steps = e.get("steps") or {}
    out = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"])),
        "trigger": "%s %s: %s -> %s" % (ev.get("source", "event"), ev.get("instance"), ev.get("old_role"),
                                      ev.get("new_role")) if ev else "reconcile",
        "primary": next((i for i, r in e["roles"].items() if r in pigsty_patroni.LEADER_ROLES), None),
        "roles": e["roles"],
        "haproxy": {m: c for m, c in steps.get("haproxy", {}).get("members", {}).items() if c},
        "vip": (steps.get("vip", {}).get("actions") or steps.get("vip", {}).get("comment")
                or ("covered by the run before" if e.get("covered_by") else "in place")),
        "handoff": steps.get("handoff", {}).get("actions"),
        "rejoin": steps.get("rejoin", {}).get("actions"),
        "ok": all(s.get("result") for s in steps.values()),
        "duration": e["duration"],
    }
    if e.get("comment"):
        out["comment"] = e["comment"]
    return out


def read(opts, cluster, last=20):
    """The last ``last`` entries, summarised (``summary``)."""
    return [summary(e) for e in read_jsonl(path(opts, cluster), int(last))]


# ------------------------------------------------------------------ the portal's recent events
PORTAL_EVENTS_KEEP = 10


def events_path(live_dir, cluster):
    """<live_dir>/events/<cluster>.json: the portal's recent HA events of ``cluster``."""
    return history_file(os.path.join(live_dir, "events"), cluster)[:-len(".jsonl")] + ".json"


def notable(s, previous_roles):
    """Whether summary ``s`` is an HA event a person wants on the portal: a Patroni event,
    a failed step, anything changed (HAProxy, VIP, hand-off, rejoin), or live roles that
    differ from the last shown ones (a failover found by a scheduled reconciliation). The
    scheduled reconciliations that find everything in place are not."""
    return bool(s["trigger"] != "reconcile" or not s["ok"] or s["haproxy"]
                or isinstance(s["vip"], list) or s["handoff"] or s["rejoin"]
                or s["roles"] != previous_roles)


def publish(live_dir, cluster, entry, keep=PORTAL_EVENTS_KEEP):
    """Add ``entry``'s summary to the cluster's portal events file (at most ``keep``, newest
    first by ``epoch``, the time its reconciliation started) when it is ``notable``. Only where the portal is installed
    (infra.nginx creates <live_dir>/events, which Nginx serves): elsewhere, nothing. Returns
    whether the file was written."""
    target = events_path(live_dir, cluster)
    if not os.path.isdir(os.path.dirname(target)):
        return False
    try:
        with open(target) as fh:
            shown = json.load(fh)
        if not isinstance(shown, list):
            shown = []
    except (OSError, ValueError):
        shown = []
    s = summary(entry)
    if not notable(s, shown[0].get("roles") if shown and isinstance(shown[0], dict) else None):
        return False
    s["epoch"] = entry["time"]
    # newest first by when each reconciliation started (a slow one is recorded after a
    # quicker one that started later)
    events = sorted([s] + [e for e in shown if isinstance(e, dict) and isinstance(e.get("epoch"), (int, float))],
                    key=lambda e: e["epoch"], reverse=True)[:keep]
    return pigsty_live_files.write_if_changed(target, json.dumps(events, sort_keys=True, default=str) + "\n")
