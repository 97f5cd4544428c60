"""Event-driven HA: bring a cluster's routing in line with what Patroni says is true.

    salt-run pigsty_ha.reconcile pg-test        # what the reactor runs on a Patroni event
    salt-run pigsty_ha.reconcile_all            # every cluster (the master's schedule)
    salt-run pigsty_ha.status pg-test           # members, roles, lag, VIP holder, HAProxy view
    salt-run pigsty_ha.history pg-test          # events and what was done about them
    salt-run pigsty_ha.switchover pg-test [candidate=pg-test-2]

Reconciliation, in order: (1) every member's HAProxy routes to the live primary at once
(runtime API); (2) the VIP is on the primary only; (3) the cluster's Prometheus targets
carry the live roles and (4) DNS `<cluster>-primary` points at the primary (both on the
meta nodes, pigsty_live.record); (5) the event and
the actions are appended to the cluster's history. Every step is idempotent: duplicate or
late events are harmless. A malformed or forged event is logged and changes nothing.
"""
import json
import logging
import os
import time

import salt.client
import salt.exceptions

import pigsty_events
import pigsty_haproxy
import pigsty_inventory
import pigsty_patroni
import pigsty_pgsql
import pigsty_pillar

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_ha"

CALL_TIMEOUT = 5        # seconds for each fan-out to the members
REST_TIMEOUT = 1.0      # seconds for each Patroni REST call


def __virtual__():
    return __virtualname__


# ------------------------------------------------------------------ live view
def _inventory():
    merged, _problems = pigsty_pillar.full_inventory(__opts__)
    return merged, pigsty_inventory.inventory(merged)


def _members(inv, cluster):
    if cluster not in (inv.get("clusters") or {}):
        raise salt.exceptions.SaltInvocationError(
            "cluster: %r is not a cluster of the inventory (expected one of: %s)" % (
                cluster, ", ".join(sorted(inv.get("clusters") or {}))))
    return pigsty_inventory.cluster_members(inv, cluster)


def live_roles(members, port):
    """instance -> primary | replica | ... | unreachable, from the members' Patroni APIs
    (each asked about itself, bounded); plus the leader's /cluster view for lag."""
    roles, details = {}, {}
    for m in members:
        try:
            st = pigsty_patroni.get_json(m["ip"], port, "/patroni", timeout=REST_TIMEOUT)
            role = pigsty_patroni.normalize_role(st.get("role"))
            roles[m["pg_instance"]] = role if st.get("state") == "running" else "stopped"
            details[m["pg_instance"]] = {"state": st.get("state"), "timeline": st.get("timeline")}
        except pigsty_patroni.PatroniError as exc:
            roles[m["pg_instance"]] = "unreachable"
            details[m["pg_instance"]] = {"state": "unreachable", "error": str(exc)}
    # two members claiming primary: trust the DCS leader key (via /cluster)
    primaries = [i for i, r in roles.items() if r == "primary"]
    if len(primaries) > 1:
        leader, _errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT)
        for inst in primaries:
            if not leader or inst != leader["name"]:
                roles[inst] = "demoting"
    return roles, details


def _client():
    return salt.client.get_local_client(__opts__["conf_file"])


def _fan_out(minions, fun, arg=None, kwarg=None):
    """Run ``fun`` on the minions in parallel; {minion: return} (missing = no answer)."""
    if not minions:
        return {}
    client = _client()
    try:
        return client.cmd(minions, fun, arg=arg or [], kwarg=kwarg or {}, tgt_type="list",
                          timeout=CALL_TIMEOUT)
    finally:
        client.destroy()


