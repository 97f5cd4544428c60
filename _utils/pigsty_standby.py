"""Standby clusters (Pigsty's ``pg_upstream`` / ``pg_delay``): a cluster whose primary member
names, with ``pg_upstream``, an address of another cluster of the inventory (one of its
members, or its VIP). Patroni bootstraps such a cluster as a standby cluster: its leader is a
*standby leader* that streams from the upstream (and applies WAL ``pg_delay`` late: Pigsty's
``pg-delay``), its own replicas stream from the standby leader. It is a physical copy of the
upstream, read-only, until ``salt-run pigsty_ha.promote`` makes it a cluster of its own.

Choices (where Pigsty leaves it open):
- ``pg_upstream`` is taken on the member with ``pg_role: primary`` only (Pigsty's place for
  it); on any other member it would mean a cascaded replica, which is not built: refused.
- ``pg_delay`` (on that member or in the cluster's vars; an integer of seconds or a
  PostgreSQL duration such as ``1h``, ``30min``, ``1d``) becomes the standby leader's
  ``recovery_min_apply_delay``. Only the standby leader is delayed (Patroni sets it on the
  leader): the replicas of a delayed standby cluster stream what the leader received.
- The upstream must be a cluster of the same inventory (its address a member's or its VIP),
  itself not a standby cluster, with the same major version. A physical copy has the
  upstream's roles, so the system users (dbsu, admin, replication, monitor) and their
  passwords must be the upstream's: the full view's validation refuses a difference.

Pure Python (no Salt imports).
"""
import re

import pigsty_model

# PostgreSQL's time units for recovery_min_apply_delay (an integer with a unit)
DELAY_RE = re.compile(r"(\d+)\s*(ms|s|min|h|d)")
DELAY_EXPECTED = ("expected an integer of seconds >= 0 or a PostgreSQL duration such as 30s, "
                  "10min, 1h, 1d")
# what a copy must share with its upstream: the physical copy holds the upstream's roles
SHARED_SYSTEM_PARAMS = ("pg_dbsu", "pg_admin_username", "pg_admin_password",
                        "pg_replication_username", "pg_replication_password",
                        "pg_monitor_username", "pg_monitor_password")


def delay_setting(value):
    """``pg_delay`` as recovery_min_apply_delay ("3600s", "1h"), None for no delay; ValueError
    (with what was expected) when it is not one."""
    if isinstance(value, bool):
        raise ValueError("%s, got %r" % (DELAY_EXPECTED, value))
    if value in (None, "", 0, "0"):
        return None
    if isinstance(value, int):
        if value < 0:
            raise ValueError("%s, got %r" % (DELAY_EXPECTED, value))
        return "%ds" % value
    text = str(value).strip()
    if text.isdigit():
        return None if int(text) == 0 else "%ss" % int(text)
    match = DELAY_RE.fullmatch(text)
    if not match:
        raise ValueError("%s, got %r" % (DELAY_EXPECTED, value))
    return None if int(match.group(1)) == 0 else "%s%s" % (int(match.group(1)), match.group(2))


def names_a_source(cls):
    """Whether a cluster's raw entry has what makes it a copy of another cluster, or may
    (pg_upstream or pg_delay on a member, pg_delay or pg_pitr in its vars): only those are
    checked against the other clusters."""
    cvars = cls.get("vars") if isinstance(cls.get("vars"), dict) else {}
    hosts = cls.get("hosts") if isinstance(cls.get("hosts"), dict) else {}
    return ("pg_delay" in cvars or "pg_pitr" in cvars or
            any(isinstance(m, dict) and ("pg_upstream" in m or "pg_delay" in m) for m in hosts.values()))


def _primary_entry(idx, name):
    """The raw host entry of the member pillar calls primary, or {}."""
    cls = idx.clusters_raw.get(name)
    hosts = cls.get("hosts") if isinstance(cls, dict) else None
    for member in (hosts or {}).values() if isinstance(hosts, dict) else ():
        if isinstance(member, dict) and member.get("pg_role") == "primary":
            return member
    return {}


