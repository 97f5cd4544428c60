"""Promotion of a standby cluster (pg_upstream, pigsty_standby): it stops following its
upstream and becomes a cluster of its own, its standby leader the primary. What the runner's
``pigsty_ha.promote`` does, in order, refusing before anything when it cannot:

1. checks: the cluster has a leader, the leader is a standby leader, Patroni's dynamic
   configuration has a ``standby_cluster`` section (read only);
2. PATCH ``standby_cluster: null`` on the leader's Patroni (its own REST login): Patroni
   promotes the standby leader on its next loop; the cluster's replicas follow it as before;
3. waits (bounded) until the leader answers /primary as a writable primary;
4. reconciles the routing (HAProxy's leader services, the VIP, DNS, monitoring);
5. its first backup: the stanza in the repository and a full backup (``ctx.first_backup``),
   so the new primary's WAL has somewhere to go and the cluster can be restored from the
   start. A failure there is reported (the promotion stands: it is not undone).

Pillar still names pg_upstream afterwards: the result says to remove it (a state never makes
a promoted cluster a standby again, pigsty_standby.dcs_patch refuses to).

``ctx`` as in pigsty_ha_switchover, plus ``first_backup(cluster)`` -> result dict.
"""
import time

import salt.exceptions

import pigsty_ha_locks
import pigsty_inventory
import pigsty_patroni
import pigsty_patroni_rest

PRECHECK_TIMEOUT = 3.0
POLL_INTERVAL = 0.5


def _checks(ctx, cluster):
    """(view, refusal): the leader, its standby_cluster section, what the promotion needs."""
    _merged, inv = ctx.inventory()
    members = ctx.members(inv, cluster)
    cvars = pigsty_inventory.cluster_vars(inv, cluster)
    port, access = cvars["patroni_port"], pigsty_patroni_rest.access(cvars)
    view = {"members": members, "port": port, "access": access, "leader": None, "upstream": None}
    leader, errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, PRECHECK_TIMEOUT,
                                                access=access)
    if not leader:
        return view, "%s has no leader (%s): nothing to promote" % (cluster, "; ".join(errors[-2:]) or "no answer")
    view["leader"] = leader
    if leader.get("role") != "standby_leader":
        return view, "%s is not a standby cluster: its leader %s is a %s" % (
            cluster, leader["name"], leader.get("role"))
    try:
        config = pigsty_patroni.get_json(leader["host"], port, "/config", timeout=PRECHECK_TIMEOUT, access=access)
    except pigsty_patroni.PatroniError as exc:
        return view, "the leader %s did not give its configuration: %s" % (leader["name"], exc)
    section = config.get("standby_cluster")
    if not section:
        return view, ("%s's configuration has no standby_cluster section although %s is a standby "
                      "leader (a promotion already under way?): nothing was changed" % (cluster, leader["name"]))
    view["upstream"] = {k: section.get(k) for k in ("host", "port", "recovery_min_apply_delay") if section.get(k)}
    return view, None


def _steps(cluster, view):
    up = view["upstream"]
    return ["stop following %s:%s (Patroni: standby_cluster removed)" % (up.get("host"), up.get("port")),
            "wait until %s runs as a writable primary" % view["leader"]["name"],
            "reconcile %s's routing (HAProxy, VIP, DNS, monitoring)" % cluster,
            "its first backup: stanza and a full backup in the repository"]


def _wait_writable(host, port, access, timeout):
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = pigsty_patroni.request(host, port, "/primary", timeout=2, access=access)
            if pigsty_patroni.writable_primary(status, body):
                return True, "writable primary"
            last = "HTTP %s, role %s" % (status, body.get("role") if isinstance(body, dict) else body)
        except pigsty_patroni.PatroniError as exc:
            last = str(exc)
        time.sleep(POLL_INTERVAL)
    return False, last


def promote(ctx, cluster, test=False, timeout=120):
    """See pigsty_ha.promote (the runner's entry point)."""
    view, refusal = _checks(ctx, cluster)
    if refusal:
        out = ctx.refuse(refusal)
        if test:
            out["test"] = True
        return out
    leader, port, access = view["leader"], view["port"], view["access"]
    steps = _steps(cluster, view)
    if test:
        return {"result": None, "test": True, "cluster": cluster, "leader": leader["name"],
                "upstream": view["upstream"], "steps": steps,
                "comment": "would promote %s (%s) and stop following %s" % (
                    cluster, leader["name"], view["upstream"].get("host"))}
    t0 = time.monotonic()
    try:
        with pigsty_ha_locks.operation_lock(ctx.opts, cluster, "promotion of %s" % leader["name"],
                                            shared=ctx.shared_lock()):
            code, answer = pigsty_patroni.request(leader["host"], port, "/config", method="PATCH",
                                                  body={"standby_cluster": None}, timeout=10, access=access)
            if code != 200:
                return ctx.refuse("Patroni refused to drop standby_cluster (HTTP %s): %s; nothing "
                                  "was changed" % (code, answer))
            ok, detail = _wait_writable(leader["host"], port, access, timeout)
    except salt.exceptions.CommandExecutionError as exc:       # another operation runs
        return ctx.refuse(str(exc))
    except pigsty_patroni.PatroniError as exc:
        return ctx.refuse("the leader's Patroni did not answer the promotion (%s): nothing is "
                          "known to have changed; look at salt-run pigsty_ha.status %s" % (exc, cluster))
    promoted = round(time.monotonic() - t0, 2)
    if not ok:
        out = ctx.refuse("%s is no longer a standby cluster in the DCS, but %s did not run as a "
                         "writable primary within %ss (last: %s): look at salt-run pigsty_ha.status %s"
                         % (cluster, leader["name"], timeout, detail, cluster))
        out["steps"] = steps[:1]
        return out
    routing = ctx.reconcile(cluster)
    first = ctx.first_backup(cluster)
    result = bool(isinstance(routing, dict) and routing.get("result") is not False
                  and isinstance(first, dict) and first.get("result") is True)
    out = {"result": result, "cluster": cluster, "primary": leader["name"],
           "was_following": view["upstream"], "promoted_in": promoted,
           "reconcile": routing.get("result") if isinstance(routing, dict) else routing,
           "first_backup": {k: first.get(k) for k in ("result", "label", "comment") if k in first}
           if isinstance(first, dict) else first,
           "next": "remove pg_upstream and pg_delay from %s's primary member in pillar, then run "
                   "orch.pgsql for %s (its users and databases, services checked for the primary)"
                   % (cluster, cluster)}
    out["comment"] = "%s promoted: %s is its primary (writable after %ss)%s" % (
        cluster, leader["name"], promoted,
        "" if result else "; but %s" % ("the routing failed" if not (isinstance(routing, dict) and
                                                                   routing.get("result") is not False)
                                        else "its first backup failed: %s" % (
                                            first.get("comment") if isinstance(first, dict) else first)))
    if not result:
        out["retcode"] = 1
    return out
