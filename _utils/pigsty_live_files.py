"""The files the failover runner's live view ends up in on a meta node: the record of live
roles per cluster, the cluster's Prometheus file_sd targets (role labels) and dnsmasq's
hosts file (``<cluster>-primary``). Shared by the pigsty_live execution module (any meta
node, through Salt) and the pigsty_ha runner (the meta node the master runs on, directly,
which saves a Salt round trip on every failover). Standard library and _utils only.
"""
import json
import logging
import os

import pigsty_dns
import pigsty_model
import pigsty_monitor
import pigsty_patroni

log = logging.getLogger(__name__)

LIVE_DIR = "/var/lib/pigsty/live"


def read_all(inv, live_dir=LIVE_DIR):
    """cluster -> {instance: role} of the recorded clusters that are still in ``inv``."""
    out = {}
    if os.path.isdir(live_dir):
        for name in sorted(os.listdir(live_dir)):
            if name.endswith(".json"):
                try:
                    with open(os.path.join(live_dir, name)) as fh:
                        out[name[:-5]] = json.load(fh)
                except (OSError, ValueError):
                    log.warning("pigsty_live: ignoring unreadable %s", name)
    clusters = inv.get("clusters") or {}
    return {c: r for c, r in out.items() if c in clusters}     # clusters since removed: ignored


def primaries(inv, live_dir=LIVE_DIR, cluster=None, live=None):
    """cluster -> instance that is primary (or a standby cluster's standby leader) in the
    latest record; with ``cluster`` and
    ``live``, that cluster as ``live`` would record it (a dry run writes no record)."""
    recorded = read_all(inv, live_dir)
    if cluster is not None:
        recorded[cluster] = live
    out = {}
    for name, cluster_roles in recorded.items():
        primary = [i for i, r in cluster_roles.items() if r in pigsty_patroni.LEADER_ROLES]
        if len(primary) == 1:
            out[name] = primary[0]
    return out


def differs(path, text):
    """True when ``path`` does not hold ``text`` (missing or other content)."""
    try:
        with open(path) as fh:
            return fh.read() != text
    except OSError:
        return True


def write_if_changed(path, text, mode=0o644):
    if not differs(path, text):
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def record(inv, cluster, live, reload_dns, live_dir=LIVE_DIR, target_dir=None, hosts_file=None, test=False):
    """Record ``live`` (instance -> role) for ``cluster``, then rewrite its Prometheus
    targets and the DNS hosts file when they change (``reload_dns()`` after a DNS change).
    Raises ValueError for a cluster or instance the inventory does not know. Returns
    {"record", "targets", "dns"}: whether each changed. ``test``: whether each would
    change, with the role labels of the targets and the ``<cluster>-primary`` address;
    nothing is written and DNS is not reloaded."""
    if not isinstance(live, dict):
        raise ValueError("live: expected {instance: role}, got %r" % (live,))
    inv = pigsty_model.index(inv)           # one O(N) pass for the targets and DNS below
    groups = pigsty_monitor.cluster_targets(inv, cluster, live)
    target_dir = target_dir or pigsty_monitor.TARGET_DIR
    hosts_file = hosts_file or pigsty_dns.HOSTS_FILE
    write = (lambda path, text: differs(path, text)) if test else write_if_changed
    changed = {"record": write(os.path.join(live_dir, cluster + ".json"), json.dumps(live, sort_keys=True) + "\n")}
    target_path = pigsty_monitor.target_path(cluster, target_dir)
    changed["targets"] = False
    if os.path.isdir(os.path.dirname(target_path)):
        changed["targets"] = write(
            target_path, pigsty_monitor.targets_file(groups, "targets of cluster %s" % cluster))
    changed["dns"] = False
    recs = pigsty_dns.records(inv, primaries(inv, live_dir, cluster, live))
    if os.path.isdir(os.path.dirname(hosts_file)):
        changed["dns"] = write(hosts_file, pigsty_dns.hosts_file(recs))
        if changed["dns"] and not test:
            reload_dns()
    if test:
        changed["test"] = True
        changed["labels"] = {g["labels"]["ins"]: g["labels"]["role"] for g in groups
                             if isinstance(g.get("labels"), dict) and "ins" in g["labels"]}
        changed["primary_dns"] = dict(recs).get("%s-primary" % cluster)
    return changed
