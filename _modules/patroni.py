"""Patroni through its REST API: status, members, leader, dynamic config, switchover,
restart, reload, reinit. Every call is bounded by a total timeout (default 2 s); reads
that may meet a cluster still bootstrapping take ``wait`` (seconds to keep asking).

    salt node-1 patroni.members
    salt node-1 patroni.config
    salt node-1 patroni.switchover candidate=pg-test-2

Over HTTPS, verified against the Pigsty CA, with the cluster's login from pillar for the
unsafe methods (_utils/pigsty_patroni_rest.py); the password never appears in a result,
an error or a log line.
"""
import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_local
    import pigsty_patroni
    import pigsty_patroni_rest
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "patroni"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _port(port):
    return int(port or pigsty_local.setting(__salt__, "patroni_port", "patroni.port"))


def _access():
    return pigsty_patroni_rest.node_access(__salt__)


def _get(path, host, port, timeout, wait=0):
    try:
        return pigsty_patroni.get_json(host, _port(port), path, timeout=timeout, wait=float(wait),
                                       access=_access())
    except pigsty_patroni.PatroniError as exc:
        raise salt.exceptions.CommandExecutionError(str(exc))


def status(host="127.0.0.1", port=None, timeout=2):
    """This node's Patroni status (GET /patroni): state, role, timeline, xlog."""
    doc = _get("/patroni", host, port, timeout)
    doc["role"] = pigsty_patroni.normalize_role(doc.get("role"))
    return doc


def members(host="127.0.0.1", port=None, timeout=2, wait=0):
    """The cluster's members: name, role (primary/replica/...), state, lag, timeline."""
    return pigsty_patroni.members(_get("/cluster", host, port, timeout, wait))


def leader(host="127.0.0.1", port=None, timeout=2):
    """The current leader member, or None."""
    return pigsty_patroni.leader(_get("/cluster", host, port, timeout))


def config(host="127.0.0.1", port=None, timeout=2, wait=0):
    """The dynamic (DCS) configuration (GET /config). With ``wait`` seconds, a Patroni that
    does not answer yet, or answers 502/503 (no configuration in the DCS while the cluster
    bootstraps), is asked again until ``wait`` has passed."""
    return _get("/config", host, port, timeout, wait)


def config_patch(patch, host="127.0.0.1", port=None, timeout=5):
    """PATCH the dynamic configuration; returns the new configuration."""
    if not isinstance(patch, dict) or not patch:
        raise salt.exceptions.SaltInvocationError("patch: expected a non-empty mapping")
    return _post("/config", patch, host, port, timeout, method="PATCH")


def _post(path, body, host, port, timeout, method="POST"):
    try:
        code, doc = pigsty_patroni.request(host, _port(port), path, method=method, body=body,
                                           timeout=timeout, access=_access())
    except pigsty_patroni.PatroniError as exc:
        raise salt.exceptions.CommandExecutionError(str(exc))
    if code not in (200, 202):
        raise salt.exceptions.CommandExecutionError(
            "Patroni %s %s refused (HTTP %s): %s" % (method, path, code, doc))
    return doc


def switchover(candidate=None, leader=None, host="127.0.0.1", port=None, timeout=30):
    """Planned switchover to ``candidate`` (instance name); the current leader by default."""
    current = __salt__["patroni.leader"](host=host, port=port)
    if not current:
        raise salt.exceptions.CommandExecutionError("cluster has no leader: use failover")
    body = {"leader": leader or current["name"]}
    if candidate:
        body["candidate"] = candidate
    return _post("/switchover", body, host, port, timeout)


def restart(host="127.0.0.1", port=None, timeout=60):
    """Restart Postgres on this member through Patroni."""
    return _post("/restart", {}, host, port, timeout)


def reload(host="127.0.0.1", port=None, timeout=10):
    """Make Patroni re-read its configuration file (no Postgres restart)."""
    return _post("/reload", None, host, port, timeout)


def reinit(host="127.0.0.1", port=None, timeout=60):
    """Re-create this replica from the leader."""
    return _post("/reinitialize", {}, host, port, timeout)