# ------------------------------------------------------------------ the steps
def _step_haproxy(merged, members, roles):
    reachable = [m for m in members if roles.get(m["pg_instance"]) != "unreachable"]
    if not reachable:
        return {"result": False, "comment": "no member reachable"}
    conf = pigsty_inventory.instance_config(merged, reachable[0]["minion"])
    want = pigsty_haproxy.desired_health(pigsty_pgsql.haproxy_services(conf), roles)
    answers = _fan_out([m["minion"] for m in reachable], "pigsty_haproxy.apply_health", [want])
    done = {}
    for m in reachable:
        ans = answers.get(m["minion"])
        done[m["minion"]] = ans.get("commands") if isinstance(ans, dict) else "no answer: %s" % (ans,)
    return {"result": all(isinstance(v, list) for v in done.values()), "members": done}


def _step_vip(merged, members, roles):
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    if not conf.get("pg_vip_enabled"):
        return {"result": True, "comment": "VIP disabled"}
    address, iface = conf["pg_vip_address"], conf["pg_vip_interface"]
    primary = [m for m in members if roles.get(m["pg_instance"]) == "primary"]
    reachable = [m for m in members if roles.get(m["pg_instance"]) != "unreachable"]
    holds = _fan_out([m["minion"] for m in reachable], "pigsty_vip.holds", [address, iface])
    actions = []
    for m in reachable:
        should = bool(primary) and m is primary[0]
        if holds.get(m["minion"]) is True and not should:
            _fan_out([m["minion"]], "pigsty_vip.ensure", [address, iface], {"present": False})
            actions.append("removed from %s" % m["pg_instance"])
        elif holds.get(m["minion"]) is False and should:
            _fan_out([m["minion"]], "pigsty_vip.ensure", [address, iface], {"present": True})
            actions.append("added on %s" % m["pg_instance"])
    return {"result": True, "holder": primary[0]["pg_instance"] if primary else None, "actions": actions}


def _step_meta(inv, fun, args):
    """Steps (3) and (4) run on the meta nodes (pigsty_live.record)."""
    meta = pigsty_inventory.meta_nodes(inv)
    answers = _fan_out(meta, fun, args)
    ok = all(isinstance(answers.get(n), dict) for n in meta)
    return {"result": ok, "meta": {n: answers.get(n, "no answer") for n in meta}}


def _history_path(cluster):
    return os.path.join(__opts__["cachedir"], "pigsty", "history", "%s.jsonl" % cluster)


def _record(cluster, entry):
    path = _history_path(cluster)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


# ------------------------------------------------------------------ entry points
def reconcile(cluster=None, event=None):
    """Make HAProxy, the VIP, Prometheus targets and DNS of ``cluster`` follow Patroni's
    live view; with ``event`` (a Patroni beacon payload) the cluster comes from the event,
    which is checked first: unknown cluster, bad instance or missing fields -> logged,
    nothing changed.

    CLI example::

        salt-run pigsty_ha.reconcile pg-test
    """
    t0 = time.time()
    merged, inv = _inventory()
    if event is not None:
        clusters = {name: {m["pg_instance"]: m["ip"] for m in pigsty_inventory.cluster_members(inv, name)}
                    for name in (inv.get("clusters") or {})}
        problems = pigsty_events.check_payload(event, clusters)
        if problems:
            log.error("pigsty_ha: refusing Patroni event: %s", "; ".join(problems))
            __context__["retcode"] = 1
            return {"result": False, "retcode": 1, "comment": "event refused: " + "; ".join(problems)}
        cluster = event["cluster"]
    if not cluster:
        raise salt.exceptions.SaltInvocationError("cluster: missing (or pass event=...)")
    members = _members(inv, cluster)
    port = pigsty_inventory.cluster_vars(inv, cluster)["patroni_port"]
    roles, _details = live_roles(members, port)
    steps = {"haproxy": _step_haproxy(merged, members, roles)}
    steps["vip"] = _step_vip(merged, members, roles)
    steps["targets_dns"] = _step_meta(inv, "pigsty_live.record", [cluster, dict(roles)])
    entry = {"time": t0, "cluster": cluster, "event": event, "roles": roles, "steps": steps,
             "duration": round(time.time() - t0, 3)}
    _record(cluster, entry)
    ok = all(s.get("result") for s in steps.values())
    if not ok:
        __context__["retcode"] = 1
    log.info("pigsty_ha: reconciled %s in %.2fs: roles %s", cluster, entry["duration"], roles)
    return {"result": ok, "cluster": cluster, "roles": roles, "steps": steps, "duration": entry["duration"]}


