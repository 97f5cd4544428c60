"""Pigsty-on-Salt operator runner.

    salt-run pigsty.validate          validate the whole inventory (every cluster, with its
                                      private part), as the master sees it: a one-line
                                      summary and the problems
    salt-run pigsty.identity node-1   the grains a node gets from the inventory
"""
import logging
import time

import salt.exceptions

import pigsty_fanout
import pigsty_inventory
import pigsty_patroni
import pigsty_pillar

log = logging.getLogger(__name__)

__virtualname__ = "pigsty"


def __virtual__():
    return __virtualname__


def _compile(minion_id):
    return pigsty_pillar.compile_for(__opts__, minion_id)


def _full_inventory():
    return pigsty_pillar.full_inventory(__opts__)


def validate(verbose=False):
    """Validate the whole Pigsty inventory: a one-line summary, and every problem (each
    naming the pillar path of the field and what was expected); exits non-zero when it is
    invalid. ``verbose=True`` also lists every cluster's instances.

    CLI example::

        salt-run pigsty.validate
        salt-run pigsty.validate verbose=True
    """
    merged, problems = _full_inventory()
    problems += pigsty_inventory.validate(merged)
    try:
        idx = pigsty_inventory.index(pigsty_inventory.inventory(merged))
    except pigsty_inventory.InventoryError:
        idx = pigsty_inventory.index({})
    summary = _summary(idx, problems)
    if problems:
        __context__["retcode"] = 1
        return {"result": False, "retcode": 1, "summary": summary, "problems": problems}
    ret = {"result": True, "summary": summary, "nodes": len(idx.nodes),
           "meta": list(idx.meta_nodes)}
    if verbose:
        ret["clusters"] = {cls.name: [m["pg_instance"] for m in cls.members]
                           for cls in idx.clusters()}
    return ret


def _summary(idx, problems):
    """One line: valid or not, how many problems in how many clusters, the inventory's size."""
    size = "%d cluster%s, %d instance%s, %d node%s" % _plural(
        len(idx.cluster_names), len(idx.host_owner), len(idx.nodes))
    size += " (meta: %s)" % (", ".join(idx.meta_nodes) or "none")
    if not problems:
        return "inventory valid: " + size
    clusters = {p.split(":", 3)[2] for p in problems
                if p.startswith("pigsty:clusters:") and p.count(":") >= 3}
    return "inventory invalid: %d problem%s%s; %s" % (
        len(problems), "" if len(problems) == 1 else "s",
        " in %d cluster%s" % (len(clusters), "" if len(clusters) == 1 else "s") if clusters else "",
        size)


def _plural(*counts):
    out = ()
    for n in counts:
        out += (n, "" if n == 1 else "s")
    return out


def identity(minion_id):
    """The identity grains the inventory gives a node.

    CLI example::

        salt-run pigsty.identity node-1
    """
    return pigsty_inventory.identity(_compile(minion_id), minion_id)


def _progress(message):
    """Show a progress line in `salt-run` / orchestrate output as the step runs."""
    log.info(message)
    try:
        __jid_event__.fire_event({"message": message}, "progress")
    except NameError:
        pass


def _require_cluster(inv, name):
    if not isinstance(name, str) or name not in (inv.get("clusters") or {}):
        raise salt.exceptions.SaltInvocationError(
            "pg_cluster: %r is not a cluster of the inventory (expected one of: %s)" % (
                name, ", ".join(sorted(inv.get("clusters") or {})) or "none"))


def cluster(name):
    """A cluster's members as the inventory defines them (minion ids, roles) and the meta
    nodes; used by the orchestrations to target each step.

    CLI example::

        salt-run pigsty.cluster pg-test
    """
    merged, _problems = _full_inventory()
    inv = pigsty_inventory.index(pigsty_inventory.inventory(merged))
    _require_cluster(inv, name)
    members = pigsty_inventory.cluster_members(inv, name)
    return {
        "name": name,
        "members": members,
        "primary": [m["minion"] for m in members if m["pg_role"] == "primary"],
        "replicas": [m["minion"] for m in members if m["pg_role"] != "primary"],
        "minions": [m["minion"] for m in members],
        "meta": pigsty_inventory.meta_nodes(inv),
        "patroni_port": pigsty_inventory.cluster_vars(inv, name)["patroni_port"],
    }


def _live_leader(info, timeout=2):
    hosts = [m["ip"] for m in info["members"]]
    return pigsty_patroni.find_leader(hosts, info["patroni_port"], timeout=timeout)


