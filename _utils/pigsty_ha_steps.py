"""The steps of a reconciliation: each makes one thing follow the live roles, is
idempotent, and reports what it did. ``fan`` runs a function on minions
(pigsty_fanout.fan_out bound to the master's options).

With ``test=True`` (pigsty_ha.reconcile test=True) a step computes the same plan and
reports what it would do: it asks the minions only read-only functions, or their own test
mode (``test=True``: pigsty_haproxy.apply_health, pigsty_live.record,
pigsty_handoff.resume_stale / end), and changes nothing."""
import functools
import logging
import subprocess

import salt.utils.network

import pigsty_fanout
import pigsty_haproxy
import pigsty_inventory
import pigsty_live_files
import pigsty_patroni
import pigsty_pgsql

log = logging.getLogger(__name__)


def _no_answer(ans):
    """What a minion gave instead of the expected answer: nothing (it did not answer within
    the fan-out's timeout), or its error, shortened."""
    if ans is None:
        return "no answer"
    text = str(ans).strip().replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def plan_calls(merged, inv, cluster, members, roles, details, fan, event=None, operating=False,
               cluster_doc=None, test=False):
    """The steps a reconciliation of this live view runs, {name: (function, *args)} for
    pigsty_fanout.parallel: the real run's and its dry run's (``test``) are the same.
    ``operating``: a planned operation of the cluster is in progress (it routes HAProxy and
    the VIP itself); ``event``: on the event path (a promotion's reconciliation stays as
    short as it can be); ``cluster_doc(ip)``: the primary's /cluster (the rejoin step)."""
    def step(fn):
        return functools.partial(fn, test=True) if test else fn
    # The steps touch different things and are idempotent: they start together, so that a
    # member that does not answer delays none of the others.
    calls = {
        "haproxy": (step(haproxy), merged, members, roles, fan),
        "vip": (step(vip), merged, members, roles, fan),
        "targets_dns": (step(meta), inv, cluster, roles, fan),
    }
    if operating:
        # A planned switchover routes HAProxy and the VIP itself, and reconciles when it
        # ends: a view read mid-switch is stale by the time it would be applied.
        del calls["haproxy"], calls["vip"]
    if event is None and not operating:
        # not on the event path: the schedule, a minion's start and the end of a switchover
        # look for stale pauses
        calls["pgbouncer"] = (step(stale_pauses), members, roles, fan)
    if event is None and cluster_doc is not None and may_wait_for_wal(members, roles, details):
        # a rewound member can wait for WAL an idle primary has not written yet (off the
        # event path: the schedule reconciles every 30 s)
        calls["rejoin"] = (step(rejoin), members, roles, details, fan, cluster_doc)
    return calls


LEFT_TO_OPERATION = {"result": True, "comment": "left to the planned operation in progress "
                                                "(it routes, and reconciles when it ends)"}


def after_steps(merged, members, roles, steps, fan, handoff_asked=False, operating=False, test=False):
    """What follows the parallel steps: the steps left to a planned operation say so, and
    a hand-off in progress is looked after (``handoff_asked``; else when HAProxy holds a
    server somewhere). Updates ``steps``."""
    for name in ("haproxy", "vip"):
        steps.setdefault(name, dict(LEFT_TO_OPERATION))
    held = sorted({srv for ans in steps["haproxy"].get("held", {}).values() for srv in ans})
    if (held or handoff_asked) and not operating:
        steps["handoff"] = handoff(merged, members, roles, set(held), fan, test=test)
    return steps


def haproxy(merged, members, roles, fan, test=False):
    """(1) Every answering member's HAProxy routes to the live primary at once (runtime API).
    ``test``: each member's HAProxy computes the same commands and runs none."""
    reachable = pigsty_fanout.answering(members, roles)
    if not reachable:
        return {"result": False, "comment": "no member reachable"}
    conf = pigsty_inventory.instance_config(merged, reachable[0]["minion"])
    want = pigsty_haproxy.desired_health(pigsty_pgsql.haproxy_services(conf), roles)
    if test:
        answers = fan([m["minion"] for m in reachable], "pigsty_haproxy.apply_health", [want], {"test": True})
    else:
        answers = fan([m["minion"] for m in reachable], "pigsty_haproxy.apply_health", [want])
    done, held = {}, {}
    for m in reachable:
        ans = answers.get(m["minion"])
        done[m["minion"]] = ans.get("commands") if isinstance(ans, dict) else _no_answer(ans)
        if isinstance(ans, dict) and ans.get("held"):
            held[m["minion"]] = ans["held"]
    out = {"result": all(isinstance(v, list) for v in done.values()), "members": done, "held": held}
    if test:
        out["test"] = True
    return out


def handoff_plan(merged, members):
    """(leader backends, pgbouncer backends) of the cluster's HAProxy services."""
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    services = pigsty_pgsql.haproxy_services(conf)
    return pigsty_haproxy.handoff_backends(services, conf["pgbouncer_port"])


