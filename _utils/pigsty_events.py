"""Patroni role-change events: what the beacon observes, when it fires, and how the
reactor's runner checks an event before acting on it.

The runner admits an event (``admit``) only when:
- its tag is the beacon's, ``salt/beacon/<minion>/patroni/pigsty/patroni/change``, and the
  ``id`` in its data (if any) is that same minion;
- that minion is the node of the instance the event names (the inventory's owner);
- the payload is well formed (``check_payload``) and small (``MAX_EVENT_BYTES``);
- that minion has not sent more than a burst of events (``RateLimiter``, shared by every
  runner process through a directory).
Refused events are counted by reason (``EventCounters``), and only the known fields, bounded,
are kept for the history (``clean``). The history is a size-bounded JSONL file with rotated
copies (``append_jsonl`` / ``read_jsonl``), found by ``history_file``, which refuses a
cluster name that is not one.

What this cannot do: Salt 3008 forwards a minion's event with the tag and data the minion
chose (it authenticates the minion's connection, not the tag), so a minion whose root is
compromised can still claim another minion's id. See docs/security.md.

Pure Python (no Salt): the beacon, the runner and the unit tests share it.
"""
import contextlib
import fcntl
import hashlib
import json
import os
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
    if not isinstance(cluster, str) or not CLUSTER_RE.fullmatch(cluster):
        return ["event data:cluster: %r is not a cluster name" % (cluster,)]
    if cluster not in clusters:
        return ["event data:cluster: unknown cluster %r (expected one of: %s)" % (
            cluster, ", ".join(sorted(clusters)) or "none")]
    if not isinstance(instance, str) or not INSTANCE_RE.fullmatch(instance):
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


# ------------------------------------------------------------------ sender and admission
TAG_RE = re.compile(r"^salt/beacon/([^/]+)/patroni/" + re.escape(EVENT_TAG) + r"$")
TAG_KEY = "_tag"                 # where the reactor puts the event's tag (reactor/patroni_change.sls)
MINION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_EVENT_BYTES = 4096           # a beacon payload is ~400 bytes
# The fields the beacon sends (``event``), plus Salt's own ``id`` and ``_stamp``, with the
# check each kept value must pass; anything else is dropped.
_ROLE_OR_NONE = lambda v: v is None or v in ROLES  # noqa: E731
KNOWN_FIELDS = {
    "cluster": lambda v: isinstance(v, str) and bool(CLUSTER_RE.fullmatch(v)),
    "instance": lambda v: isinstance(v, str) and bool(INSTANCE_RE.fullmatch(v)),
    "ip": lambda v: isinstance(v, str) and len(v) <= 15,
    "old_role": _ROLE_OR_NONE,
    "new_role": _ROLE_OR_NONE,
    "old_state": lambda v: v is None or (isinstance(v, str) and len(v) <= 40),
    "state": lambda v: v is None or (isinstance(v, str) and len(v) <= 40),
    "timeline": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "lsn": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "changed": lambda v: isinstance(v, list) and len(v) <= 3
    and all(x in ("role", "state", "timeline") for x in v),
    "source": lambda v: v in ("beacon", "callback"),
    "time": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "id": lambda v: isinstance(v, str) and bool(MINION_RE.fullmatch(v)),
    "_stamp": lambda v: isinstance(v, str) and len(v) <= 40,
    "sender": lambda v: isinstance(v, str) and bool(MINION_RE.fullmatch(v)),
}


def sender_of(tag):
    """The minion id in a beacon event's tag, or None when the tag is not the beacon's."""
    match = TAG_RE.fullmatch(tag) if isinstance(tag, str) else None
    if match is None or not MINION_RE.fullmatch(match.group(1)):
        return None
    return match.group(1)


def owners(members):
    """instance -> minion id, from {cluster: [member, ...]} as
    pigsty_inventory.cluster_members returns them."""
    return {m["pg_instance"]: m.get("minion") for ms in members.values() for m in ms}


def check_sender(sender, data, instance_owners):
    """Problems tying the event to its sender (empty list = the sender owns the instance)."""
    if sender is None:
        return ["event tag: not a Patroni beacon tag salt/beacon/<minion>/patroni/%s" % EVENT_TAG]
    if isinstance(data, dict) and "id" in data and data["id"] != sender:
        return ["event data:id: %r is not the minion of the tag (%s)" % (data["id"], sender)]
    instance = data.get("instance") if isinstance(data, dict) else None
    owner = instance_owners.get(instance)
    if owner != sender:
        return ["event: minion %s does not own instance %r (its node is %s)" % (
            sender, instance, owner or "no node of the inventory")]
    return []


