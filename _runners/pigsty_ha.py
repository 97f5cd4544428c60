"""Event-driven HA, the entry points: bring a cluster's routing in line with what Patroni
says is true, and run planned operations.

    salt-run pigsty_ha.reconcile pg-test        # what the reactor runs on a Patroni event
    salt-run pigsty_ha.reconcile_all            # every cluster (the master's schedule)
    salt-run pigsty_ha.status pg-test           # members, roles, lag, VIP holder, HAProxy view
    salt-run pigsty_ha.history pg-test          # events and what was done about them
    salt-run pigsty_ha.events                   # beacon events acted on and refused, by reason
    salt-run pigsty_ha.switchover pg-test [candidate=pg-test-2]   # clients through 5433 do not fail
    salt-run pigsty_ha.failover pg-test pg-test-2                 # when there is no healthy leader
    salt-run pigsty_ha.switchover pg-test test=True   # what it would do (reconcile too): changes nothing
    salt-run pigsty_ha.promote pg-delay [test=True]   # a standby cluster becomes a cluster of its own

status and the dry runs print a table (_output/pigsty_ha.py); --out=json gives the dict.

Reconciliation, in order: (1) every member's HAProxy routes to the live primary at once
(runtime API); (2) the VIP is on the primary only; (3) the cluster's Prometheus targets
carry the live roles and (4) DNS `<cluster>-primary` points at the primary (both on the
meta nodes, pigsty_live.record); (5) the event and the actions are appended to the
cluster's history. Every step is idempotent: duplicate or late events are harmless. A
malformed or forged event is logged and changes nothing.

The event path, one file each: _beacons/patroni.py (fires) -> reactor/patroni_change.sls ->
this runner -> _utils/pigsty_ha_live.py (live roles), pigsty_ha_reconcile.py (the view,
the dry run, the outcome: retcode 1 on a failure), pigsty_ha_steps.py (the steps),
pigsty_ha_history.py, pigsty_ha_locks.py; planned operations in pigsty_ha_switchover.py and,
on the old primary, _modules/pigsty_handoff.py. The compiled inventory comes from
pigsty_ha_inventory.py (cached: pigsty_inventory_cache.py), minion calls from pigsty_fanout.py.
"""
import logging
import os
import time
import types

import salt.exceptions
import salt.runner

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_events
    import pigsty_fanout
    import pigsty_ha_history
    import pigsty_ha_inventory
    import pigsty_ha_live
    import pigsty_ha_locks
    import pigsty_ha_shared_lock
    import pigsty_ha_promote
    import pigsty_ha_reconcile
    import pigsty_ha_steps
    import pigsty_ha_switchover
    import pigsty_inventory
    import pigsty_patroni
    import pigsty_patroni_rest
    from pigsty_invalid import refusal as _refusal
    from pigsty_invalid import refusing as _refusing
except ImportError as exc:
    UTILS_MISSING = str(exc)

    def _refusing(func):        # not loaded anyway: __virtual__ gives the reason
        return func
else:
    UTILS_MISSING = None
    REST_TIMEOUT = pigsty_ha_live.REST_TIMEOUT

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_ha"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


# ------------------------------------------------------------------ bound to this master
def _inventory(max_age=300):
    return pigsty_ha_inventory.load(__opts__, max_age)


def _members(inv, cluster):
    return pigsty_ha_inventory.members(inv, cluster)


def _fan_out(minions, fun, arg=None, kwarg=None, timeout=None):
    if timeout is None:
        timeout = pigsty_fanout.CALL_TIMEOUT
    return pigsty_fanout.fan_out(__opts__, minions, fun, arg, kwarg, timeout)


def _fan(*args, **kwargs):
    return _fan_out(*args, **kwargs)      # looked up at call time (tests replace _fan_out)


def _events_dir():
    return os.path.join(__opts__["cachedir"], "pigsty", "events")


def _record(cluster, entry):
    pigsty_ha_history.record(__opts__, cluster, entry)