def upstream_address(inv, name):
    """The ``pg_upstream`` of cluster ``name``'s primary member (a string), or None."""
    value = _primary_entry(pigsty_model.index(inv), name).get("pg_upstream")
    return None if value in (None, "") else str(value)


def owner_of_address(inv, address):
    """The cluster that ``address`` belongs to: (cluster, "member <instance>" | "VIP"), or
    (None, None)."""
    idx = pigsty_model.index(inv)
    found = idx.host_owner.get(str(address))
    if found:
        cls = idx.cluster(found[0])
        member = next((m for m in cls.members if m["ip"] == str(address)), None)
        return found[0], "member %s" % (member["pg_instance"] if member else address)
    for cls in idx.clusters():
        if cls.vip is not None and cls.vip.ip == str(address):
            return cls.name, "VIP"
    return None, None


def standby_of(inv, name):
    """What a standby cluster streams from: {"cluster", "host", "port", "delay", "via"} or
    None when ``name`` is not a standby cluster (or its upstream is not resolvable: the
    validation names that)."""
    address = upstream_address(inv, name)
    if address is None:
        return None
    idx = pigsty_model.index(inv)
    upstream, via = owner_of_address(idx, address)
    if upstream is None or upstream == name:
        return None
    entry = _primary_entry(idx, name)
    raw_delay = entry.get("pg_delay", idx.cluster(name).conf.get("pg_delay"))
    try:
        delay = delay_setting(raw_delay)
    except ValueError:
        delay = None
    return {"cluster": upstream, "host": address, "port": idx.cluster(upstream).conf["pg_port"],
            "delay": delay, "via": via}


def patroni_standby_cluster(standby):
    """Patroni's ``bootstrap.dcs.standby_cluster`` for a standby_of() answer (None: none)."""
    if not standby:
        return None
    section = {"host": standby["host"], "port": standby["port"],
               "create_replica_methods": ["basebackup"]}
    if standby["delay"]:
        section["recovery_min_apply_delay"] = standby["delay"]
    return section


def host_problems(mpath, member):
    """The checks of one host entry's pg_upstream / pg_delay that need nothing else."""
    problems = []
    role = member.get("pg_role")
    if member.get("pg_upstream") not in (None, "") and role != "primary":
        problems.append("%s:pg_upstream: on a %s: cascaded replicas are not built (a standby "
                        "cluster names its upstream on its member with pg_role: primary)"
                        % (mpath, role))
    if "pg_delay" in member:
        try:
            delay = delay_setting(member["pg_delay"])
        except ValueError as exc:
            problems.append("%s:pg_delay: %s" % (mpath, exc))
        else:
            if delay and (role != "primary" or member.get("pg_upstream") in (None, "")):
                problems.append("%s:pg_delay: a delay applies to a standby cluster's leader "
                                "only (expected pg_upstream on this member, with pg_role: primary)"
                                % mpath)
    return problems


def global_problems(gvars):
    """The global pg_delay (the standby clusters' default): its form."""
    try:
        delay_setting(gvars.get("pg_delay"))
    except ValueError as exc:
        return ["pigsty:vars:pg_delay: %s" % exc]
    return []


