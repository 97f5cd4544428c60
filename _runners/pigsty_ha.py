"""Event-driven HA: bring a cluster's routing in line with what Patroni says is true.

    salt-run pigsty_ha.reconcile pg-test        # what the reactor runs on a Patroni event
    salt-run pigsty_ha.reconcile_all            # every cluster (the master's schedule)
    salt-run pigsty_ha.status pg-test           # members, roles, lag, VIP holder, HAProxy view
    salt-run pigsty_ha.history pg-test          # events and what was done about them
    salt-run pigsty_ha.switchover pg-test [candidate=pg-test-2]   # clients through 5433 do not fail

Reconciliation, in order: (1) every member's HAProxy routes to the live primary at once
(runtime API); (2) the VIP is on the primary only; (3) the cluster's Prometheus targets
carry the live roles and (4) DNS `<cluster>-primary` points at the primary (both on the
meta nodes, pigsty_live.record); (5) the event and
the actions are appended to the cluster's history. Every step is idempotent: duplicate or
late events are harmless. A malformed or forged event is logged and changes nothing.
"""
import contextlib
import fcntl
import json
import logging
import os
import subprocess
import threading
import time

import salt.client
import salt.exceptions
import salt.utils.jid
import salt.utils.network

import pigsty_events
import pigsty_haproxy
import pigsty_inventory
import pigsty_live_files
import pigsty_patroni
import pigsty_pgsql
import pigsty_pillar

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_ha"

CALL_TIMEOUT = 5        # seconds for each fan-out to the members
REST_TIMEOUT = 0.5      # seconds for each Patroni REST call (a dead member costs this once)


def __virtual__():
    return __virtualname__


# ------------------------------------------------------------------ live view
_INVENTORY_CACHE = {}


def _pillar_stamp():
    """Newest modification time under the pillar roots (a pillar edit invalidates the cache)."""
    newest = 0.0
    for roots in (__opts__.get("pillar_roots") or {}).values():
        for root in roots:
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    try:
                        newest = max(newest, os.path.getmtime(os.path.join(dirpath, name)))
                    except OSError:
                        continue
    return newest


