"""Log collection of this node: what node.logs (systemd-journal-upload) and infra.logs
(systemd-journal-remote on the first meta node) configure, from pillar.

    salt node-1 pigsty_logs.config
"""
try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_infra
    import pigsty_inventory
    import pigsty_logs
    import pigsty_pki
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "pigsty_logs"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def config():
    """This node's part in log collection: ``enabled``, the ``sink`` every node uploads to
    (the first meta node's journal-remote, HTTPS), whether this node ``is_sink``, the
    certificate files of node.pki, and the retention parameters."""
    inv = pigsty_inventory.inventory(__pillar__)
    gvars = pigsty_inventory.global_vars(inv)
    node = (inv.get("nodes") or {}).get(__opts__["id"]) or {}
    sink = pigsty_logs.sink(pigsty_infra.meta_ips(inv), gvars)
    return {
        "enabled": sink is not None,
        "sink": sink,
        "is_sink": bool(sink) and str(node.get("ip")) == sink["ip"],
        "pki": pigsty_pki.paths(),
        "remote_dir": pigsty_logs.REMOTE_DIR,
        "retention_size": gvars["log_retention_size"],
        "retention_time": gvars["log_retention_time"],
    }