def cluster_problems(inv, name, private_names):
    """Checks of a standby cluster against its upstream (the inventory's other clusters).
    ``private_names``: clusters whose private part this pillar holds (None: all): the shared
    system users are compared only when both parts are there."""
    idx = pigsty_model.index(inv)
    address = upstream_address(idx, name)
    vpath = "pigsty:clusters:%s:vars" % name
    problems = []
    if address is None:         # (no resolved parameters for a cluster that is not a standby)
        cls = idx.clusters_raw.get(name)
        cvars = cls.get("vars") if isinstance(cls, dict) else None
        cvars = cvars if isinstance(cvars, dict) else {}
        try:        # a global pg_delay is the standby clusters' default (checked once, globally)
            if delay_setting(cvars.get("pg_delay")):
                problems.append("%s:pg_delay: a delay applies to a standby cluster only (expected "
                                "pg_upstream on %s's member with pg_role: primary)" % (vpath, name))
        except ValueError as exc:
            problems.append("%s:pg_delay: %s" % (vpath, exc))
        return problems
    primary = idx.cluster(name).primary
    upath = "pigsty:clusters:%s:hosts:%s:pg_upstream" % (name, primary["ip"] if primary else "?")
    upstream, _via = owner_of_address(idx, address)
    if upstream is None:
        return problems + ["%s: %r is not a member's address or the VIP of a cluster of the "
                           "inventory (expected the upstream cluster's primary, a member or its "
                           "VIP)" % (upath, address)]
    if upstream == name:
        return problems + ["%s: %s is this cluster's own address (expected another cluster's)"
                           % (upath, address)]
    if upstream_address(idx, upstream) is not None:
        problems.append("%s: %s belongs to %s, itself a standby cluster: cascaded standby "
                        "clusters are not built (name %s's upstream instead)" % (
                            upath, address, upstream, upstream))
    return problems + copy_problems(idx, name, upstream, private_names)


def copy_problems(inv, name, source, private_names):
    """A physical copy of ``source`` (a standby cluster, a clone) runs its major version and
    has its roles: the system users and their passwords must be the source's. Those are
    compared only where both private parts are in the pillar (``private_names`` None: all)."""
    idx = pigsty_model.index(inv)
    conf, sconf = idx.cluster(name).conf, idx.cluster(source).conf
    vpath = "pigsty:clusters:%s:vars" % name
    problems = []
    if sconf.get("pg_version") != conf.get("pg_version"):
        problems.append("%s:pg_version: %s, the source %s runs %s (a physical copy needs the "
                        "same major version)" % (vpath, conf.get("pg_version"), source,
                                                 sconf.get("pg_version")))
    if private_names is None or (name in private_names and source in private_names):
        for key in SHARED_SYSTEM_PARAMS:
            if conf.get(key) != sconf.get(key):
                problems.append("%s:%s: differs from the source %s's (a physical copy has the "
                                "source's roles: expected the same %s)"
                                % (vpath, key, source, "password" if key.endswith("password") else "name"))
    return problems


def dcs_patch(cluster, current, desired):
    """How the state converging Patroni's dynamic configuration treats ``standby_cluster``:
    (patch value or None, refusal or None, note or None). ``current`` / ``desired``: the
    section live in the DCS and the one pillar gives (None: none).

    A state never turns a cluster that runs as a primary cluster into a standby (that would
    drop its own writes since the promotion), and never promotes one (that is an operator's
    decision: salt-run pigsty_ha.promote). Between two standby sections it converges what
    pillar sets (the upstream, the delay; a delay pillar no longer sets is removed)."""
    current = current if isinstance(current, dict) and current else None
    if desired is None:
        if current is None:
            return None, None, None
        return None, None, ("%s is still a standby cluster of %s:%s although pillar names no "
                            "pg_upstream: promote it with salt-run pigsty_ha.promote cluster=%s"
                            % (cluster, current.get("host"), current.get("port"), cluster))
    if current is None:
        return None, ("%s runs as a primary cluster (promoted, or created without pg_upstream): "
                      "a state never makes it a standby again, which would drop its own writes. "
                      "Remove pg_upstream and pg_delay from %s's primary member in pillar (or remove "
                      "the cluster and create it again as a standby)" % (cluster, cluster)), None
    patch = {}
    for key, value in desired.items():
        if current.get(key) != value and str(current.get(key)) != str(value):
            patch[key] = value
    if "recovery_min_apply_delay" in current and "recovery_min_apply_delay" not in desired:
        patch["recovery_min_apply_delay"] = None          # PATCH null removes it
    return (patch or None), None, None