def _inventory(max_age=300):
    """The merged inventory. Compiling every minion's pillar takes about a second, and the
    reactor runs this on every Patroni event, each time in a process of its own: the result
    is kept in this process and in the master's cache directory (root only, like Salt's own
    pillar cache) until a pillar file changes or ``max_age`` seconds pass."""
    stamp = _pillar_stamp()
    cached = _INVENTORY_CACHE.get("inv")
    if cached and cached[0] == stamp and time.time() - cached[1] < max_age:
        return cached[2], cached[3]
    path = os.path.join(__opts__["cachedir"], "pigsty", "inventory.json")
    try:
        with open(path) as fh:
            doc = json.load(fh)
        if doc["stamp"] == stamp and 0 <= time.time() - doc["time"] < max_age:
            _INVENTORY_CACHE["inv"] = (stamp, doc["time"], doc["merged"], doc["inv"])
            return doc["merged"], doc["inv"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    merged, _problems = pigsty_pillar.full_inventory(__opts__)
    inv = pigsty_inventory.inventory(merged)
    now = time.time()
    _INVENTORY_CACHE["inv"] = (stamp, now, merged, inv)
    _store_inventory(path, {"stamp": stamp, "time": now, "merged": merged, "inv": inv})
    return merged, inv


def _store_inventory(path, doc):
    """Write the inventory cache (mode 0600, atomically) if JSON gives it back unchanged."""
    try:
        text = json.dumps(doc, sort_keys=True)
        if json.loads(text) != doc:         # e.g. non-string keys: not cached, compiled again
            return False
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = "%s.%d" % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return True
    except (OSError, TypeError, ValueError) as exc:
        log.debug("pigsty_ha: inventory cache not written: %s", exc)
        return False


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

    def ask(m):
        try:
            st = pigsty_patroni.get_json(m["ip"], port, "/patroni", timeout=REST_TIMEOUT)
            role = pigsty_patroni.normalize_role(st.get("role"))
            roles[m["pg_instance"]] = role if st.get("state") == "running" else "stopped"
            details[m["pg_instance"]] = {"state": st.get("state"), "timeline": st.get("timeline")}
        except pigsty_patroni.PatroniError as exc:
            roles[m["pg_instance"]] = "unreachable"
            details[m["pg_instance"]] = {"state": "unreachable", "error": str(exc)}
    # all at once: a dead member costs one timeout, not one per member before it
    _parallel({m["pg_instance"]: (ask, m) for m in members})
    reachable = [m["ip"] for m in members if roles[m["pg_instance"]] != "unreachable"]
    primaries = [i for i, r in roles.items() if r == "primary"]
    if not reachable or (len(primaries) <= 1 and "unreachable" not in roles.values()):
        return roles, details
    leader, _errors = pigsty_patroni.find_leader(reachable, port, REST_TIMEOUT)   # the DCS leader key
    # two members claiming primary: only the leader key's holder is
    if len(primaries) > 1:
        for inst in primaries:
            if not leader or inst != leader["name"]:
                roles[inst] = "demoting"
    # a member that did not answer but still holds the leader key may just be slow: it is
    # "unresponsive", and its routing is left to HAProxy's checks (never forced down)
    if leader and roles.get(leader["name"]) == "unreachable":
        roles[leader["name"]] = "unresponsive"
    return roles, details


def _parallel(calls):
    """Run {name: (function, *args)} in threads; {name: return value or the exception}."""
    out = {}

    def run(name, fn, args):
        try:
            out[name] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported in the step's result
            log.exception("pigsty_ha: %s failed", name)
            out[name] = {"result": False, "comment": "%s: %s" % (type(exc).__name__, exc)}
    threads = [threading.Thread(target=run, args=(name, c[0], c[1:]), daemon=True) for name, c in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CALL_TIMEOUT * 6)
    return out


_JID_LOCK = threading.Lock()
_LAST_JID = [""]


def _unique_jid():
    """A job id no other fan-out of this process has: jids are timestamps, and two threads
    publishing in the same microsecond would share one, which a minion runs only once."""
    with _JID_LOCK:
        jid = salt.utils.jid.gen_jid(__opts__)
        while jid <= _LAST_JID[0]:
            time.sleep(0.000001)
            jid = salt.utils.jid.gen_jid(__opts__)
        _LAST_JID[0] = jid
        return jid


def _answering(members, roles):
    """Members whose Patroni answered: only their minions are asked (a member that did not
    answer, dead or just slow, would hold every fan-out for its whole timeout)."""
    return [m for m in members if roles.get(m["pg_instance"]) not in ("unreachable", "unresponsive")]


def _client():
    return salt.client.get_local_client(__opts__["conf_file"])


def _fan_out(minions, fun, arg=None, kwarg=None, timeout=CALL_TIMEOUT):
    """Run ``fun`` on the minions in parallel; {minion: return} (missing = no answer)."""
    if not minions:
        return {}
    client = _client()
    try:
        return client.cmd(minions, fun, arg=arg or [], kwarg=kwarg or {}, tgt_type="list",
                          timeout=timeout, jid=_unique_jid())
    finally:
        client.destroy()


# ------------------------------------------------------------------ the steps
def _step_haproxy(merged, members, roles):
    reachable = _answering(members, roles)
    if not reachable:
        return {"result": False, "comment": "no member reachable"}
    conf = pigsty_inventory.instance_config(merged, reachable[0]["minion"])
    want = pigsty_haproxy.desired_health(pigsty_pgsql.haproxy_services(conf), roles)
    answers = _fan_out([m["minion"] for m in reachable], "pigsty_haproxy.apply_health", [want])
    done, held = {}, {}
    for m in reachable:
        ans = answers.get(m["minion"])
        done[m["minion"]] = ans.get("commands") if isinstance(ans, dict) else "no answer: %s" % (ans,)
        if isinstance(ans, dict) and ans.get("held"):
            held[m["minion"]] = ans["held"]
    return {"result": all(isinstance(v, list) for v in done.values()), "members": done, "held": held}


def _handoff_plan(merged, members):
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    services = pigsty_pgsql.haproxy_services(conf)
    return pigsty_haproxy.handoff_backends(services, conf["pgbouncer_port"])


def _step_handoff(merged, members, roles, held):
    """Switchover hand-offs: a member whose pgbouncer forwards keeps forwarding, to the live
    primary, while it has clients; then it routes locally again and HAProxy's hold on it is
    released. A hold without a forward (an interrupted switchover) is released at once.
    ``held``: the servers the HAProxy step just found held on some member."""
    reachable = _answering(members, roles)
    primary = next((m for m in members if roles.get(m["pg_instance"]) == "primary"), None)
    states = _fan_out([m["minion"] for m in reachable], "pigsty_handoff.state")
    leader_be, pgb_be = _handoff_plan(merged, members)
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
            res = _fan_out([m["minion"]], "pigsty_handoff.end", [target])
            now = (res.get(m["minion"]) or {}).get("forward") if isinstance(res.get(m["minion"]), dict) else "?"
            if now:
                actions.append("%s forwards %d clients to %s" % (m["pg_instance"], st.get("clients", 0), now))
                continue
            actions.append("%s routes locally again" % m["pg_instance"])
        if m["pg_instance"] in held:
            cmds = pigsty_haproxy.handoff_release(leader_be, pgb_be, m["pg_instance"], is_primary)
            _fan_out([x["minion"] for x in reachable], "pigsty_haproxy.run", [cmds])
            actions.append("HAProxy released %s" % m["pg_instance"])
    return {"result": True, "actions": actions}


def _step_vip(merged, members, roles):
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    if not conf.get("pg_vip_enabled"):
        return {"result": True, "comment": "VIP disabled"}
    address, iface = conf["pg_vip_address"], conf["pg_vip_interface"]
    primary = [m for m in members if roles.get(m["pg_instance"]) == "primary"]
    reachable = _answering(members, roles)
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


def _local_meta(inv, meta):
    """The meta node this master runs on (its address is one of this host's), if any."""
    try:
        local = set(salt.utils.network.ip_addrs(include_loopback=False))
    except Exception:  # noqa: BLE001 - no local shortcut then
        return None
    nodes = inv.get("nodes") or {}
    return next((n for n in meta if (nodes.get(n) or {}).get("ip") in local), None)


def _step_meta(inv, cluster, roles):
    """Steps (3) and (4) on the meta nodes: the live roles into Prometheus' targets and DNS
    (pigsty_live.record). The meta node the master itself runs on (Pigsty's layout) is
    written directly, without a Salt round trip; the others through Salt."""
    meta = pigsty_inventory.meta_nodes(inv)
    local = _local_meta(inv, meta)
    answers = {}
    if local:
        try:
            answers[local] = pigsty_live_files.record(inv, cluster, dict(roles), _reload_dnsmasq)
        except (OSError, ValueError) as exc:
            log.warning("pigsty_ha: writing the live roles on %s directly failed (%s): through Salt", local, exc)
            local = None
    answers.update(_fan_out([n for n in meta if n != local], "pigsty_live.record", [cluster, dict(roles)]))
    ok = all(isinstance(answers.get(n), dict) for n in meta)
    return {"result": ok, "meta": {n: answers.get(n, "no answer") for n in meta}}


def _reload_dnsmasq():
    subprocess.run(["systemctl", "kill", "-s", "HUP", "dnsmasq"], capture_output=True, timeout=10, check=False)


def _history_path(cluster):
    return os.path.join(__opts__["cachedir"], "pigsty", "history", "%s.jsonl" % cluster)


def _record(cluster, entry):
    path = _history_path(cluster)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


# ------------------------------------------------------------------ entry points
def reconcile(cluster=None, event=None, handoff=False):
    """Make HAProxy, the VIP, Prometheus targets and DNS of ``cluster`` follow Patroni's
    live view; with ``event`` (a Patroni beacon payload) the cluster comes from the event,
    which is checked first: unknown cluster, bad instance or missing fields -> logged,
    nothing changed. A switchover hand-off in progress is ended once the old primary's
    pgbouncer has no client left (checked when HAProxy holds a server, or ``handoff=True``).

    CLI example::

        salt-run pigsty_ha.reconcile pg-test
    """
    t0 = time.time()
    merged, inv = _inventory()
    t_inventory = time.time()
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
    with _cluster_lock(cluster) as last:
        if last.get("start", 0) >= t0:
            # a run that began after this request has finished meanwhile: it saw a Patroni
            # state at least as new as the one behind this request (bursts of events coalesce)
            entry = {"time": t0, "cluster": cluster, "event": event, "roles": last.get("roles", {}),
                     "steps": {}, "covered_by": last["start"], "duration": round(time.time() - t0, 3)}
            _record(cluster, entry)
            return {"result": True, "cluster": cluster, "roles": entry["roles"], "steps": {},
                    "comment": "covered by the reconciliation that started at %.3f" % last["start"],
                    "duration": entry["duration"]}
        result = _reconcile_now(merged, inv, cluster, members, event, handoff, last, t0,
                                {"inventory": round(t_inventory - t0, 3)})
    if not result["result"]:
        __context__["retcode"] = 1
    return result


@contextlib.contextmanager
def _cluster_lock(cluster, wait=120):
    """One reconciliation of a cluster at a time (others wait, bounded); yields what the
    last finished one recorded ({"start", "roles"}), to be updated in place."""
    path = os.path.join(__opts__["cachedir"], "pigsty", "reconcile-%s" % cluster)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+") as fh:
        deadline = time.time() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise salt.exceptions.CommandExecutionError(
                        "another reconciliation of %s has held its lock for %ss" % (cluster, wait))
                time.sleep(0.05)
        try:
            fh.seek(0)
            try:
                last = json.loads(fh.read() or "{}")
            except ValueError:
                last = {}
            yield last
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(last))
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _reconcile_now(merged, inv, cluster, members, event, handoff, last, requested, timings):
    t0 = time.time()
    timings["lock"] = round(t0 - requested - timings["inventory"], 3)
    last["start"] = t0
    port = pigsty_inventory.cluster_vars(inv, cluster)["patroni_port"]
    roles, _details = live_roles(members, port)
    last["roles"] = roles
    t_roles = time.time()
    # The steps touch different things and are idempotent: they start together, so that a
    # member that does not answer delays none of the others.
    steps = _parallel({
        "haproxy": (_step_haproxy, merged, members, roles),
        "vip": (_step_vip, merged, members, roles),
        "targets_dns": (_step_meta, inv, cluster, roles),
    })
    t_steps = time.time()
    held = sorted({srv for ans in steps["haproxy"].get("held", {}).values() for srv in ans})
    if (held or handoff) and not _switch_in_progress(cluster):
        steps["handoff"] = _step_handoff(merged, members, roles, set(held))
    entry = {"time": t0, "cluster": cluster, "event": event, "roles": roles, "steps": steps,
             "duration": round(time.time() - t0, 3), "requested": requested,
             "timings": dict(timings, roles=round(t_roles - t0, 3), steps=round(t_steps - t_roles, 3))}
    _record(cluster, entry)
    ok = all(s.get("result") for s in steps.values())
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
            "haproxy": {m: c for m, c in e["steps"].get("haproxy", {}).get("members", {}).items() if c},
            "vip": (e["steps"].get("vip", {}).get("actions") or e["steps"].get("vip", {}).get("comment")
                    or ("covered by the run before" if e.get("covered_by") else "in place")),
            "handoff": e["steps"].get("handoff", {}).get("actions"),
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
    reachable = [m["minion"] for m in _answering(members, roles)]
    vip = _fan_out(reachable, "pigsty_vip.holds", [conf["pg_vip_address"], conf["pg_vip_interface"]]) \
        if conf.get("pg_vip_enabled") else {}
    ha = _fan_out(reachable, "pigsty_haproxy.servers")
    rows = []
    for m in members:
        inst = m["pg_instance"]
        view = ha.get(m["minion"])
        primary_svc = view.get("%s-primary" % cluster, {}) if isinstance(view, dict) else None
        rows.append({
            "instance": inst, "ip": m["ip"], "pillar_role": m["pg_role"], "role": roles[inst],
            "state": details[inst].get("state"), "timeline": details[inst].get("timeline"),
            "lag": lag.get(inst), "vip": vip.get(m["minion"]) is True,
            "haproxy_5433_up": sorted(s for s, st in primary_svc.items() if st["op"] == "UP")
            if primary_svc is not None else "no answer",
        })
    return {"cluster": cluster, "leader": leader["name"] if leader else None, "members": rows}


