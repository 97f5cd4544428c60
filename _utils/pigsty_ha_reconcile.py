"""A reconciliation's view of a cluster, and its dry run (pigsty_ha.reconcile test=True).

The real run (the runner's ``reconcile``) and the dry run read the same view (``view``)
and plan the same steps (pigsty_ha_steps.plan_calls / after_steps); the dry run asks each
step for what it would do, and takes no lock, writes no history, changes nothing.
"""
import logging

import pigsty_fanout
import pigsty_ha_locks
import pigsty_ha_steps
import pigsty_inventory
import pigsty_patroni
import pigsty_patroni_rest

log = logging.getLogger(__name__)

PRECHECK_TIMEOUT = 3.0      # the rejoin step's look at the primary's /cluster (off the event path)


def view(opts, inv, cluster, members, live_roles, shared=None):
    """What a reconciliation acts on: the cluster's Patroni port and login, the live roles
    and details (``live_roles(members, port, access)``), whether a planned operation of the
    cluster is in progress (on any master, with ``shared``: pigsty_ha_locks), and
    ``cluster_doc(ip)`` (a member's /cluster, from the DCS)."""
    cvars = pigsty_inventory.cluster_vars(inv, cluster)
    port, access = cvars["patroni_port"], pigsty_patroni_rest.access(cvars)    # HTTPS, the cluster's login
    roles, details = live_roles(members, port, access)

    def cluster_doc(ip):
        return pigsty_patroni.get_json(ip, port, "/cluster", timeout=PRECHECK_TIMEOUT, access=access)
    return {"port": port, "access": access, "roles": roles, "details": details, "cluster_doc": cluster_doc,
            "operating": pigsty_ha_locks.operation_in_progress(opts, cluster, shared=shared)}


def dry_run(ctx, cluster):
    """What ``reconcile(cluster)`` would do now, changing nothing. ``ctx``: the runner's
    (inventory, members, fan, live_roles, opts). Returns Salt's test-mode answer:
    ``result`` None when something would change, True when everything already follows
    the live view, False when a step could not tell (a member's minion did not answer);
    ``plan``: per step, what would change; ``steps``: each step's own report."""
    merged, inv = ctx.inventory()
    members = ctx.members(inv, cluster)
    v = view(ctx.opts, inv, cluster, members, ctx.live_roles, shared=ctx.shared_lock(inv))
    calls = pigsty_ha_steps.plan_calls(merged, inv, cluster, members, v["roles"], v["details"], ctx.fan,
                                       None, v["operating"], v["cluster_doc"], test=True)
    steps = pigsty_fanout.parallel(calls)
    pigsty_ha_steps.after_steps(merged, members, v["roles"], steps, ctx.fan, False, v["operating"], test=True)
    plan = changes(steps)
    failed = failures(steps)
    out = {"test": True, "cluster": cluster, "roles": v["roles"], "operation_in_progress": v["operating"],
           "plan": plan, "steps": steps}
    if failed:
        out.update(result=False, retcode=1, comment="cannot tell what %s would do: %s; nothing was changed" % (
            ", ".join(failed), "; ".join("%s: %s" % kv for kv in failed.items())))
    elif plan:
        out.update(result=None, comment="would change: %s; nothing was changed" % "; ".join(
            "%s: %s" % (name, _describe(name, what)) for name, what in sorted(plan.items())))
    else:
        out.update(result=True, comment="%s follows the live view already: nothing would change" % cluster)
    return out


def failures(steps):
    """{step: why} for each step that failed (result not true), sorted by name: its
    comment, or the members / meta nodes that did not answer."""
    out = {}
    for name in sorted(steps):
        st = steps[name]
        if not isinstance(st, dict):
            out[name] = "returned %r" % (st,)
        elif not st.get("result"):
            out[name] = st.get("comment") or _no_answer(st)
    return out


def outcome(entry):
    """A real run's return (the runner's ``reconcile``) from its history ``entry``: result
    True when every step did its part; else result False, ``retcode`` 1 (salt-run exits 1)
    and a ``comment`` naming each failed step and why, which the entry records too. A
    success keeps the shape it always had (no comment)."""
    out = {"result": True, "cluster": entry["cluster"], "roles": entry["roles"], "steps": entry["steps"],
           "duration": entry["duration"]}
    if failures(entry["steps"]):
        entry["comment"] = "reconciling %s failed: %s" % (entry["cluster"], why(out))
        out.update(result=False, retcode=1, comment=entry["comment"])
        log.error("pigsty_ha: %s", entry["comment"])
    log.info("pigsty_ha: reconciled %s in %.2fs: roles %s",
             entry["cluster"], entry["duration"], entry["roles"])
    return out


def why(ret):
    """Why a reconciliation's return ``ret`` is not a success: its failed steps, each with
    its reason, else its comment."""
    failed = failures(ret.get("steps") or {}) if isinstance(ret, dict) else {}
    if failed:
        return "; ".join("%s: %s" % kv for kv in failed.items())
    if isinstance(ret, dict):
        return ret.get("comment") or "result %r" % (ret.get("result"),)
    return str(ret)


def outcome_all(returns):
    """reconcile_all's return from ``returns`` (cluster -> its reconcile's return, or the
    "failed: <exception>" it raised): {cluster: True | False | "failed: ..."}, as always;
    when a cluster did not reconcile, ``retcode`` 1 (salt-run exits 1) and a ``comment``
    naming each such cluster and why are added beside the clusters."""
    out = {name: ret.get("result") if isinstance(ret, dict) else ret for name, ret in returns.items()}
    failed = [name for name in sorted(out) if out[name] is not True]
    if failed:
        out["retcode"] = 1
        out["comment"] = "%d of %d cluster%s not reconciled: %s" % (
            len(failed), len(returns), "" if len(returns) == 1 else "s",
            "; ".join("%s: %s" % (name, why(returns[name])) for name in failed))
    return out


def changes(steps):
    """Per step, only what would change: haproxy {minion: [commands]}, vip / pgbouncer /
    rejoin / handoff [actions], targets_dns {meta node: [what would be rewritten]}."""
    plan = {}
    haproxy = {m: cmds for m, cmds in (steps.get("haproxy", {}).get("members") or {}).items()
               if isinstance(cmds, list) and cmds}
    if haproxy:
        plan["haproxy"] = haproxy
    for name in ("vip", "pgbouncer", "rejoin", "handoff"):
        actions = (steps.get(name) or {}).get("actions")
        if actions:
            plan[name] = list(actions)
    meta = {}
    for node, ans in ((steps.get("targets_dns") or {}).get("meta") or {}).items():
        if isinstance(ans, dict):
            what = [k for k in ("record", "targets", "dns") if ans.get(k)]
            if what:
                meta[node] = what
    if meta:
        plan["targets_dns"] = meta
    return plan


def _describe(name, what):
    if name == "haproxy":
        return ", ".join("HAProxy on %s: %d command%s" % (m, len(c), "" if len(c) == 1 else "s")
                         for m, c in sorted(what.items()))
    if name == "targets_dns":
        return ", ".join("%s rewrites its %s" % (n, " and ".join(w)) for n, w in sorted(what.items()))
    return "; ".join(what)


def _no_answer(step):
    bad = {m: ans for m, ans in (step.get("members") or step.get("meta") or {}).items()
           if not isinstance(ans, (list, dict))}
    return ", ".join("%s: %s" % kv for kv in sorted(bad.items())) or "failed"
