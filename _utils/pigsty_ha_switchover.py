"""Planned switchover and manual failover of a cluster, from the master, and the
switchover's dry run (what it would do, changing nothing).

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


def takeover_candidates(leader, port, candidate, max_lag, access=None, seen=None):
    """The replicas that may take over from ``leader`` (best first), why the others may not,
    and the reason to refuse ``candidate`` (None: it may, or no candidate was named).
    ``seen``: a dict that gets what was read ("cluster": the leader's /cluster document,
    "leader_status": its /patroni), for a caller that shows it (the dry run)."""
    try:
        doc = pigsty_patroni.get_json(leader["host"], port, "/cluster", timeout=PRECHECK_TIMEOUT, access=access)
        leader_status = pigsty_patroni.get_json(leader["host"], port, "/patroni", timeout=PRECHECK_TIMEOUT,
                                                access=access)
    except pigsty_patroni.PatroniError as exc:
        return [], {}, "the leader %s did not answer: %s" % (leader["name"], exc)
    if seen is not None:
        seen.update(cluster=doc, leader_status=leader_status)
    healthy, why = pigsty_patroni.switchover_candidates(doc, leader_status, max_lag)
    if candidate is None:
        return healthy, why, None
    if candidate == leader["name"]:
        return healthy, why, "candidate %s is the leader already" % candidate
    if candidate not in [name for name, _lag in healthy]:
        return healthy, why, "candidate %s cannot take over: %s" % (
            candidate, why.get(candidate, "not a member of the cluster in Patroni"))
    return healthy, why, None


def standby_refusal(cluster, leader, what):
    """Why ``what`` is refused in a standby cluster (its leader a standby leader)."""
    return ("%s is a standby cluster (%s is its standby leader): %s inside it is not built; "
            "promote it first (salt-run pigsty_ha.promote cluster=%s)" % (cluster, leader["name"], what, cluster))


def _max_lag(value):
    """``max_lag`` as a number of bytes, or a clear refusal naming the field."""
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        lag = int(value)
    except (TypeError, ValueError):
        lag = -1
    if lag < 0:
        raise salt.exceptions.SaltInvocationError(
            "max_lag: expected a number of bytes (an integer >= 0), got %r" % (value,))
    return lag


def preflight(ctx, cluster, candidate=None, max_lag=1048576):
    """The checks before a switchover, in order, reading only (the inventory, Patroni's
    REST API): the real run refuses on the first that fails, before anything; its dry run
    reports them. Returns the view both go on with: ``merged``, ``inv``, ``members``,
    ``port``, ``access``, ``leader`` ({"name", "host"} or None), ``candidate`` (the one
    named, or the streaming replica with the least lag), ``chosen`` (why that one),
    ``healthy`` / ``why`` (pigsty_patroni.switchover_candidates), ``seen`` (what the
    leader's Patroni said) and ``refusal`` (None: the switchover may go on)."""
    max_lag = _max_lag(max_lag)
    merged, inv = ctx.inventory()
    members = ctx.members(inv, cluster)
    cvars = pigsty_inventory.cluster_vars(inv, cluster)
    port, access = cvars["patroni_port"], pigsty_patroni_rest.access(cvars)    # HTTPS, the cluster's login
    pre = {"cluster": cluster, "merged": merged, "inv": inv, "members": members, "port": port, "access": access,
           "leader": None, "candidate": candidate, "chosen": None, "healthy": [], "why": {}, "seen": {},
           "max_lag": max_lag, "refusal": None}
    leader, errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, PRECHECK_TIMEOUT, access=access)
    pre["leader"] = leader
    if not leader:
        pre["refusal"] = "%s has no leader (%s): use failover" % (cluster, "; ".join(errors[-2:]))
        return pre
    if leader.get("role") == "standby_leader":
        pre["refusal"] = standby_refusal(cluster, leader, "a switchover")
        return pre
    if candidate is not None:
        known = {m["pg_instance"] for m in members}
        if candidate not in known:
            pre["refusal"] = "candidate: %r is not a member of %s (expected one of: %s)" % (
                candidate, cluster, ", ".join(sorted(known)))
            return pre
    healthy, why, refusal = takeover_candidates(leader, port, candidate, max_lag, access, pre["seen"])
    pre.update(healthy=healthy, why=why)
    if refusal:
        pre["refusal"] = refusal
    elif candidate is None and not healthy:
        pre["refusal"] = "%s has no healthy replica to switch over to (%s)" % (
            cluster, "; ".join("%s: %s" % kv for kv in sorted(why.items())) or "no replica")
    elif candidate is None:
        pre["candidate"] = healthy[0][0]       # the streaming replica with the least lag
        pre["chosen"] = "the streaming replica with the least lag (%s bytes)" % healthy[0][1]
    else:
        pre["chosen"] = "named (it streams from the leader, lag %s bytes)" % dict(healthy)[candidate]
    return pre


