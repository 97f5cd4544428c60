"""Planned switchover and manual failover of a cluster, from the master.

``ctx`` gives what the runner binds: ``inventory()`` -> (merged, inv), ``members(inv,
cluster)``, ``fan(minions, fun, arg=None, kwarg=None, timeout=...)``, ``reconcile(cluster)``,
``refuse(reason)`` and ``opts``. One planned operation of a cluster runs at a time
(pigsty_ha_locks.operation_lock): a second one is refused at once, before anything.
"""
import time

import salt.exceptions

import pigsty_ha_locks
import pigsty_ha_steps
import pigsty_haproxy
import pigsty_inventory
import pigsty_patroni
import pigsty_patroni_rest

REST_TIMEOUT = 0.5
# The checks before a planned operation touch nothing and keep no client waiting: they can
# wait for a busy Patroni (its REST API over TLS on a loaded node answered /cluster in more
# than 0.5 s in the sandbox, and the switchover was refused for it).
PRECHECK_TIMEOUT = 3.0


def takeover_candidates(leader, port, candidate, max_lag, access=None):
    """The replicas that may take over from ``leader`` (best first), why the others may not,
    and the reason to refuse ``candidate`` (None: it may, or no candidate was named)."""
    try:
        doc = pigsty_patroni.get_json(leader["host"], port, "/cluster", timeout=PRECHECK_TIMEOUT, access=access)
        leader_status = pigsty_patroni.get_json(leader["host"], port, "/patroni", timeout=PRECHECK_TIMEOUT,
                                                access=access)
    except pigsty_patroni.PatroniError as exc:
        return [], {}, "the leader %s did not answer: %s" % (leader["name"], exc)
    healthy, why = pigsty_patroni.switchover_candidates(doc, leader_status, max_lag)
    if candidate is None:
        return healthy, why, None
    if candidate == leader["name"]:
        return healthy, why, "candidate %s is the leader already" % candidate
    if candidate not in [name for name, _lag in healthy]:
        return healthy, why, "candidate %s cannot take over: %s" % (
            candidate, why.get(candidate, "not a member of the cluster in Patroni"))
    return healthy, why, None


def _leftovers(ctx, members, old, forwarders, leader_be, pgb_be):
    """Release what an earlier, finished or interrupted, hand-off left in HAProxy: servers
    drained or with checks held whose member no longer forwards clients. The current
    primary is given back to its checks as a primary. Returns what was released."""
    views = ctx.fan([m["minion"] for m in members], "pigsty_haproxy.servers")
    held = set()
    for view in views.values():
        if isinstance(view, dict):
            held.update(pigsty_haproxy.held_servers(view))
    busy = {m["pg_instance"] for m in forwarders}
    cleaned = []
    for m in members:
        name = m["pg_instance"]
        if name in held and name not in busy:
            cmds = pigsty_haproxy.handoff_release(leader_be, pgb_be, name, name == old["pg_instance"])
            ctx.fan([x["minion"] for x in members], "pigsty_haproxy.run", [cmds])
            cleaned.append(name)
    return cleaned


def _running_members(leader, port, access, members):
    """The members whose Patroni is running (in the leader's view of the cluster): their
    nodes are up, so their HAProxy may carry sessions. All members when the leader does not
    say (the safe side)."""
    try:
        doc = pigsty_patroni.get_json(leader["host"], port, "/cluster", timeout=PRECHECK_TIMEOUT, access=access)
        running = {m["name"] for m in pigsty_patroni.members(doc) if m.get("state") != "stopped"}
    except (pigsty_patroni.PatroniError, KeyError, TypeError, ValueError):
        return list(members)
    return [m for m in members if m["pg_instance"] in running]


def _hold(ctx, members, old, leader, port, access, leader_be):
    """Hold the old primary's health checks in every member's HAProxy; ask a second time the
    running members whose minion did not confirm (Salt's publication is not a delivery: a
    minion whose connection to the master had not yet noticed a healed partition missed
    jobs for minutes in the sandbox). Returns the running members' minions that did not
    confirm either time (empty: held everywhere it matters)."""
    cmds = pigsty_haproxy.handoff_hold(leader_be, old["pg_instance"])
    answers = ctx.fan([m["minion"] for m in members], "pigsty_haproxy.run", [cmds])
    must = [m["minion"] for m in _running_members(leader, port, access, members)]
    missing = [n for n in must if not isinstance(answers.get(n), dict)]
    if missing:
        again = ctx.fan(missing, "pigsty_haproxy.run", [cmds])
        missing = [n for n in missing if not isinstance(again.get(n), dict)]
    return missing


