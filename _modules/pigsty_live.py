"""The live roles of every cluster, as the failover runner last saw them (meta nodes).

The runner records them here after a Patroni event; this module then rewrites the
cluster's Prometheus file_sd targets (role labels) and dnsmasq's records
(``<cluster>-primary``). The infra states read the same record, so a later
`state.apply infra` renders the live roles too instead of flipping them back to pillar's.

    salt meta pigsty_live.record pg-test '{"pg-test-1": "unreachable", "pg-test-2": "primary", "pg-test-3": "replica"}'
    salt meta pigsty_live.roles
"""
import logging

import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_inventory
    import pigsty_live_files
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None
    LIVE_DIR = pigsty_live_files.LIVE_DIR

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_live"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _inv():
    return pigsty_inventory.inventory(__pillar__)


def roles():
    """instance -> live role, for every cluster with a record."""
    merged = {}
    for cluster_roles in pigsty_live_files.read_all(_inv()).values():
        merged.update(cluster_roles)
    return merged


def primaries():
    """cluster -> instance that is primary in the latest record."""
    return pigsty_live_files.primaries(_inv())


def record(cluster, live, test=False):
    """Record ``live`` (instance -> role) for ``cluster``, then rewrite its Prometheus
    targets and the DNS records when they change. Returns what changed; with ``test``,
    what would change (and the targets' role labels, the ``<cluster>-primary`` address),
    writing nothing."""
    try:
        return pigsty_live_files.record(
            _inv(), cluster, live,
            lambda: __salt__["cmd.run_all"](["systemctl", "kill", "-s", "HUP", "dnsmasq"], python_shell=False),
            test=bool(test))
    except ValueError as exc:
        raise salt.exceptions.SaltInvocationError(str(exc))