def handoff(merged, members, roles, held, fan, test=False):
    """Switchover hand-offs: a member whose pgbouncer forwards keeps forwarding, to the live
    primary, while it has clients; then it routes locally again and HAProxy's hold on it is
    released. A hold without a forward (an interrupted switchover) is released at once.
    ``held``: the servers the HAProxy step just found held on some member. ``test``: each
    forwarder's minion says what it would do (pigsty_handoff.end test=True), nothing is
    released."""
    reachable = pigsty_fanout.answering(members, roles)
    primary = next((m for m in members if roles.get(m["pg_instance"]) == "primary"), None)
    states = fan([m["minion"] for m in reachable], "pigsty_handoff.state")
    leader_be, pgb_be = handoff_plan(merged, members)
    actions, silent = [], []
    for m in reachable:
        st = states.get(m["minion"])
        if not isinstance(st, dict):
            silent.append("%s: %s" % (m["minion"], _no_answer(st)))
            continue
        is_primary = primary is not None and m is primary
        if st.get("forward"):
            target = None if (is_primary or primary is None) else primary["ip"]
            if primary is None:
                continue            # no primary to forward to, nothing to decide yet
            if test:
                res = fan([m["minion"]], "pigsty_handoff.end", [target], {"test": True})
            else:
                res = fan([m["minion"]], "pigsty_handoff.end", [target])
            now = (res.get(m["minion"]) or {}).get("forward") if isinstance(res.get(m["minion"]), dict) else "?"
            if now:
                actions.append("%s %s %d clients to %s" % (m["pg_instance"], "would forward" if test else "forwards",
                                                           st.get("clients", 0), now))
                continue
            actions.append("%s %s locally again" % (m["pg_instance"], "would route" if test else "routes"))
        if m["pg_instance"] in held:
            cmds = pigsty_haproxy.handoff_release(leader_be, pgb_be, m["pg_instance"], is_primary)
            if test:
                actions.append("HAProxy would release %s on %s: %s" % (
                    m["pg_instance"], ", ".join(x["minion"] for x in reachable), "; ".join(cmds)))
                continue
            fan([x["minion"] for x in reachable], "pigsty_haproxy.run", [cmds])
            actions.append("HAProxy released %s" % m["pg_instance"])
    if silent:
        return {"result": False, "actions": actions,
                "comment": "no hand-off state from %s" % ", ".join(silent)}
    return {"result": True, "actions": actions}


def stale_pauses(members, roles, fan, test=False):
    """A pgbouncer we paused for a hand-off whose process is gone is resumed (clients wait
    no longer than one reconciliation). Run only while no planned operation of the cluster
    is in progress (the operation resumes its own pauses). ``test``: the minions say whom
    they would resume."""
    reachable = pigsty_fanout.answering(members, roles)
    if test:
        answers = fan([m["minion"] for m in reachable], "pigsty_handoff.resume_stale", None, {"test": True})
    else:
        answers = fan([m["minion"] for m in reachable], "pigsty_handoff.resume_stale")
    actions = ["%s pgbouncer on %s (paused since %s by a hand-off that is gone)" % (
        "would resume" if test else "resumed", m["pg_instance"], answers[m["minion"]].get("paused_since"))
        for m in reachable if isinstance(answers.get(m["minion"]), dict) and answers[m["minion"]].get("resumed")]
    silent = ["%s: %s" % (m["minion"], _no_answer(answers.get(m["minion"])))
              for m in reachable if not isinstance(answers.get(m["minion"]), dict)]
    out = {"result": not silent, "actions": actions}
    if silent:
        out["comment"] = "no pause state from %s" % ", ".join(silent)
    return out


def _state(details, inst):
    """The Patroni state of ``inst`` in the live view's ``details`` (instance -> {state, ...})."""
    detail = details.get(inst)
    return detail.get("state") if isinstance(detail, dict) else None


def starting(members, details):
    """The members Patroni reports "starting" (PostgreSQL up but not yet accepting
    connections)."""
    return [m["pg_instance"] for m in members if _state(details, m["pg_instance"]) == "starting"]


def may_wait_for_wal(members, roles, details):
    """Whether the rejoin step has anything to look at: a running primary, and a member
    that is starting or did not answer (a starting member's own REST API can take seconds:
    Patroni asks its PostgreSQL first; 1.7 s measured in the sandbox)."""
    return any(r == "primary" for r in roles.values()) and any(
        _state(details, m["pg_instance"]) in ("starting", "unreachable") for m in members)