def leftovers(views, members, old, forwarders, leader_be, pgb_be):
    """What an earlier, finished or interrupted, hand-off left in HAProxy: servers drained
    or with checks held whose member no longer forwards clients, each with the runtime
    commands that release it ([(instance, commands)]); the current primary is given back
    to its checks as a primary. ``views``: minion -> pigsty_haproxy.servers."""
    held = set()
    for view in views.values():
        if isinstance(view, dict):
            held.update(pigsty_haproxy.held_servers(view))
    busy = {m["pg_instance"] for m in forwarders}
    return [(m["pg_instance"], pigsty_haproxy.handoff_release(leader_be, pgb_be, m["pg_instance"],
                                                              m["pg_instance"] == old["pg_instance"]))
            for m in members if m["pg_instance"] in held and m["pg_instance"] not in busy]


def _leftovers(ctx, members, old, forwarders, leader_be, pgb_be):
    """Release what an earlier hand-off left in HAProxy (see leftovers). Returns what was
    released."""
    views = ctx.fan([m["minion"] for m in members], "pigsty_haproxy.servers")
    cleaned = []
    for name, cmds in leftovers(views, members, old, forwarders, leader_be, pgb_be):
        ctx.fan([x["minion"] for x in members], "pigsty_haproxy.run", [cmds])
        cleaned.append(name)
    return cleaned


def running_in(doc, members):
    """The members whose Patroni is running in the leader's view of the cluster (``doc``:
    its /cluster document): their nodes are up, so their HAProxy may carry sessions. All
    members when the leader does not say (the safe side)."""
    try:
        running = {m["name"] for m in pigsty_patroni.members(doc) if m.get("state") != "stopped"}
    except (KeyError, TypeError, ValueError, AttributeError):
        return list(members)
    return [m for m in members if m["pg_instance"] in running]


def _running_members(leader, port, access, members):
    """running_in, from the leader's /cluster as it is now."""
    try:
        doc = pigsty_patroni.get_json(leader["host"], port, "/cluster", timeout=PRECHECK_TIMEOUT, access=access)
    except pigsty_patroni.PatroniError:
        return list(members)
    return running_in(doc, members)


def _hold(ctx, call, leader, port, access, members):
    """Hold the old primary's health checks in every member's HAProxy (``call``: the plan's
    "hold"); ask a second time the running members whose minion did not confirm (Salt's
    publication is not a delivery: a minion whose connection to the master had not yet
    noticed a healed partition missed jobs for minutes in the sandbox). Returns the running
    members' minions that did not confirm either time (empty: held everywhere it matters)."""
    answers = _do(ctx, call)
    must = [m["minion"] for m in _running_members(leader, port, access, members)]
    missing = [n for n in must if not isinstance(answers.get(n), dict)]
    if missing:
        again = _do(ctx, dict(call, minions=missing))
        missing = [n for n in missing if not isinstance(again.get(n), dict)]
    return missing


def _do(ctx, call):
    """Run one planned call on its minions."""
    return ctx.fan(call["minions"], call["fun"], call.get("arg"), call.get("kwarg"),
                   timeout=call.get("timeout"))


def _call(step, minions, fun, arg=None, kwarg=None, timeout=None, comment=""):
    out = {"step": step, "minions": list(minions), "fun": fun, "comment": comment}
    if arg is not None:
        out["arg"] = arg
    if kwarg is not None:
        out["kwarg"] = kwarg
    if timeout is not None:
        out["timeout"] = timeout
    return out


def forward_call(member, new, ips):
    """A forwarder of an earlier hand-off follows the new primary (or, on the new primary
    itself, routes locally) and resumes."""
    target = None if member["pg_instance"] == new else ips[new]
    return _call("forward %s" % member["pg_instance"], [member["minion"]], "pgbouncer.forward", [target],
                 {"resume": True}, comment="%s's pgbouncer forwards its clients to %s and resumes" % (
                     member["pg_instance"], new if target else "its own PostgreSQL"))