def reconcile_all():
    """Reconcile every cluster (missed events: the master's schedule, master/minion start).

    CLI example::

        salt-run pigsty_ha.reconcile_all
    """
    _merged, inv = _inventory()
    return {name: reconcile(name).get("result") for name in sorted(inv.get("clusters") or {})}


def history(cluster, last=20):
    """The last ``last`` events of a cluster and what was done about them.

    CLI example::

        salt-run pigsty_ha.history pg-test
    """
    path = _history_path(cluster)
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        lines = fh.readlines()[-int(last):]
    out = []
    for line in lines:
        e = json.loads(line)
        ev = e.get("event") or {}
        out.append({
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"])),
            "trigger": "%s %s: %s -> %s" % (ev.get("source", "event"), ev.get("instance"), ev.get("old_role"),
                                          ev.get("new_role")) if ev else "reconcile",
            "primary": next((i for i, r in e["roles"].items() if r == "primary"), None),
            "roles": e["roles"],
            "haproxy": {m: c for m, c in e["steps"]["haproxy"].get("members", {}).items() if c},
            "vip": e["steps"]["vip"].get("actions") or e["steps"]["vip"].get("comment") or "in place",
            "ok": all(s.get("result") for s in e["steps"].values()),
            "duration": e["duration"],
        })
    return out


def status(cluster):
    """One table of the cluster: members with role, state, lag, timeline; VIP holder; each
    member's HAProxy view of the primary service.

    CLI example::

        salt-run pigsty_ha.status pg-test
    """
    merged, inv = _inventory()
    members = _members(inv, cluster)
    port = pigsty_inventory.cluster_vars(inv, cluster)["patroni_port"]
    roles, details = live_roles(members, port)
    leader, _errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT)
    lag = {}
    for m in members:
        try:
            doc = pigsty_patroni.get_json(m["ip"], port, "/cluster", timeout=REST_TIMEOUT)
            lag = {x["name"]: x["lag"] for x in pigsty_patroni.members(doc)}
            break
        except pigsty_patroni.PatroniError:
            continue
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    reachable = [m["minion"] for m in members if roles[m["pg_instance"]] != "unreachable"]
    vip = _fan_out(reachable, "pigsty_vip.holds", [conf["pg_vip_address"], conf["pg_vip_interface"]]) \
        if conf.get("pg_vip_enabled") else {}
    ha = _fan_out(reachable, "pigsty_haproxy.servers")
    rows = []
    for m in members:
        inst = m["pg_instance"]
        view = ha.get(m["minion"])
        primary_svc = (view or {}).get("%s-primary" % cluster, {}) if isinstance(view, dict) else {}
        rows.append({
            "instance": inst, "ip": m["ip"], "pillar_role": m["pg_role"], "role": roles[inst],
            "state": details[inst].get("state"), "timeline": details[inst].get("timeline"),
            "lag": lag.get(inst), "vip": vip.get(m["minion"]) is True,
            "haproxy_5433_up": sorted(s for s, st in primary_svc.items() if st["op"] == "UP"),
        })
    return {"cluster": cluster, "leader": leader["name"] if leader else None, "members": rows}


