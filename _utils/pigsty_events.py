"""Patroni role-change events: what the beacon observes, when it fires, and how the
reactor's runner checks a payload before acting on it.

Pure Python: the beacon, the Patroni callback, the runner and the unit tests share it.
"""
import re
import time

import pigsty_patroni

EVENT_TAG = "pigsty/patroni/change"        # suffix of the beacon's tag
CALLBACK_TAG = "pigsty/patroni/callback"   # tag the Patroni on_role_change callback sends
ROLES = ("primary", "replica", "standby_leader", "unknown", "unreachable")
INSTANCE_RE = re.compile(r"^[a-z][a-z0-9-]{0,61}-[0-9]+$")
CLUSTER_RE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
REQUIRED = ("cluster", "instance", "ip", "new_role")


def observe(status):
    """The beacon's view of a /patroni document (None = Patroni unreachable)."""
    if status is None:
        return {"role": "unreachable", "state": "unreachable", "timeline": None, "lsn": None}
    role = pigsty_patroni.normalize_role(status.get("role")) or "unknown"
    if role not in ROLES:
        role = "unknown"
    xlog = status.get("xlog") or {}
    lsn = xlog.get("location", xlog.get("replayed_location", xlog.get("received_location")))
    return {"role": role, "state": status.get("state") or "unknown",
            "timeline": status.get("timeline"), "lsn": lsn}


def changed(previous, current):
    """Which watched fields differ (role, state, timeline); the LSN alone is no event."""
    if previous is None:
        return ["role", "state", "timeline"]
    return [k for k in ("role", "state", "timeline") if previous.get(k) != current.get(k)]


def event(identity, previous, current, source="beacon", now=None):
    """The event payload: cluster, instance, node address, old and new role, timeline, LSN."""
    return {
        "cluster": identity["cluster"], "instance": identity["instance"], "ip": identity["ip"],
        "old_role": (previous or {}).get("role"), "new_role": current["role"],
        "old_state": (previous or {}).get("state"), "state": current["state"],
        "timeline": current["timeline"], "lsn": current["lsn"],
        "changed": changed(previous, current), "source": source,
        "time": now if now is not None else time.time(),
    }


def check_payload(data, clusters):
    """Problems of an event payload received by the reactor (empty list = acceptable).

    ``clusters`` maps cluster name -> {instance: ip} from the inventory: an event for an
    unknown cluster, an instance that is not a member, or an address that does not match is
    refused (forged or stale data changes nothing)."""
    if not isinstance(data, dict):
        return ["event data: expected a mapping, got %s" % type(data).__name__]
    problems = ["event data:%s: missing (expected %s)" % (k, ", ".join(REQUIRED))
                for k in REQUIRED if k not in data]
    if problems:
        return problems
    cluster, instance, ip = data["cluster"], data["instance"], data["ip"]
    if not isinstance(cluster, str) or not CLUSTER_RE.match(cluster):
        return ["event data:cluster: %r is not a cluster name" % (cluster,)]
    if cluster not in clusters:
        return ["event data:cluster: unknown cluster %r (expected one of: %s)" % (
            cluster, ", ".join(sorted(clusters)) or "none")]
    if not isinstance(instance, str) or not INSTANCE_RE.match(instance):
        return ["event data:instance: %r is not an instance name (expected CLUSTER-SEQ)" % (instance,)]
    members = clusters[cluster]
    if instance not in members:
        return ["event data:instance: %s is not a member of %s (expected one of: %s)" % (
            instance, cluster, ", ".join(sorted(members)))]
    if members[instance] != ip:
        return ["event data:ip: %r does not match %s's address %s" % (ip, instance, members[instance])]
    if data["new_role"] not in ROLES:
        return ["event data:new_role: %r (expected one of: %s)" % (data["new_role"], ", ".join(ROLES))]
    return []