def _cluster_lock(cluster, wait=120):
    return pigsty_ha_locks.reconcile_lock(__opts__, cluster, wait, shared=_shared_lock())


def _shared_lock(inv=None):
    """The locks several masters share (pigsty_ha_shared_lock.for_master), or None."""
    if inv is None:
        _merged, inv = _inventory()
    return pigsty_ha_shared_lock.for_master(__opts__, inv)


@_refusing
def _live_roles(members, port, access=None):
    return pigsty_ha_live.live_roles(members, port, REST_TIMEOUT, access)


def _ctx():
    """What the planned operations (pigsty_ha_switchover) need of this runner."""
    return types.SimpleNamespace(opts=__opts__, inventory=lambda: _inventory(), members=_members,
                                 fan=_fan, reconcile=lambda cluster: reconcile(cluster), refuse=_refuse,
                                 live_roles=lambda *a, **k: _live_roles(*a, **k),
                                 cluster_lock=lambda cluster, wait: _cluster_lock(cluster, wait),
                                 shared_lock=lambda inv=None: _shared_lock(inv),
                                 first_backup=_first_backup)


def _first_backup(cluster):
    """A promoted cluster's first backup (its stanza and a full backup: pigsty_backup.backup),
    unless it has no backups (pgbackrest_enabled: false)."""
    _merged, inv = _inventory()
    if not pigsty_inventory.cluster_vars(inv, cluster).get("pgbackrest_enabled"):
        return {"result": True, "comment": "pgbackrest_enabled is false: no backups"}
    return salt.runner.RunnerClient(__opts__).cmd("pigsty_backup.backup", [cluster],
                                                  kwarg={"type": "full"}, print_event=False)


def _shown(out):
    """A report for the operator: printed as a table by the pigsty_ha outputter unless
    --out says otherwise (--out=json: the dict itself); a refusal fails the command."""
    if isinstance(out, dict) and out.get("result") is False:
        __context__["retcode"] = out["retcode"] = 1
    return {"outputter": "pigsty_ha", "data": out}


def _refuse(reason):
    log.warning("pigsty_ha: refused: %s", reason)
    return _refusal(reason, globals())


# ------------------------------------------------------------------ reconciliation
@_refusing
def reconcile(cluster=None, event=None, handoff=False, test=False):
    """Make HAProxy, the VIP, Prometheus targets and DNS of ``cluster`` follow Patroni's
    live view; with ``event`` (a Patroni beacon payload) the cluster comes from the event,
    which is checked first: unknown cluster, bad instance or missing fields -> logged,
    nothing changed. A switchover hand-off in progress is ended once the old primary's
    pgbouncer has no client left (checked when HAProxy holds a server, or ``handoff=True``).
    ``test=True``: what it would change on which member, changing nothing (no lock, no
    history; pigsty_ha_reconcile.dry_run).

    CLI example::

        salt-run pigsty_ha.reconcile pg-test [test=True]
    """
    if test:
        if event is not None or not cluster:
            raise salt.exceptions.SaltInvocationError("test: a dry run takes a cluster (not an event)")
        return _shown(pigsty_ha_reconcile.dry_run(_ctx(), cluster))
    t0 = time.time()
    merged, inv = _inventory()
    t_inventory = time.time()
    if event is not None:
        # acted on only when the tag's minion owns the instance it names, within that
        # minion's rate limit, on a well-formed payload; refusals are counted
        members = {name: pigsty_inventory.cluster_members(inv, name) for name in (inv.get("clusters") or {})}
        event, problems = pigsty_events.admit(event, members, _events_dir())
        if problems:
            log.error("pigsty_ha: refusing Patroni event: %s", "; ".join(problems))
            return _refusal("event refused: " + "; ".join(problems), globals())
        cluster = event["cluster"]
    if not cluster:
        raise salt.exceptions.SaltInvocationError("cluster: missing (or pass event=...)")
    members = _members(inv, cluster)
    shared = _shared_lock(inv)
    with pigsty_ha_locks.reconcile_lock(__opts__, cluster, 120, shared=shared) as last:
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
                                {"inventory": round(t_inventory - t0, 3)}, shared)
    if not result["result"]:
        __context__["retcode"] = 1          # and result["retcode"]: salt-run exits 1
    return result


