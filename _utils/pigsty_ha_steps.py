"""The steps of a reconciliation: each makes one thing follow the live roles, is
idempotent, and reports what it did. ``fan`` runs a function on minions
(pigsty_fanout.fan_out bound to the master's options)."""
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


def haproxy(merged, members, roles, fan):
    """(1) Every answering member's HAProxy routes to the live primary at once (runtime API)."""
    reachable = pigsty_fanout.answering(members, roles)
    if not reachable:
        return {"result": False, "comment": "no member reachable"}
    conf = pigsty_inventory.instance_config(merged, reachable[0]["minion"])
    want = pigsty_haproxy.desired_health(pigsty_pgsql.haproxy_services(conf), roles)
    answers = fan([m["minion"] for m in reachable], "pigsty_haproxy.apply_health", [want])
    done, held = {}, {}
    for m in reachable:
        ans = answers.get(m["minion"])
        done[m["minion"]] = ans.get("commands") if isinstance(ans, dict) else "no answer: %s" % (ans,)
        if isinstance(ans, dict) and ans.get("held"):
            held[m["minion"]] = ans["held"]
    return {"result": all(isinstance(v, list) for v in done.values()), "members": done, "held": held}


def handoff_plan(merged, members):
    """(leader backends, pgbouncer backends) of the cluster's HAProxy services."""
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    services = pigsty_pgsql.haproxy_services(conf)
    return pigsty_haproxy.handoff_backends(services, conf["pgbouncer_port"])


def handoff(merged, members, roles, held, fan):
    """Switchover hand-offs: a member whose pgbouncer forwards keeps forwarding, to the live
    primary, while it has clients; then it routes locally again and HAProxy's hold on it is
    released. A hold without a forward (an interrupted switchover) is released at once.
    ``held``: the servers the HAProxy step just found held on some member."""
    reachable = pigsty_fanout.answering(members, roles)
    primary = next((m for m in members if roles.get(m["pg_instance"]) == "primary"), None)
    states = fan([m["minion"] for m in reachable], "pigsty_handoff.state")
    leader_be, pgb_be = handoff_plan(merged, members)
    actions = []
    for m in reachable:
        st = states.get(m["minion"])
        if not isinstance(st, dict):
            continue
        is_primary = primary is not None and m is primary
        if st.get("forward"):
            target = None if (is_primary or primary is None) else primary["ip"]
            if primary is None:
                continue            # no primary to forward to, nothing to decide yet
            res = fan([m["minion"]], "pigsty_handoff.end", [target])
            now = (res.get(m["minion"]) or {}).get("forward") if isinstance(res.get(m["minion"]), dict) else "?"
            if now:
                actions.append("%s forwards %d clients to %s" % (m["pg_instance"], st.get("clients", 0), now))
                continue
            actions.append("%s routes locally again" % m["pg_instance"])
        if m["pg_instance"] in held:
            cmds = pigsty_haproxy.handoff_release(leader_be, pgb_be, m["pg_instance"], is_primary)
            fan([x["minion"] for x in reachable], "pigsty_haproxy.run", [cmds])
            actions.append("HAProxy released %s" % m["pg_instance"])
    return {"result": True, "actions": actions}


def stale_pauses(members, roles, fan):
    """A pgbouncer we paused for a hand-off whose process is gone is resumed (clients wait
    no longer than one reconciliation). Run only while no planned operation of the cluster
    is in progress (the operation resumes its own pauses)."""
    reachable = pigsty_fanout.answering(members, roles)
    answers = fan([m["minion"] for m in reachable], "pigsty_handoff.resume_stale")
    actions = ["resumed pgbouncer on %s (paused since %s by a hand-off that is gone)" % (
        m["pg_instance"], answers[m["minion"]].get("paused_since"))
        for m in reachable if isinstance(answers.get(m["minion"]), dict) and answers[m["minion"]].get("resumed")]
    ok = all(isinstance(answers.get(m["minion"]), dict) for m in reachable)
    return {"result": ok, "actions": actions}


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


def rejoin(members, roles, details, fan, cluster_doc):
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
    ans = fan([primary["minion"]], "pigsty_rejoin.wal_record").get(primary["minion"])
    if isinstance(ans, dict) and ans.get("result"):
        return {"result": True, "actions": ["WAL record written on %s at %s (starting: %s)" % (
            primary["pg_instance"], ans.get("lsn"), ", ".join(waiting))]}
    return {"result": False, "comment": "no WAL record written on %s (starting: %s): %s" % (
        primary["pg_instance"], ", ".join(waiting), ans.get("comment") if isinstance(ans, dict) else ans)}


def vip(merged, members, roles, fan):
    """(2) The VIP is on the live primary only."""
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    if not conf.get("pg_vip_enabled"):
        return {"result": True, "comment": "VIP disabled"}
    address, iface = conf["pg_vip_address"], conf["pg_vip_interface"]
    primary = [m for m in members if roles.get(m["pg_instance"]) == "primary"]
    reachable = pigsty_fanout.answering(members, roles)
    holds = fan([m["minion"] for m in reachable], "pigsty_vip.holds", [address, iface])
    actions = []
    for m in reachable:
        should = bool(primary) and m is primary[0]
        if holds.get(m["minion"]) is True and not should:
            fan([m["minion"]], "pigsty_vip.ensure", [address, iface], {"present": False})
            actions.append("removed from %s" % m["pg_instance"])
        elif holds.get(m["minion"]) is False and should:
            fan([m["minion"]], "pigsty_vip.ensure", [address, iface], {"present": True})
            actions.append("added on %s" % m["pg_instance"])
    return {"result": True, "holder": primary[0]["pg_instance"] if primary else None, "actions": actions}


def local_meta(inv, meta):
    """The meta node this master runs on (its address is one of this host's), if any."""
    try:
        local = set(salt.utils.network.ip_addrs(include_loopback=False))
    except Exception:  # noqa: BLE001 - no local shortcut then
        return None
    nodes = inv.get("nodes") or {}
    return next((n for n in meta if (nodes.get(n) or {}).get("ip") in local), None)


def meta(inv, cluster, roles, fan):
    """(3) and (4) on the meta nodes: the live roles into Prometheus' targets and DNS
    (pigsty_live.record). The meta node the master itself runs on (Pigsty's layout) is
    written directly, without a Salt round trip; the others through Salt."""
    metas = pigsty_inventory.meta_nodes(inv)
    local = local_meta(inv, metas)
    answers = {}
    if local:
        try:
            answers[local] = pigsty_live_files.record(inv, cluster, dict(roles), reload_dnsmasq)
        except (OSError, ValueError) as exc:
            log.warning("pigsty_ha: writing the live roles on %s directly failed (%s): through Salt", local, exc)
            local = None
    answers.update(fan([n for n in metas if n != local], "pigsty_live.record", [cluster, dict(roles)]))
    ok = all(isinstance(answers.get(n), dict) for n in metas)
    return {"result": ok, "meta": {n: answers.get(n, "no answer") for n in metas}}


def reload_dnsmasq():
    subprocess.run(["systemctl", "kill", "-s", "HUP", "dnsmasq"], capture_output=True, timeout=10, check=False)