def _unconfirmed(info, members):
    """Why each of ``members`` cannot be confirmed safe to remove: its Patroni must answer as
    a member that is not the leader, or its minion must say that Patroni is stopped."""
    unanswered, why = [], []
    for m in members:
        try:
            st = pigsty_patroni.get_json(m["ip"], info["patroni_port"], "/patroni", timeout=2)
        except pigsty_patroni.PatroniError:
            unanswered.append(m)
            continue
        if pigsty_patroni.normalize_role(st.get("role")) in ("primary", "standby_leader"):
            why.append("%s answers as %s" % (m["pg_instance"], st.get("role")))
    if unanswered:
        running = pigsty_fanout.fan_out(__opts__, [m["minion"] for m in unanswered], "service.status",
                                        ["patroni"], timeout=10)
        for m in unanswered:
            state = running.get(m["minion"])
            if state is True:
                why.append("%s: Patroni runs but its REST API does not answer" % m["pg_instance"])
            elif state is not False:
                why.append("%s: Patroni does not answer and minion %s cannot confirm it is stopped (%s)" % (
                    m["pg_instance"], m["minion"], "no answer" if state is None else state))
    return why


def wait_leader(name, timeout=120):
    """Wait (bounded) until cluster ``name`` has a leader; fails after ``timeout`` seconds.

    CLI example::

        salt-run pigsty.wait_leader pg-test timeout=60
    """
    info = cluster(name)
    deadline = time.monotonic() + float(timeout)
    errors = []
    while time.monotonic() < deadline:
        found, errors = _live_leader(info)
        if found:
            _progress("%s: leader is %s (timeline %s)" % (name, found["name"], found.get("timeline")))
            return {"result": True, "leader": found["name"]}
        time.sleep(1)
    __context__["retcode"] = 1
    return {"result": False, "retcode": 1,
            "comment": "%s has no leader after %ss: %s" % (name, timeout, "; ".join(errors[-3:]))}


def removal_plan(name, instances=None, force=False):
    """Check a removal request and order it: replicas first, the leader last.

    Refuses (retcode 1, nothing done) to remove a whole cluster, or the instance that is
    its running leader, unless ``force=True``; refuses instances that are not members.
    Fails closed: without ``force``, every instance to remove must answer through Patroni as
    a non-leader, or its minion must confirm that Patroni is stopped.

    CLI example::

        salt-run pigsty.removal_plan pg-test instances='[pg-test-3]'
    """
    info = cluster(name)
    by_instance = {m["pg_instance"]: m for m in info["members"]}
    if instances is None:
        targets = list(by_instance)
    elif isinstance(instances, (list, tuple)) and instances:
        unknown = [i for i in instances if i not in by_instance]
        if unknown:
            __context__["retcode"] = 1
            return {"result": False, "retcode": 1, "comment":
                    "pg_instances: %s not member(s) of %s (expected some of: %s)" % (
                        ", ".join(map(str, unknown)), name, ", ".join(sorted(by_instance)))}
        targets = list(instances)
    else:
        raise salt.exceptions.SaltInvocationError(
            "pg_instances: expected a non-empty list of instance names, got %r" % (instances,))
    leader, _errors = _live_leader(info)
    whole = set(targets) == set(by_instance)
    if leader and leader["name"] in targets and not force:
        __context__["retcode"] = 1
        what = "cluster %s" % name if whole else "instance %s" % leader["name"]
        return {"result": False, "retcode": 1, "comment":
                "refusing to remove %s: %s is its running primary (pass force=True / "
                "pillar pg_rm_force: true to remove it anyway)" % (what, leader["name"])}
    if not force:
        # fail closed: a member whose Patroni does not answer may still be a running primary
        # (or hold the only copy of recent data); it is removed only once its minion confirms
        # that Patroni is stopped there
        unsure = _unconfirmed(info, [by_instance[i] for i in targets])
        if unsure:
            __context__["retcode"] = 1
            return {"result": False, "retcode": 1, "comment":
                    "refusing to remove %s: %s (nothing was removed; start Patroni there, or stop it and "
                    "check again, or pass force=True / pillar pg_rm_force: true)" % (
                        "cluster %s" % name if whole else ", ".join(targets), "; ".join(unsure))}
    ordered = sorted(targets, key=lambda i: (leader is not None and i == leader["name"], i))
    _progress("%s: removal order %s" % (name, ", ".join(ordered)))
    return {"result": True, "cluster": name, "whole_cluster": whole,
            "minions": [by_instance[i]["minion"] for i in ordered], "instances": ordered,
            "leader": leader["name"] if leader else None}