def _reconcile_now(merged, inv, cluster, members, event, handoff, last, requested, timings, shared):
    t0 = time.time()
    timings["lock"] = round(t0 - requested - timings["inventory"], 3)
    last["start"] = t0
    view = pigsty_ha_reconcile.view(__opts__, inv, cluster, members, _live_roles, shared=shared)
    roles, operating = view["roles"], view["operating"]
    last["roles"] = roles
    t_roles = time.time()
    # the same steps as the dry run's (pigsty_ha_steps.plan_calls), all at once
    steps = pigsty_fanout.parallel(pigsty_ha_steps.plan_calls(
        merged, inv, cluster, members, roles, view["details"], _fan, event, operating, view["cluster_doc"]))
    t_steps = time.time()
    pigsty_ha_steps.after_steps(merged, members, roles, steps, _fan, handoff, operating)
    entry = {"time": t0, "cluster": cluster, "event": event, "roles": roles, "steps": steps,
             "duration": round(time.time() - t0, 3), "requested": requested,
             "timings": dict(timings, roles=round(t_roles - t0, 3), steps=round(t_steps - t_roles, 3))}
    out = pigsty_ha_reconcile.outcome(entry)      # a failure: retcode 1, why in the comment and the history
    _record(cluster, entry)
    return out


@_refusing
def reconcile_all(test=False):
    """Reconcile every cluster (missed events: the master's schedule, master/minion start).
    A cluster whose reconciliation fails or raises is reported and the others go on.
    ``test=True``: each cluster's dry run (result None: would change; comment: what).

    CLI example::

        salt-run pigsty_ha.reconcile_all [test=True]
    """
    _merged, inv = _inventory()
    out = {}
    for name in sorted(inv.get("clusters") or {}):
        try:
            if test:
                dry = pigsty_ha_reconcile.dry_run(_ctx(), name)
                out[name] = {"result": dry["result"], "comment": dry["comment"]}
                continue
            out[name] = reconcile(name)
        except Exception as exc:  # noqa: BLE001 - one cluster's failure must not stop the others
            log.exception("pigsty_ha: reconciling %s failed", name)
            out[name] = "failed: %s: %s" % (type(exc).__name__, exc)
    if test:
        failed = sorted(n for n, v in out.items() if not isinstance(v, dict) or v["result"] is False)
        return _shown({"test": True, "result": False if failed else None, "clusters": out,
                       "comment": "cannot tell for %s" % ", ".join(failed) if failed else "nothing was changed"})
    out = pigsty_ha_reconcile.outcome_all(out)      # {cluster: result}; a failure: retcode 1 and why
    if out.get("retcode"):
        __context__["retcode"] = 1
    return out


@_refusing
def events():
    """Counts of the beacon events acted on and refused (by reason and by minion), with the
    last refusal.

    CLI example::

        salt-run pigsty_ha.events
    """
    return pigsty_events.EventCounters(_events_dir()).read()


@_refusing
def history(cluster, last=20):
    """The last ``last`` events of a cluster and what was done about them.

    CLI example::

        salt-run pigsty_ha.history pg-test
    """
    try:
        return pigsty_ha_history.read(__opts__, cluster, last)
    except ValueError as exc:
        raise salt.exceptions.SaltInvocationError(str(exc))


