"""Pigsty's node_tune: a node tuning profile, as kernel parameters (sysctl).

Pigsty installs ``tuned`` and activates a tuned profile of its own (oltp, olap, crit, tiny).
Here a profile is a documented set of kernel parameters that the node role writes with the
same machinery as ``node_sysctl_params`` (``node.tune``: ``sysctl.present`` into
/etc/sysctl.d/90-pigsty.conf); ``node_sysctl_params`` wins over the profile, key by key.
Why not Debian 12's ``tuned``: it is a daemon (D-Bus, polkit) whose profiles also set the CPU
governor, disk schedulers and transparent huge pages through /sys, none of which a container
(the sandbox's systemd-nspawn machines) may write, and its profiles would be Pigsty's code
(not ours to copy). The sysctl values below are ours, chosen for PostgreSQL as its own
documentation and the kernel's describe these knobs:

- ``vm.swappiness``: how readily the kernel swaps anonymous memory (shared buffers, backends'
  work memory) rather than dropping page cache: low for a database, 1 where latency counts;
- ``vm.dirty_background_ratio`` / ``vm.dirty_ratio`` (% of memory): when background writeback
  starts and when a writing process is made to write itself. Lower values spread
  checkpoint writes and bound the stalls of OLTP; OLAP's bulk loads go faster with more;
- ``vm.dirty_expire_centisecs``: how old dirty data gets before writeback (crit: 10 s
  instead of 30 s, less unwritten data, steadier I/O);
- ``vm.zone_reclaim_mode = 0``: on NUMA machines, use another node's memory rather than
  evict this node's page cache (PostgreSQL relies on the page cache);
- ``net.ipv4.ip_local_port_range``: more local ports for the many outgoing connections of
  HAProxy and pgbouncer;
- ``net.core.somaxconn`` / ``net.ipv4.tcp_max_syn_backlog``: room for connection bursts.

``tiny`` (small virtual machines, the sandbox) keeps the kernel's defaults but swappiness.
``none`` (our default) sets nothing. Switching a profile off does not reset what it set
(as for node_sysctl_params: the values stay in 90-pigsty.conf until set otherwise).

Pure Python (no Salt).
"""

NONE = "none"
_NET = {"net.ipv4.ip_local_port_range": "10000 65535", "net.core.somaxconn": 65535,
        "net.ipv4.tcp_max_syn_backlog": 8192}
PROFILES = {
    "oltp": dict(_NET, **{"vm.swappiness": 1, "vm.dirty_background_ratio": 5,
                          "vm.dirty_ratio": 10, "vm.zone_reclaim_mode": 0}),
    "olap": dict(_NET, **{"vm.swappiness": 10, "vm.dirty_background_ratio": 10,
                          "vm.dirty_ratio": 40, "vm.zone_reclaim_mode": 0}),
    "crit": dict(_NET, **{"vm.swappiness": 1, "vm.dirty_background_ratio": 3,
                          "vm.dirty_ratio": 10, "vm.dirty_expire_centisecs": 1000,
                          "vm.zone_reclaim_mode": 0}),
    "tiny": {"vm.swappiness": 10},
}
CHOICES = (NONE,) + tuple(PROFILES)


def sysctl(conf):
    """The kernel parameters of a node's resolved configuration: its profile's, then
    node_sysctl_params over them."""
    out = dict(PROFILES.get(conf.get("node_tune"), {}))
    out.update(conf.get("node_sysctl_params") or {})
    return out


def problems(conf, vpath, keys=None):
    if "node_tune" not in conf or (keys is not None and "node_tune" not in keys):
        return []
    if conf["node_tune"] in CHOICES:
        return []
    return ["%s:node_tune: expected one of %s (a set of kernel parameters, see "
            "_utils/pigsty_node_tune.py), got %r" % (vpath, ", ".join(CHOICES), conf["node_tune"])]