def switchover(ctx, cluster, candidate=None, handoff=True, early_release=True, max_lag=1048576):
    """See pigsty_ha.switchover (the runner's entry point)."""
    merged, inv = ctx.inventory()
    members = ctx.members(inv, cluster)
    cvars = pigsty_inventory.cluster_vars(inv, cluster)
    port, access = cvars["patroni_port"], pigsty_patroni_rest.access(cvars)    # HTTPS, the cluster's login
    leader, errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, PRECHECK_TIMEOUT, access=access)
    if not leader:
        return ctx.refuse("%s has no leader (%s): use failover" % (cluster, "; ".join(errors[-2:])))
    if candidate is not None:
        known = {m["pg_instance"] for m in members}
        if candidate not in known:
            return ctx.refuse("candidate: %r is not a member of %s (expected one of: %s)" % (
                candidate, cluster, ", ".join(sorted(known))))
    healthy, why, refusal = takeover_candidates(leader, port, candidate, int(max_lag), access)
    if refusal:
        return ctx.refuse(refusal)
    if candidate is None and not healthy:
        return ctx.refuse("%s has no healthy replica to switch over to (%s)" % (
            cluster, "; ".join("%s: %s" % kv for kv in sorted(why.items())) or "no replica"))
    elif candidate is None:
        candidate = healthy[0][0]       # the streaming replica with the least lag
    try:
        with pigsty_ha_locks.operation_lock(ctx.opts, cluster, "switchover %s -> %s" % (leader["name"], candidate)):
            # a reconciliation that started before the lock applies what it read first: wait
            # for it (the ones after see the operation and leave routing to it)
            with pigsty_ha_locks.reconcile_lock(ctx.opts, cluster, wait=60):
                pass
            res, new_name, paused, t0 = _switch(ctx, merged, members, port, leader, candidate, handoff,
                                                early_release, access)
    except salt.exceptions.CommandExecutionError as exc:
        return ctx.refuse(str(exc))
    result = ctx.reconcile(cluster)
    ok = bool(res.get("result")) and bool(new_name) and new_name != leader["name"]
    out = {"result": ok, "old": leader["name"], "new": new_name, "clients_waited_s": paused,
           "clients_waited_timeline": res.get("timeline_s"), "leader_key": res.get("leader_key"),
           "comment": res.get("comment") or "switched over; %s hands its pgbouncer clients over" % leader["name"],
           "duration": round(time.time() - t0, 3), "reconcile": result.get("result")}
    if res.get("cleaned"):
        out["cleaned_before"] = res["cleaned"]
    return out


