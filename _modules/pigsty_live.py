"""The live roles of every cluster, as the failover runner last saw them (meta nodes).

The runner records them here after a Patroni event; this module then rewrites the
cluster's Prometheus file_sd targets (role labels) and dnsmasq's records
(``<cluster>-primary``). The infra states read the same record, so a later
`state.apply infra` renders the live roles too instead of flipping them back to pillar's.

    salt meta pigsty_live.record pg-test '{"pg-test-1": "unreachable", "pg-test-2": "primary", "pg-test-3": "replica"}'
    salt meta pigsty_live.roles
"""
import json
import logging
import os

import salt.exceptions

import pigsty_dns
import pigsty_inventory
import pigsty_monitor

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_live"
LIVE_DIR = "/var/lib/pigsty/live"


def __virtual__():
    return __virtualname__


def _inv():
    return pigsty_inventory.inventory(__pillar__)


def _read_all():
    out = {}
    if os.path.isdir(LIVE_DIR):
        for name in sorted(os.listdir(LIVE_DIR)):
            if name.endswith(".json"):
                try:
                    with open(os.path.join(LIVE_DIR, name)) as fh:
                        out[name[:-5]] = json.load(fh)
                except (OSError, ValueError):
                    log.warning("pigsty_live: ignoring unreadable %s", name)
    clusters = _inv().get("clusters") or {}
    return {c: r for c, r in out.items() if c in clusters}     # clusters since removed: ignored


def roles():
    """instance -> live role, for every cluster with a record."""
    merged = {}
    for cluster_roles in _read_all().values():
        merged.update(cluster_roles)
    return merged


def primaries():
    """cluster -> instance that is primary in the latest record."""
    out = {}
    for cluster, cluster_roles in _read_all().items():
        primary = [i for i, r in cluster_roles.items() if r == "primary"]
        if len(primary) == 1:
            out[cluster] = primary[0]
    return out


def _write_if_changed(path, text, mode=0o644):
    try:
        with open(path) as fh:
            if fh.read() == text:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def record(cluster, live):
    """Record ``live`` (instance -> role) for ``cluster``, then rewrite its Prometheus
    targets and the DNS records when they change. Returns what changed."""
    inv = _inv()
    if not isinstance(live, dict):
        raise salt.exceptions.SaltInvocationError("live: expected {instance: role}")
    try:
        groups = pigsty_monitor.cluster_targets(inv, cluster, live)
    except ValueError as exc:
        raise salt.exceptions.SaltInvocationError(str(exc))
    changed = {"record": _write_if_changed(os.path.join(LIVE_DIR, cluster + ".json"),
                                           json.dumps(live, sort_keys=True) + "\n")}
    target_path = "%s/pgsql/%s.yml" % (pigsty_monitor.TARGET_DIR, cluster)
    changed["targets"] = False
    if os.path.isdir(os.path.dirname(target_path)):
        changed["targets"] = _write_if_changed(
            target_path, pigsty_monitor.targets_file(groups, "targets of cluster %s" % cluster))
    changed["dns"] = False
    if os.path.isdir(os.path.dirname(pigsty_dns.HOSTS_FILE)):
        text = pigsty_dns.hosts_file(pigsty_dns.records(inv, primaries()))
        changed["dns"] = _write_if_changed(pigsty_dns.HOSTS_FILE, text)
        if changed["dns"]:
            __salt__["cmd.run_all"](["systemctl", "kill", "-s", "HUP", "dnsmasq"], python_shell=False)
    return changed