def switchover(cluster, candidate=None, pause=True, max_lag=1048576):
    """Planned switchover: refuse unsafe requests (no healthy replica, candidate unknown,
    down or lagging more than ``max_lag`` bytes); PAUSE pgbouncer on every member so clients
    through 5433 wait instead of failing; switch through Patroni; reconcile; RESUME.

    CLI example::

        salt-run pigsty_ha.switchover pg-test candidate=pg-test-2
    """
    _merged, inv = _inventory()
    members = _members(inv, cluster)
    port = pigsty_inventory.cluster_vars(inv, cluster)["patroni_port"]
    leader, errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT)
    if not leader:
        return _refuse("%s has no leader (%s): use failover" % (cluster, "; ".join(errors[-2:])))
    doc = pigsty_patroni.get_json(leader["host"], port, "/cluster", timeout=REST_TIMEOUT)
    healthy = [m for m in pigsty_patroni.members(doc)
               if m["role"] == "replica" and m["state"] in ("running", "streaming")
               and not m["tags"].get("nofailover") and (m["lag"] or 0) <= max_lag]
    if candidate is not None:
        known = {m["pg_instance"] for m in members}
        if candidate not in known:
            return _refuse("candidate: %r is not a member of %s (expected one of: %s)" % (
                candidate, cluster, ", ".join(sorted(known))))
        if candidate not in [m["name"] for m in healthy]:
            return _refuse("candidate %s is not a healthy replica within %d bytes of lag" % (candidate, max_lag))
    elif not healthy:
        return _refuse("%s has no healthy replica to switch over to" % cluster)
    minions = [m["minion"] for m in members]
    t0 = time.time()
    paused = []
    if pause:
        answers = _fan_out(minions, "pgbouncer.pause", [], {"timeout": 10})
        paused = [n for n, ok in answers.items() if ok is True]
    try:
        body = {"leader": leader["name"]}
        if candidate:
            body["candidate"] = candidate
        code, answer = pigsty_patroni.request(leader["host"], port, "/switchover", method="POST",
                                              body=body, timeout=30)
        if code != 200:
            return _refuse("Patroni refused the switchover (HTTP %s): %s" % (code, answer))
        new = None
        deadline = time.time() + 30
        while time.time() < deadline:
            new, _e = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT)
            if new and new["name"] != leader["name"] and new.get("state") == "running":
                break
            time.sleep(0.2)
        result = reconcile(cluster)
    finally:
        if paused:
            _fan_out(paused, "pgbouncer.resume")
    return {"result": bool(new and new["name"] != leader["name"]), "old": leader["name"],
            "new": new["name"] if new else None, "paused": paused,
            "duration": round(time.time() - t0, 3), "reconcile": result.get("result")}


def failover(cluster, candidate):
    """Manual failover to ``candidate`` (used when the cluster has no healthy leader);
    refuses a candidate that is not a running replica.

    CLI example::

        salt-run pigsty_ha.failover pg-test pg-test-2
    """
    _merged, inv = _inventory()
    members = _members(inv, cluster)
    port = pigsty_inventory.cluster_vars(inv, cluster)["patroni_port"]
    target = [m for m in members if m["pg_instance"] == candidate]
    if not target:
        return _refuse("candidate: %r is not a member of %s" % (candidate, cluster))
    try:
        st = pigsty_patroni.get_json(target[0]["ip"], port, "/patroni", timeout=REST_TIMEOUT)
    except pigsty_patroni.PatroniError as exc:
        return _refuse("candidate %s is unreachable: %s" % (candidate, exc))
    if pigsty_patroni.normalize_role(st.get("role")) != "replica" or st.get("state") != "running":
        return _refuse("candidate %s is not a running replica (role %s, state %s)" % (
            candidate, st.get("role"), st.get("state")))
    code, answer = pigsty_patroni.request(target[0]["ip"], port, "/failover", method="POST",
                                          body={"candidate": candidate}, timeout=30)
    if code != 200:
        return _refuse("Patroni refused the failover (HTTP %s): %s" % (code, answer))
    time.sleep(1)
    return {"result": True, "candidate": candidate, "reconcile": reconcile(cluster).get("result")}


def _refuse(reason):
    log.warning("pigsty_ha: refused: %s", reason)
    __context__["retcode"] = 1
    return {"result": False, "retcode": 1, "comment": reason}