def route_call(merged, members, old, new):
    """Every member's HAProxy: the new primary serves, the old one stops taking new clients."""
    leader_be, pgb_be = pigsty_ha_steps.handoff_plan(merged, members)
    return _call("route", [m["minion"] for m in members], "pigsty_haproxy.run",
                 [pigsty_haproxy.handoff_route(leader_be, pgb_be, old, new)],
                 comment="HAProxy on every member: %s ready, %s drained (its pgbouncer forwards its clients)" % (
                     new, old))


def plan(merged, members, leader, candidate, port, handoff=True, early_release=True, forwarders=(), cleanup=()):
    """The calls of a switchover that change something, in the order the real run makes
    them when every step succeeds (a hold that is not confirmed, or a hand-off that fails,
    gives the hold back instead and stops): what _switch runs and what the dry run shows.
    Each is {"step", "minions", "fun", "arg", "kwarg", "timeout", "comment"}; ``leader``:
    {"name", "host"}; ``forwarders``: members still forwarding an earlier hand-off's
    clients; ``cleanup``: leftovers() (released first)."""
    old = next(m for m in members if m["pg_instance"] == leader["name"])
    minions = [m["minion"] for m in members]
    ips = {m["pg_instance"]: m["ip"] for m in members}
    if not handoff:
        return [{"step": "switchover", "minions": [], "fun": "Patroni POST /switchover", "host": leader["host"],
                 "arg": [{"leader": leader["name"], "candidate": candidate}],
                 "comment": "the leader's Patroni switches over (no hand-off: sessions through 5433 are cut)"},
                {"step": "reconcile", "minions": [], "fun": "pigsty_ha.reconcile",
                 "comment": "HAProxy, VIP, DNS and Prometheus targets follow the new roles"}]
    leader_be, _pgb_be = pigsty_ha_steps.handoff_plan(merged, members)
    calls = [_call("release %s" % name, minions, "pigsty_haproxy.run", [cmds],
                   comment="release what an earlier hand-off left held: %s" % name) for name, cmds in cleanup]
    calls.append(_call("hold", minions, "pigsty_haproxy.run", [pigsty_haproxy.handoff_hold(leader_be, old["pg_instance"])],
                       comment="HAProxy on every member holds %s's health checks (every running member "
                               "must confirm, else nothing is switched)" % old["pg_instance"]))
    calls.append(_call("checkpoint", [old["minion"]], "pigsty_handoff.checkpoint", timeout=60,
                       comment="CHECKPOINT on %s before any client waits" % old["pg_instance"]))
    if forwarders:
        calls.append(_call("pause forwarders", [m["minion"] for m in forwarders], "pgbouncer.pause",
                           comment="pause the pgbouncers still forwarding an earlier hand-off's clients"))
    calls.append(_call("hand-off", [old["minion"]], "pigsty_handoff.switchover", [leader["name"], ips],
                       {"candidate": candidate, "patroni_port": port, "early_release": early_release,
                        "checkpoint": False}, timeout=90,
                       comment="on %s: pause pgbouncer, wait for %s to have every WAL byte, switch over "
                               "through Patroni%s, point pgbouncer at %s, resume" % (
                                   old["pg_instance"], candidate,
                                   " (leader key released at the shutdown checkpoint)" if early_release else "",
                                   candidate)))
    calls.extend(forward_call(m, candidate, ips) for m in forwarders)
    calls.append(route_call(merged, members, old["pg_instance"], candidate))
    calls.append({"step": "reconcile", "minions": [], "fun": "pigsty_ha.reconcile",
                  "comment": "HAProxy, VIP, DNS and Prometheus targets follow the new roles; the hand-off "
                             "ends when %s's last client has left" % old["pg_instance"]})
    return calls