def clean(data, sender=None):
    """The event as the history keeps it: known fields with valid values only, plus the
    sender. Never raises."""
    out = {k: data[k] for k, ok in KNOWN_FIELDS.items()
           if isinstance(data, dict) and k in data and ok(data[k])}
    if sender is not None:
        out["sender"] = sender
    return out


def _size(data):
    try:
        return len(json.dumps(data, default=str))
    except (TypeError, ValueError, RecursionError):
        return MAX_EVENT_BYTES + 1


def admit(event, members, state_dir, tag=None, now=None, limiter=None):
    """Decide on a beacon event the reactor passed: ``(event to act on and record, or
    None; problems)``. ``event``: the reactor's data, with the tag under ``_tag`` (or pass
    ``tag``); ``members``: {cluster: cluster_members(...)}; ``state_dir``: a directory of
    the master's (rate-limit buckets, counters). Every refusal is counted there."""
    now = time.time() if now is None else now
    tag = tag if tag is not None else (event.get(TAG_KEY) if isinstance(event, dict) else None)
    sender = sender_of(tag)
    counters = EventCounters(state_dir)
    known = {m.get("minion") for ms in members.values() for m in ms}
    if sender is None or sender not in known:
        problems = check_sender(sender, event, owners(members))
        counters.refused("unknown sender", sender if sender in known else None, now)
        return None, problems
    limiter = limiter or RateLimiter(state_dir)
    if not limiter.allow(sender, now):
        counters.refused("rate limited", sender, now)
        return None, ["event: minion %s sent more than %d events in a burst (%.1f/s "
                      "sustained): rate-limited" % (sender, limiter.burst, limiter.rate)]
    if _size(event) > MAX_EVENT_BYTES:
        counters.refused("too large", sender, now)
        return None, ["event data: larger than %d bytes" % MAX_EVENT_BYTES]
    problems = check_sender(sender, event, owners(members))
    if problems:
        counters.refused("not the owner", sender, now)
        return None, problems
    clusters = {name: {m["pg_instance"]: m["ip"] for m in ms} for name, ms in members.items()}
    problems = check_payload(event, clusters)
    if problems:
        counters.refused("bad payload", sender, now)
        return None, problems
    counters.accepted(now)
    return clean(event, sender), []


# ------------------------------------------------------------------ shared state on disk
@contextlib.contextmanager
def _locked_json(path):
    """The JSON document at ``path`` (a dict; {} when missing or unreadable), under an
    exclusive lock across processes; what the caller leaves in it is written back."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            try:
                doc = json.loads(fh.read() or "{}")
            except ValueError:
                doc = {}
            doc = doc if isinstance(doc, dict) else {}
            yield doc
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(doc, sort_keys=True))
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class RateLimiter:
    """A token bucket per key (a minion id), kept in ``directory`` so that every process
    (the reactor runs each runner call in a process of its own) shares it: ``burst`` events
    at once, then ``rate`` per second."""

    def __init__(self, directory, burst=20, rate=1.0):
        self.directory, self.burst, self.rate = directory, burst, float(rate)

    def _path(self, key):
        digest = hashlib.sha256(str(key).encode("utf-8")).hexdigest()[:32]
        return os.path.join(self.directory, "ratelimit", digest + ".json")

    def allow(self, key, now=None):
        now = time.time() if now is None else now
        with _locked_json(self._path(key)) as bucket:
            tokens = bucket.get("tokens", self.burst)
            last = bucket.get("time", now)
            if not isinstance(tokens, (int, float)) or not isinstance(last, (int, float)):
                tokens, last = self.burst, now
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
            allowed = tokens >= 1
            bucket.update(tokens=tokens - 1 if allowed else tokens, time=now)
        return allowed


class EventCounters:
    """Counts of admitted and refused events (by reason, and by minion for the inventory's
    minions), with the last refusal, in ``directory``/counters.json."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "counters.json")

    def refused(self, reason, minion=None, now=None):
        with _locked_json(self.path) as doc:
            refused = doc.setdefault("refused", {})
            refused[reason] = refused.get(reason, 0) + 1
            by_minion = doc.setdefault("refused_by_minion", {})
            key = minion or "(not an inventory minion)"
            by_minion[key] = by_minion.get(key, 0) + 1
            doc["last_refused"] = {"time": now or time.time(), "reason": reason, "minion": key}

    def accepted(self, now=None):
        with _locked_json(self.path) as doc:
            doc["accepted"] = doc.get("accepted", 0) + 1
            doc["last_accepted"] = now or time.time()

    def read(self):
        try:
            with open(self.path, encoding="utf-8") as fh:
                doc = json.load(fh)
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}
