"""Scheduled retention (salt-run pigsty.cleanup; master.d/reactor.conf runs it daily) of
what nothing else keeps within bounds:

- the patrol reports on meta (pigsty_patrol_store.prune: older than retention_days);
- pgBackRest's own log files (pgbackrest_log_dir on every database node and the repository
  host: pgBackRest appends to them and never rotates) and the alert sink's file on meta:
  each moved to NAME.1 past log_max_bytes (one old copy kept), by the nodes' own
  ``pigsty_cleanup.logs``.

Not here, because it is done already: backups and their WAL are expired by pgBackRest
after every successful backup (the backup command's expire-auto, default y, which
pigsty_backup.backup_argv does not turn off), by retention_full / retention_diff; the logs
collected on meta are vacuumed hourly by ``pigsty.logs_vacuum``; the HA history rotates
itself (pigsty_ha_history).
"""
import os
import time

import pigsty_defaults as D
import pigsty_inventory
import pigsty_patrol
import pigsty_patrol_store

ALERT_SINK_FILE = "/var/lib/pigsty-alerts/alerts.jsonl"     # salt/infra/webhook.sls
NOT_DUPLICATED = {
    "backups": "expired by pgBackRest after every successful backup (expire-auto), by "
               "pgbackrest_repo's retention_full / retention_diff",
    "collected logs": "pigsty.logs_vacuum, hourly (log_retention_size, log_retention_time)",
}


def max_bytes_of(value):
    if value is None:
        return D.PATROL["log_max_bytes"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024 ** 2:
        raise pigsty_patrol.PatrolError("max_bytes: expected a whole number of bytes >= 1 MiB, "
                                        "got %r" % (value,))
    return value


def log_files(directory):
    """[(path, bytes)] of pgBackRest's current log files (NAME.log) in ``directory``."""
    out = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(".log") and os.path.isfile(path) and not os.path.islink(path):
            out.append((path, os.path.getsize(path)))
    return out


def rotate_plan(files, max_bytes):
    """Of [(path, bytes)], the paths larger than ``max_bytes``."""
    return sorted(path for path, nbytes in files if nbytes > max_bytes)


def rotate(paths, test=False):
    """Move each path to PATH.1 (replacing an older PATH.1): the writer opens PATH again next
    time (pgBackRest per command, the alert sink per notification)."""
    if not test:
        for path in paths:
            os.replace(path, path + ".1")
    return list(paths)


def run(opts, inv, fan_out, retention_days=None, max_bytes=None, test=False, now=None):
    """The whole cleanup; ``fan_out(minions, fun, kwarg)`` asks the nodes (the runner's
    Salt client). Bad arguments are refused before anything is removed."""
    retention_days = D.PATROL["retention_days"] if retention_days is None else retention_days
    max_bytes = max_bytes_of(max_bytes)
    now = now if now is not None else time.time()
    base = pigsty_patrol_store.base_dir(opts)
    removed = pigsty_patrol_store.prune(base, now, retention_days,
                                        set(inv.get("clusters") or {}), test=test)
    minions = set(pigsty_inventory.meta_nodes(inv))
    for name in inv.get("clusters") or {}:
        if pigsty_inventory.cluster_vars(inv, name).get("pgbackrest_enabled"):
            minions.update(m["minion"] for m in pigsty_inventory.cluster_members(inv, name)
                           if m.get("minion"))
    answers = fan_out(sorted(minions), "pigsty_cleanup.logs",
                      {"max_bytes": max_bytes, "test": bool(test)}) if minions else {}
    nodes = {m: answers.get(m, "no answer") for m in sorted(minions)}
    failed = sorted(m for m, a in nodes.items() if not isinstance(a, dict))
    rotated = sum(len(a.get("rotated") or []) for a in nodes.values() if isinstance(a, dict))
    verb = "would be" if test else ""
    comment = "%d patrol report%s %s removed (older than %d days); %d log file%s %s rotated " \
              "(over %s)%s" % (
                  len(removed), "" if len(removed) == 1 else "s", verb or "", retention_days,
                  rotated, "" if rotated == 1 else "s", verb or "",
                  pigsty_patrol.size(max_bytes),
                  "; no answer from %s" % ", ".join(failed) if failed else "")
    return {"result": None if test else not failed, "comment": " ".join(comment.split()),
            "reports_removed": removed, "nodes": nodes, "not_here": NOT_DUPLICATED}