def _switch_lock(cluster):
    return os.path.join(__opts__["cachedir"], "pigsty", "switchover-%s" % cluster)


def _switch_in_progress(cluster, max_age=120):
    try:
        return time.time() - os.path.getmtime(_switch_lock(cluster)) < max_age
    except OSError:
        return False


def switchover(cluster, candidate=None, handoff=True, early_release=True, max_lag=1048576):
    """Planned switchover. Refuses unsafe requests (no healthy replica, candidate unknown,
    down, not streaming from the leader or lagging more than ``max_lag`` bytes); without a
    ``candidate`` the streaming replica with the least lag is taken. With ``handoff`` (the default) clients
    through 5433 do not fail: every member's HAProxy keeps the old primary (its checks
    held), the old primary's minion pauses its pgbouncer, switches through Patroni and
    points pgbouncer at the new primary before resuming (pigsty_handoff.switchover); then
    HAProxy routes new clients to the new primary and drains the old one, which forwards
    its remaining clients until they are gone (reconcile ends the hand-off).
    ``early_release``: the old primary's minion releases Patroni's leader key as soon as
    PostgreSQL is cleanly shut down and the candidate has the shutdown checkpoint, instead
    of waiting for Patroni's once-a-second poll (see pigsty_handoff).

    CLI example::

        salt-run pigsty_ha.switchover pg-test candidate=pg-test-2
    """
    merged, inv = _inventory()
    members = _members(inv, cluster)
    port = pigsty_inventory.cluster_vars(inv, cluster)["patroni_port"]
    leader, errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT)
    if not leader:
        return _refuse("%s has no leader (%s): use failover" % (cluster, "; ".join(errors[-2:])))
    if candidate is not None:
        known = {m["pg_instance"] for m in members}
        if candidate not in known:
            return _refuse("candidate: %r is not a member of %s (expected one of: %s)" % (
                candidate, cluster, ", ".join(sorted(known))))
    healthy, why, refusal = _takeover_candidates(leader, port, candidate, int(max_lag))
    if refusal:
        return _refuse(refusal)
    if candidate is None and not healthy:
        return _refuse("%s has no healthy replica to switch over to (%s)" % (
            cluster, "; ".join("%s: %s" % kv for kv in sorted(why.items())) or "no replica"))
    elif candidate is None:
        candidate = healthy[0][0]       # the streaming replica with the least lag
    old = next(m for m in members if m["pg_instance"] == leader["name"])
    minions = [m["minion"] for m in members]
    ips = {m["pg_instance"]: m["ip"] for m in members}
    leader_be, pgb_be = _handoff_plan(merged, members)
    t0 = time.time()
    lock = _switch_lock(cluster)
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    with open(lock, "w") as fh:
        fh.write(leader["name"])
    try:
        if handoff:
            # members still forwarding clients of an earlier hand-off (to this leader) wait too
            states = _fan_out([m["minion"] for m in members if m is not old], "pigsty_handoff.state")
            forwarders = [m for m in members if isinstance(states.get(m["minion"]), dict)
                          and states[m["minion"]].get("forward")]
            paused_fw = [n for n, ok in _fan_out([m["minion"] for m in forwarders], "pgbouncer.pause").items()
                         if ok is True]
            _fan_out(minions, "pigsty_haproxy.run", [pigsty_haproxy.handoff_hold(leader_be, old["pg_instance"])])
            try:
                answers = _fan_out([old["minion"]], "pigsty_handoff.switchover", [leader["name"], ips],
                                   {"candidate": candidate, "patroni_port": port, "early_release": early_release},
                                   timeout=90)
                res = answers.get(old["minion"])
                if not isinstance(res, dict):
                    res = {"result": False, "comment": "no answer from %s: %s" % (old["minion"], res)}
                if res.get("result"):
                    # forwarders follow the new primary (or route locally, on the new primary)
                    for m in forwarders:
                        if m["minion"] in paused_fw:
                            target = None if m["pg_instance"] == res["new"] else ips[res["new"]]
                            ans = _fan_out([m["minion"]], "pgbouncer.forward", [target], {"resume": True})
                            if isinstance(ans.get(m["minion"]), bool):     # forwarded and resumed
                                paused_fw.remove(m["minion"])
                    _fan_out(minions, "pigsty_haproxy.run",
                             [pigsty_haproxy.handoff_route(leader_be, pgb_be, old["pg_instance"], res["new"])])
                else:
                    _fan_out(minions, "pigsty_haproxy.run",
                             [pigsty_haproxy.handoff_release(leader_be, [], old["pg_instance"], True)])
            finally:
                if paused_fw:
                    _fan_out(paused_fw, "pgbouncer.resume")
            new_name, paused = res.get("new"), res.get("paused_s")
        else:
            body = {"leader": leader["name"]}
            if candidate:
                body["candidate"] = candidate
            code, answer = pigsty_patroni.request(leader["host"], port, "/switchover", method="POST",
                                                  body=body, timeout=30)
            res = {"result": code == 200, "comment": "Patroni answered HTTP %s: %s" % (code, answer)}
            new, _e = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT)
            new_name, paused = (new or {}).get("name"), None
    finally:
        os.unlink(lock)
    result = reconcile(cluster)
    ok = bool(res.get("result")) and bool(new_name) and new_name != leader["name"]
    if not ok:
        __context__["retcode"] = 1
    return {"result": ok, "old": leader["name"], "new": new_name, "clients_waited_s": paused,
            "clients_waited_timeline": res.get("timeline_s"), "leader_key": res.get("leader_key"),
            "comment": res.get("comment") or "switched over; %s hands its pgbouncer clients over" % leader["name"],
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
    leader, _errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT)
    if leader:
        # with a leader, Patroni's failover is a switchover at once: the same safety applies
        _healthy, _why, refusal = _takeover_candidates(leader, port, candidate, 1048576)
        if refusal:
            return _refuse(refusal)
    code, answer = pigsty_patroni.request(target[0]["ip"], port, "/failover", method="POST",
                                          body={"candidate": candidate}, timeout=30)
    if code != 200:
        return _refuse("Patroni refused the failover (HTTP %s): %s" % (code, answer))
    time.sleep(1)
    return {"result": True, "candidate": candidate, "reconcile": reconcile(cluster).get("result")}


def _takeover_candidates(leader, port, candidate, max_lag):
    """The replicas that may take over from ``leader`` (best first), why the others may not,
    and the reason to refuse ``candidate`` (None: it may, or no candidate was named)."""
    try:
        doc = pigsty_patroni.get_json(leader["host"], port, "/cluster", timeout=REST_TIMEOUT)
        leader_status = pigsty_patroni.get_json(leader["host"], port, "/patroni", timeout=REST_TIMEOUT)
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


def _refuse(reason):
    log.warning("pigsty_ha: refused: %s", reason)
    __context__["retcode"] = 1
    return {"result": False, "retcode": 1, "comment": reason}