def _switch(ctx, merged, members, port, leader, candidate, handoff, early_release, access=None):
    old = next(m for m in members if m["pg_instance"] == leader["name"])
    minions = [m["minion"] for m in members]
    ips = {m["pg_instance"]: m["ip"] for m in members}
    leader_be, pgb_be = pigsty_ha_steps.handoff_plan(merged, members)
    t0 = time.time()
    if not handoff:
        body = {"leader": leader["name"], "candidate": candidate}
        try:
            code, answer = pigsty_patroni.request(leader["host"], port, "/switchover", method="POST",
                                                  body=body, timeout=30, access=access)
            res = {"result": code == 200, "comment": "Patroni answered HTTP %s: %s" % (code, answer)}
        except pigsty_patroni.PatroniError as exc:
            res = {"result": False, "comment": "Patroni did not answer the switchover request: %s" % exc}
        new, _e = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT, access=access)
        return res, (new or {}).get("name"), None, t0
    # members still forwarding clients of an earlier hand-off (to this leader) wait too
    states = ctx.fan([m["minion"] for m in members if m is not old], "pigsty_handoff.state")
    forwarders = [m for m in members if isinstance(states.get(m["minion"]), dict)
                  and states[m["minion"]].get("forward")]
    # a clean start: what an earlier hand-off left held, with nobody forwarding, is released
    cleaned = _leftovers(ctx, members, old, forwarders, leader_be, pgb_be)
    # every running member's HAProxy holds the old primary's checks before anything switches
    # (else demotion marks it down there and cuts the sessions it still carries); a minion
    # that does not confirm stops the switchover here, before any client waits
    unconfirmed = _hold(ctx, members, old, leader, port, access, leader_be)
    if unconfirmed:
        ctx.fan(minions, "pigsty_haproxy.run", [pigsty_haproxy.handoff_release(leader_be, [], old["pg_instance"], True)])
        res = {"result": False, "comment": (
            "switchover not started: HAProxy on %s did not confirm holding %s's health checks "
            "(its minion did not answer, twice); nothing was switched and no client waited. "
            "Try again once every running member's minion answers (salt %s test.ping)" % (
                ", ".join(unconfirmed), old["pg_instance"], ",".join(unconfirmed)))}
        if cleaned:
            res["cleaned"] = "released what an earlier hand-off left held: %s" % ", ".join(cleaned)
        return res, None, None, t0
    # the old primary's checkpoint before anything waits (it took seconds under write load,
    # while the forwarders' clients below were paused)
    ctx.fan([old["minion"]], "pigsty_handoff.checkpoint", timeout=60)
    paused_fw = [n for n, ok in ctx.fan([m["minion"] for m in forwarders], "pgbouncer.pause").items()
                 if ok is True]
    res = {"result": False, "comment": "the hand-off did not start"}
    try:
        answers = ctx.fan([old["minion"]], "pigsty_handoff.switchover", [leader["name"], ips],
                          {"candidate": candidate, "patroni_port": port, "early_release": early_release,
                           "checkpoint": False},
                          timeout=90)
        res = answers.get(old["minion"])
        if not isinstance(res, dict):
            res = {"result": False, "comment": "no answer from %s: %s" % (old["minion"], res)}
        if res.get("result"):
            # forwarders follow the new primary (or route locally, on the new primary)
            for m in forwarders:
                if m["minion"] in paused_fw:
                    target = None if m["pg_instance"] == res["new"] else ips[res["new"]]
                    ans = ctx.fan([m["minion"]], "pgbouncer.forward", [target], {"resume": True})
                    if isinstance(ans.get(m["minion"]), bool):     # forwarded and resumed
                        paused_fw.remove(m["minion"])
            # the new primary serves before the old one stops taking new clients
            ctx.fan(minions, "pigsty_haproxy.run",
                    [pigsty_haproxy.handoff_route(leader_be, pgb_be, old["pg_instance"], res["new"])])
        else:
            ctx.fan(minions, "pigsty_haproxy.run",
                    [pigsty_haproxy.handoff_release(leader_be, [], old["pg_instance"], True)])
    finally:
        if paused_fw:
            ctx.fan(paused_fw, "pgbouncer.resume")
    if cleaned:
        res["cleaned"] = "released what an earlier hand-off left held: %s" % ", ".join(cleaned)
    return res, res.get("new"), res.get("paused_s"), t0


def failover(ctx, cluster, candidate):
    """See pigsty_ha.failover (the runner's entry point)."""
    _merged, inv = ctx.inventory()
    members = ctx.members(inv, cluster)
    cvars = pigsty_inventory.cluster_vars(inv, cluster)
    port, access = cvars["patroni_port"], pigsty_patroni_rest.access(cvars)
    target = [m for m in members if m["pg_instance"] == candidate]
    if not target:
        return ctx.refuse("candidate: %r is not a member of %s" % (candidate, cluster))
    try:
        st = pigsty_patroni.get_json(target[0]["ip"], port, "/patroni", timeout=PRECHECK_TIMEOUT, access=access)
    except pigsty_patroni.PatroniError as exc:
        return ctx.refuse("candidate %s is unreachable: %s" % (candidate, exc))
    if pigsty_patroni.normalize_role(st.get("role")) != "replica" or st.get("state") != "running":
        return ctx.refuse("candidate %s is not a running replica (role %s, state %s)" % (
            candidate, st.get("role"), st.get("state")))
    leader, _errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, PRECHECK_TIMEOUT, access=access)
    if leader:
        # with a leader, Patroni's failover is a switchover at once: the same safety applies
        _healthy, _why, refusal = takeover_candidates(leader, port, candidate, 1048576, access)
        if refusal:
            return ctx.refuse(refusal)
    try:
        with pigsty_ha_locks.operation_lock(ctx.opts, cluster, "failover to %s" % candidate):
            code, answer = pigsty_patroni.request(target[0]["ip"], port, "/failover", method="POST",
                                                  body={"candidate": candidate}, timeout=30, access=access)
            if code == 200:
                time.sleep(1)
    except salt.exceptions.CommandExecutionError as exc:
        return ctx.refuse(str(exc))
    except pigsty_patroni.PatroniError as exc:
        return ctx.refuse("Patroni did not answer the failover request: %s" % exc)
    if code != 200:
        return ctx.refuse("Patroni refused the failover (HTTP %s): %s" % (code, answer))
    return {"result": True, "candidate": candidate, "reconcile": ctx.reconcile(cluster).get("result")}