def switchover(ctx, cluster, candidate=None, handoff=True, early_release=True, max_lag=1048576):
    """See pigsty_ha.switchover (the runner's entry point)."""
    pre = preflight(ctx, cluster, candidate, max_lag)
    if pre["refusal"]:
        return ctx.refuse(pre["refusal"])
    leader, candidate = pre["leader"], pre["candidate"]
    try:
        with pigsty_ha_locks.operation_lock(ctx.opts, cluster, _operation(leader, candidate),
                                            shared=ctx.shared_lock(pre["inv"])):
            # a reconciliation that started before the lock applies what it read first: wait
            # for it (the ones after see the operation and leave routing to it)
            with ctx.cluster_lock(cluster, 60):
                pass
            res, new_name, paused, t0 = _switch(ctx, pre["merged"], pre["members"], pre["port"], leader, candidate,
                                                handoff, early_release, pre["access"])
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


def dry_run(ctx, cluster, candidate=None, handoff=True, early_release=True, max_lag=1048576):
    """What ``switchover`` would do, changing nothing (pigsty_ha.switchover test=True): the
    same arguments' checks and the same checks of the cluster (preflight), the operation
    lock looked at without taking it, the members' HAProxy and hand-off state read
    (pigsty_haproxy.servers, pigsty_handoff.state: read-only), and the planned calls in
    order (plan). No pause, no CHECKPOINT, no hold, no lock, no history entry.

    Returns Salt's test-mode answer: ``result`` None when it would switch over, False when
    it would refuse (with the real run's reason and ``retcode`` 1), and a ``comment``."""
    pre = preflight(ctx, cluster, candidate, max_lag)
    leader = pre["leader"]
    out = {"test": True, "cluster": cluster, "leader": leader["name"] if leader else None,
           "candidate": pre["candidate"], "chosen": pre["chosen"], "max_lag": pre["max_lag"],
           "handoff": bool(handoff), "members": _member_rows(pre), "checks": [], "steps": []}
    checks = out["checks"]
    checks.append(_check("leader", bool(leader), "%s holds the leader key" % leader["name"] if leader
                         else pre["refusal"]))
    if leader and pre["refusal"]:
        checks.append(_check("candidate", False, pre["refusal"]))
    elif leader:
        checks.append(_check("candidate", True, "%s: %s" % (pre["candidate"], pre["chosen"])))
    if pre["refusal"]:
        return _verdict(out, pre["refusal"])
    operation = _operation(leader, pre["candidate"])
    running = pigsty_ha_locks.operation_running(ctx.opts, cluster, shared=ctx.shared_lock(pre["inv"]))
    busy = pigsty_ha_locks.busy_message(operation, cluster, running) if running else None
    checks.append(_check("one operation at a time", not running, busy or "no planned operation of %s runs" % cluster))
    members = pre["members"]
    forwarders, cleanup = [], []
    unanswered = []
    if handoff:
        old = next(m for m in members if m["pg_instance"] == leader["name"])
        leader_be, pgb_be = pigsty_ha_steps.handoff_plan(pre["merged"], members)
        states = ctx.fan([m["minion"] for m in members if m is not old], "pigsty_handoff.state")
        forwarders = _forwarders(members, states)
        views = ctx.fan([m["minion"] for m in members], "pigsty_haproxy.servers")
        cleanup = leftovers(views, members, old, forwarders, leader_be, pgb_be)
        running_members = running_in(pre["seen"].get("cluster"), members)
        unanswered = [m["minion"] for m in running_members if not isinstance(views.get(m["minion"]), dict)]
        checks.append(_check(
            "HAProxy answers on every running member", not unanswered,
            "HAProxy on %s did not answer now: the hold could not be confirmed and the switchover would "
            "not start (salt %s test.ping)" % (", ".join(unanswered), ",".join(unanswered)) if unanswered
            else "%s (they must confirm holding %s's checks)" % (
                ", ".join(m["minion"] for m in running_members), leader["name"])))
        out["held_by_earlier_handoff"] = [name for name, _cmds in cleanup]
        out["forwarding"] = {m["pg_instance"]: states[m["minion"]].get("forward") for m in forwarders}
    out["steps"] = plan(pre["merged"], members, leader, pre["candidate"], pre["port"], handoff, early_release,
                        forwarders, cleanup)
    refusal = busy or (checks[-1]["detail"] if unanswered else None)
    if refusal:
        return _verdict(out, refusal)
    return _verdict(out, None, "would switch over %s from %s to %s (%s) in %d steps%s" % (
        cluster, leader["name"], pre["candidate"], pre["chosen"], len(out["steps"]),
        "" if handoff else ", without a hand-off"))


def _check(name, ok, detail):
    return {"check": name, "ok": bool(ok), "detail": detail}