@_refusing
def status(cluster):
    """One table of the cluster: members with role, state, lag, timeline; VIP holder; each
    member's HAProxy view of the primary service.

    CLI example::

        salt-run pigsty_ha.status pg-test             # a table
        salt-run pigsty_ha.status pg-test --out=json  # the dict
    """
    merged, inv = _inventory()
    members = _members(inv, cluster)
    cvars = pigsty_inventory.cluster_vars(inv, cluster)
    port, access = cvars["patroni_port"], pigsty_patroni_rest.access(cvars)
    roles, details = _live_roles(members, port, access)
    leader, _errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, REST_TIMEOUT,
                                                 access=access)
    lag = {}
    for m in members:
        try:
            doc = pigsty_patroni.get_json(m["ip"], port, "/cluster", timeout=REST_TIMEOUT, access=access)
            lag = {x["name"]: x["lag"] for x in pigsty_patroni.members(doc)}
            break
        except pigsty_patroni.PatroniError:
            continue
    conf = pigsty_inventory.instance_config(merged, members[0]["minion"])
    reachable = [m["minion"] for m in pigsty_fanout.answering(members, roles)]
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
    return _shown({"cluster": cluster, "leader": leader["name"] if leader else None, "members": rows})


# ------------------------------------------------------------------ planned operations
@_refusing
def switchover(cluster, candidate=None, handoff=True, early_release=True, max_lag=1048576, test=False):
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

    One planned operation of a cluster at a time: a switchover or failover requested while
    another runs is refused at once, before anything (the message names the one running).
    A switchover starts clean: what an earlier hand-off left in HAProxy (a drained or held
    server whose member no longer forwards clients) is released first, and the result says
    so (``cleaned_before``); the new primary is made ready in every HAProxy before the old
    one is drained. Every running member's HAProxy must confirm holding the old primary's
    checks (asked twice): when one does not, nothing is switched and the command fails.

    ``test=True``: the same checks, then what it would do (leader, candidate and why, each
    member's lag and state, the checks, the steps in order), changing nothing: result None
    when it would switch over, False (and exit code 1) when it would refuse.

    CLI example::

        salt-run pigsty_ha.switchover pg-test candidate=pg-test-2 [test=True]
    """
    if test:
        return _shown(pigsty_ha_switchover.dry_run(_ctx(), cluster, candidate, handoff, early_release, max_lag))
    out = pigsty_ha_switchover.switchover(_ctx(), cluster, candidate, handoff, early_release, max_lag)
    if isinstance(out, dict) and out.get("result") is False:
        # a switchover that did not switch fails the command (salt-run's exit code is the
        # return's "retcode")
        __context__["retcode"] = out["retcode"] = 1
    return out


@_refusing
def failover(cluster, candidate):
    """Manual failover to ``candidate`` (used when the cluster has no healthy leader);
    refuses a candidate that is not a running replica.

    CLI example::

        salt-run pigsty_ha.failover pg-test pg-test-2
    """
    return pigsty_ha_switchover.failover(_ctx(), cluster, candidate)


@_refusing
def promote(cluster, test=False, timeout=120):
    """Promote a standby cluster (pg_upstream): it stops following its upstream and its
    standby leader becomes its primary (Patroni's standby_cluster removed from the DCS); then
    its routing is reconciled and it gets its first backup (stanza and a full backup).
    Refused, changing nothing, when the cluster is not a standby cluster, has no leader, or
    another planned operation runs. Afterwards remove pg_upstream / pg_delay from pillar (the
    result says so): a state never makes a promoted cluster a standby again.

    ``test=True``: the checks and the steps it would take, changing nothing.

    CLI example::

        salt-run pigsty_ha.promote pg-delay [test=True]
    """
    try:
        if isinstance(timeout, bool):
            raise ValueError(timeout)
        timeout = float(timeout)
        if not 0 < timeout <= 3600:
            raise ValueError(timeout)
    except (TypeError, ValueError):
        raise salt.exceptions.SaltInvocationError(
            "timeout: expected seconds to wait for the promotion, a number in (0, 3600], got %r" % (timeout,))
    out = pigsty_ha_promote.promote(_ctx(), cluster, test=test, timeout=timeout)
    if isinstance(out, dict) and out.get("result") is False:
        __context__["retcode"] = out["retcode"] = 1
    return out