def rejoin(members, roles, details, fan, cluster_doc, test=False):
    """A member still "starting" while the cluster has a running primary may be a rewound
    member waiting for WAL that an idle primary has not written yet (see
    _modules/pigsty_rejoin.py): the primary writes one small record. Harmless for a member
    that is starting for another reason. A member that did not answer is looked up in the
    primary's view of the cluster (``cluster_doc(ip)``: its /cluster document, from the DCS)."""
    primary = next((m for m in members if roles.get(m["pg_instance"]) == "primary"), None)
    if primary is None:
        return {"result": True, "comment": "no running primary"}
    waiting = starting(members, details)
    silent = {m["pg_instance"] for m in members if _state(details, m["pg_instance"]) == "unreachable"}
    if silent:
        try:
            seen = pigsty_patroni.members(cluster_doc(primary["ip"]))
        except pigsty_patroni.PatroniError as exc:
            return {"result": True, "comment": "the primary's view of the cluster is not available: %s" % exc}
        waiting += sorted(m["name"] for m in seen if m["name"] in silent and m["state"] == "starting")
    if not waiting:
        return {"result": True, "comment": "no member waits for the primary's WAL"}
    if test:
        return {"result": True, "actions": ["would write a WAL record on %s (starting: %s)" % (
            primary["pg_instance"], ", ".join(waiting))]}
    ans = fan([primary["minion"]], "pigsty_rejoin.wal_record").get(primary["minion"])
    if isinstance(ans, dict) and ans.get("result"):
        return {"result": True, "actions": ["WAL record written on %s at %s (starting: %s)" % (
            primary["pg_instance"], ans.get("lsn"), ", ".join(waiting))]}
    return {"result": False, "comment": "no WAL record written on %s (starting: %s): %s" % (
        primary["pg_instance"], ", ".join(waiting), ans.get("comment") if isinstance(ans, dict) else ans)}


def vip(merged, members, roles, fan, test=False):
    """(2) The VIP is on the live primary only (a standby cluster's: its standby leader). ``test``: who holds it is asked (read-only),
    nothing is added or removed."""
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    if not conf.get("pg_vip_enabled"):
        return {"result": True, "comment": "VIP disabled"}
    address, iface = conf["pg_vip_address"], conf["pg_vip_interface"]
    primary = [m for m in members if roles.get(m["pg_instance"]) in pigsty_patroni.LEADER_ROLES]
    reachable = pigsty_fanout.answering(members, roles)
    holds = fan([m["minion"] for m in reachable], "pigsty_vip.holds", [address, iface])
    actions, failed = [], []
    for m in reachable:
        should = bool(primary) and m is primary[0]
        held = holds.get(m["minion"])
        if not isinstance(held, bool):
            failed.append("%s: %s" % (m["minion"], _no_answer(held)))
            continue
        if held == should:
            continue
        if not test:
            done = fan([m["minion"]], "pigsty_vip.ensure", [address, iface], {"present": should})
            if not isinstance(done.get(m["minion"]), bool):
                failed.append("%s: not %s: %s" % (m["minion"], "added" if should else "removed",
                                                  _no_answer(done.get(m["minion"]))))
                continue
        if should:
            actions.append("%s on %s" % ("would add" if test else "added", m["pg_instance"]))
        else:
            actions.append("%s from %s" % ("would remove" if test else "removed", m["pg_instance"]))
    out = {"result": not failed, "holder": primary[0]["pg_instance"] if primary else None, "actions": actions,
           "address": address}
    if failed:
        out["comment"] = "VIP %s: %s" % (address, "; ".join(failed))
    if test:
        out["test"] = True
    return out


def local_meta(inv, meta):
    """The meta node this master runs on (its address is one of this host's), if any."""
    try:
        local = set(salt.utils.network.ip_addrs(include_loopback=False))
    except Exception:  # noqa: BLE001 - no local shortcut then
        return None
    nodes = inv.get("nodes") or {}
    return next((n for n in meta if (nodes.get(n) or {}).get("ip") in local), None)


def meta(inv, cluster, roles, fan, test=False):
    """(3) and (4) on the meta nodes: the live roles into Prometheus' targets and DNS
    (pigsty_live.record). The meta node the master itself runs on (Pigsty's layout) is
    written directly, without a Salt round trip; the others through Salt. ``test``: each
    says what would change (record, targets, dns), nothing is written."""
    metas = pigsty_inventory.meta_nodes(inv)
    local = local_meta(inv, metas)
    answers = {}
    if local:
        try:
            if test:
                answers[local] = pigsty_live_files.record(inv, cluster, dict(roles), reload_dnsmasq, test=True)
            else:
                answers[local] = pigsty_live_files.record(inv, cluster, dict(roles), reload_dnsmasq)
        except (OSError, ValueError) as exc:
            log.warning("pigsty_ha: writing the live roles on %s directly failed (%s): through Salt", local, exc)
            local = None
    others = [n for n in metas if n != local]
    if test:
        answers.update(fan(others, "pigsty_live.record", [cluster, dict(roles)], {"test": True}))
    else:
        answers.update(fan(others, "pigsty_live.record", [cluster, dict(roles)]))
    ok = all(isinstance(answers.get(n), dict) for n in metas)
    out = {"result": ok, "meta": {n: answers.get(n, "no answer") for n in metas}}
    if test:
        out["test"] = True
    return out


def reload_dnsmasq():
    subprocess.run(["systemctl", "kill", "-s", "HUP", "dnsmasq"], capture_output=True, timeout=10, check=False)