def _verdict(out, refusal, comment=None):
    if refusal:
        out.update(result=False, retcode=1, comment="would refuse: %s; nothing was changed" % refusal)
    else:
        out.update(result=None, comment=comment + "; nothing was changed")
    return out


def _member_rows(pre):
    """Each member as the leader's Patroni sees it: role, state, lag, timeline, whether it
    streams from the leader and whether it may take over (or why not)."""
    seen = pre["seen"]
    doc = {m["name"]: m for m in pigsty_patroni.members(seen.get("cluster"))}
    streams = pigsty_patroni.streaming(seen.get("leader_status") or {}) if seen.get("leader_status") else set()
    healthy = dict(pre["healthy"])
    leader = (pre["leader"] or {}).get("name")
    rows = []
    for m in pre["members"]:
        name = m["pg_instance"]
        p = doc.get(name, {})
        if name == leader:
            takeover = "leader"
        elif name in healthy:
            takeover = "yes"
        else:
            takeover = pre["why"].get(name) or ("no answer from the leader" if not doc else "not in Patroni's view")
        rows.append({"instance": name, "minion": m["minion"], "role": p.get("role", "unknown"),
                     "state": p.get("state", "unknown"), "lag": p.get("lag") if name != leader else None,
                     "timeline": p.get("timeline"), "streaming": name in streams if name != leader else None,
                     "takeover": takeover})
    return rows


def _operation(leader, candidate):
    return "switchover %s -> %s" % (leader["name"], candidate)


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
    forwarders = _forwarders(members, states)
    # a clean start: what an earlier hand-off left held, with nobody forwarding, is released
    cleaned = _leftovers(ctx, members, old, forwarders, leader_be, pgb_be)
    steps = {c["step"]: c for c in plan(merged, members, leader, candidate, port, True, early_release, forwarders)}
    # every running member's HAProxy holds the old primary's checks before anything switches
    # (else demotion marks it down there and cuts the sessions it still carries); a minion
    # that does not confirm stops the switchover here, before any client waits
    unconfirmed = _hold(ctx, steps["hold"], leader, port, access, members)
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
    _do(ctx, steps["checkpoint"])
    paused_fw = [n for n, ok in _do(ctx, steps["pause forwarders"]).items()
                 if ok is True] if forwarders else []
    res = {"result": False, "comment": "the hand-off did not start"}
    try:
        answers = _do(ctx, steps["hand-off"])
        res = answers.get(old["minion"])
        if not isinstance(res, dict):
            res = {"result": False, "comment": "no answer from %s: %s" % (old["minion"], res)}
        if res.get("result"):
            # forwarders follow the new primary (or route locally, on the new primary)
            for m in forwarders:
                if m["minion"] in paused_fw:
                    ans = _do(ctx, forward_call(m, res["new"], ips))
                    if isinstance(ans.get(m["minion"]), bool):     # forwarded and resumed
                        paused_fw.remove(m["minion"])
            # the new primary serves before the old one stops taking new clients
            _do(ctx, route_call(merged, members, old["pg_instance"], res["new"]))
        else:
            ctx.fan(minions, "pigsty_haproxy.run",
                    [pigsty_haproxy.handoff_release(leader_be, [], old["pg_instance"], True)])
    finally:
        if paused_fw:
            ctx.fan(paused_fw, "pgbouncer.resume")
    if cleaned:
        res["cleaned"] = "released what an earlier hand-off left held: %s" % ", ".join(cleaned)
    return res, res.get("new"), res.get("paused_s"), t0


def _forwarders(members, states):
    """The members whose pgbouncer still forwards an earlier hand-off's clients
    (``states``: minion -> pigsty_handoff.state)."""
    return [m for m in members if isinstance(states.get(m["minion"]), dict) and states[m["minion"]].get("forward")]


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
    if leader and leader.get("role") == "standby_leader":
        return ctx.refuse(standby_refusal(cluster, leader, "a failover"))
    if leader:
        # with a leader, Patroni's failover is a switchover at once: the same safety applies
        _healthy, _why, refusal = takeover_candidates(leader, port, candidate, 1048576, access)
        if refusal:
            return ctx.refuse(refusal)
    try:
        with pigsty_ha_locks.operation_lock(ctx.opts, cluster, "failover to %s" % candidate,
                                            shared=ctx.shared_lock()):
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
