"""Backups and point-in-time recovery of a cluster (pgBackRest, repository on the meta node).

    salt-run pigsty_backup.backup cluster=pg-test type=full     # full | diff | incr
    salt-run pigsty_backup.list cluster=pg-test                 # backups, WAL, recoverable window
    salt-run pigsty_backup.check cluster=pg-test                # archiving, last backup age, repo size
    salt-run pigsty_backup.restore cluster=pg-test target='2026-12-01 10:00:00+00' confirm=pg-test
    salt-run pigsty_backup.run_due                              # Salt's scheduler, every minute
    salt-run pigsty_backup.metrics                              # Salt's scheduler, every minute

Backups run on the repository host (pgBackRest requires it) and copy from a replica that
streams from the live primary, or from the primary; never from a member that is not
streaming. One backup or restore of a cluster at a time (a lock on the master, and
pgBackRest's own). A restore checks its target against the repository and asks for
confirm=<cluster> before anything is stopped. The pure logic is _utils/pigsty_backup.py;
the commands on the nodes are _modules/pigsty_backup.py. See docs/backup.md.
"""
import datetime
import json
import logging
import os
import time

import salt.exceptions
import salt.runner

# A util named like a module of this directory comes after one that is not: without the
# _utils, Salt's loader has this directory on sys.path and the import would find the module.
try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_fanout
    import pigsty_ha_inventory
    import pigsty_ha_live
    import pigsty_ha_locks
    import pigsty_ha_shared_lock
    import pigsty_inventory
    import pigsty_patroni
    import pigsty_patroni_rest
    import pigsty_progress
    import pigsty_standby
    import pigsty_backup
    import pigsty_backup_metrics
    import pigsty_backup_schedule
    import pigsty_clone
    from pigsty_invalid import refusal as _refusal
    from pigsty_invalid import refusing as _refusing
except ImportError as exc:
    UTILS_MISSING = str(exc)

    def _refusing(func):        # not loaded anyway: __virtual__ gives the reason
        return func
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_backup"

CALL_TIMEOUT = 6 * 3600        # a backup or a restore may take hours
STEP_TIMEOUT = 120


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _progress(message):
    """Show a progress line in `salt-run` / orchestrate output as the step runs."""
    pigsty_progress.report(log, globals().get("__jid_event__"), message)


def _fan(minions, fun, arg=None, kwarg=None, timeout=STEP_TIMEOUT):
    return pigsty_fanout.fan_out(__opts__, minions, fun, arg, kwarg, timeout)


def _call(minion, fun, arg=None, kwarg=None, timeout=STEP_TIMEOUT):
    """One minion's answer; CommandExecutionError when it gave none or an error."""
    ret = _fan([minion], fun, arg, kwarg, timeout).get(minion)
    if ret is None:
        raise salt.exceptions.CommandExecutionError("%s did not answer %s within %ss" % (
            minion, fun, timeout))
    if isinstance(ret, str) and ("Traceback" in ret or ret.startswith(("ERROR", "Passed invalid"))
                                 or "Error:" in ret):
        raise salt.exceptions.CommandExecutionError("%s on %s: %s" % (fun, minion, ret[-800:]))
    return ret


def _context(cluster):
    """(inventory, members, cluster config, repository host); a clear refusal for an
    unknown cluster or one without backups."""
    if not isinstance(cluster, str) or not cluster:
        raise salt.exceptions.SaltInvocationError("cluster: expected a cluster name such as pg-test")
    _merged, inv = pigsty_ha_inventory.load(__opts__)
    members = pigsty_ha_inventory.members(inv, cluster)
    conf = pigsty_inventory.cluster_vars(inv, cluster)
    if not conf.get("pgbackrest_enabled"):
        raise salt.exceptions.SaltInvocationError(
            "cluster: %s has pgbackrest_enabled: false (no archive, no backups)" % cluster)
    metas = pigsty_inventory.meta_nodes(inv)
    if not metas:
        raise salt.exceptions.CommandExecutionError("no meta node: no backup repository")
    return inv, members, conf, metas[0]


def _still_standby(inv, cluster, conf):
    """Whether ``cluster`` is a standby cluster now: pillar names its pg_upstream and its live
    leader is not a primary (promoted, with pillar not edited yet, it has backups of its own).
    Asks Patroni only for the clusters pillar calls standby."""
    if not pigsty_standby.standby_of(inv, cluster):
        return False
    members = pigsty_ha_inventory.members(inv, cluster)
    leader, _errors = pigsty_patroni.find_leader([m["ip"] for m in members], conf["patroni_port"],
                                                 timeout=2, access=_access(conf))
    return not leader or leader.get("role") != "primary"


def _access(conf):
    return pigsty_patroni_rest.access(conf)       # HTTPS verified against the Pigsty CA


def _live(members, conf):
    roles, _details = pigsty_ha_live.live_roles(members, conf["patroni_port"],
                                                access=_access(conf))
    streaming = set()
    for m in members:
        if roles.get(m["pg_instance"]) == "primary":
            try:
                status = pigsty_patroni.get_json(m["ip"], conf["patroni_port"], "/patroni",
                                                 timeout=pigsty_ha_live.REST_TIMEOUT * 4,
                                                 access=_access(conf))
                streaming = pigsty_patroni.streaming(status)
            except pigsty_patroni.PatroniError:
                pass
    return roles, streaming


def _fail(message, **extra):
    out = _refusal(message, globals())      # salt-run exits 1 on it
    out.update(extra)
    return out


# ------------------------------------------------------------------ backup
@_refusing
def backup(cluster, type="full", wait=0):  # pylint: disable=redefined-builtin
    """Take a backup of ``cluster`` (full, diff or incr) into the repository on meta.
    Its result is kept on the master (the last attempt of the cluster, for
    pigsty_backup_last_attempt_success) and the backup metrics are refreshed.

    CLI example::

        salt-run pigsty_backup.backup cluster=pg-test type=full
    """
    if type not in pigsty_backup.BACKUP_TYPES:
        raise salt.exceptions.SaltInvocationError("type: expected one of %s, got %r" % (
            ", ".join(pigsty_backup.BACKUP_TYPES), type))
    started = time.monotonic()
    context = _context(cluster)            # bad input: refused, nothing recorded
    inventory_s = time.monotonic() - started
    try:
        out = _backup(cluster, type, wait, context)
    except salt.exceptions.SaltException as exc:
        if "in progress" not in str(exc):  # another backup runs: not an attempt of this one
            _record_attempt(cluster, type, False, str(exc))
            _refresh_metrics()
        raise
    _record_attempt(cluster, type, out.get("result") is True, out.get("comment"))
    _refresh_metrics()
    if "timings" in out:       # where the time went, pgBackRest's own included (seconds)
        out["timings"]["inventory"] = round(inventory_s, 2)
        out["timings"]["total"] = round(time.monotonic() - started, 2)
    return out


def _backup(cluster, type, wait, context):  # pylint: disable=redefined-builtin
    inv, members, conf, repo = context
    started = time.monotonic()
    roles, streaming = _live(members, conf)
    live_s = time.monotonic() - started
    try:
        hosts, from_standby, source = pigsty_backup.choose_source(members, roles, streaming)
    except pigsty_backup.BackupError as exc:
        return _fail("backup of %s refused: %s" % (cluster, exc))
    with pigsty_ha_locks.operation_lock(__opts__, cluster, "backup (%s)" % type, wait=wait,
                                        kind="backup", shared=_shared(inv)):
        _progress("%s: %s backup from %s (%s) into %s" % (
            cluster, type, source, "standby" if from_standby else "primary", repo))
        # one job on the repository host: the stanza when it is new, the copy, the label
        job_started = time.monotonic()
        done = _call(repo, "pigsty_backup.take", [cluster, type, hosts, from_standby],
                     timeout=CALL_TIMEOUT)
        job_s = time.monotonic() - job_started
    if not done.get("result"):
        if done.get("step") == "stanza-create":
            return _fail("stanza-create of %s failed on %s: %s" % (cluster, repo, done.get("output")))
        return _fail("%s backup of %s failed after %ss (the repository keeps its earlier "
                     "backups; a partial one is resumed or removed by the next backup): %s" % (
                         type, cluster, done.get("seconds"), done.get("output")))
    return {"result": True, "cluster": cluster, "type": type, "source": source,
            "seconds": done.get("seconds"), "label": done.get("label"),
            "timings": {"live_roles": round(live_s, 2), "job": round(job_s, 2),
                        "pgbackrest": done.get("seconds")},
            "comment": "%s backup %s of %s from %s in %ss" % (
                type, done.get("label"), cluster, source, done.get("seconds"))}


# ------------------------------------------------------------------ list / check
@_refusing
def list_(cluster):
    """The cluster's backups (label, type, start, duration, size, WAL range) and its
    recoverable window, as a table.

    CLI example::

        salt-run pigsty_backup.list cluster=pg-test
    """
    _inv, _members, _conf, repo = _context(cluster)
    summary = _call(repo, "pigsty_backup.info", [cluster])
    return pigsty_backup.table(summary)


@_refusing
def check(cluster, max_age_hours=None):
    """Is archiving working (pgbackrest check: a WAL switch on the primary reaches the
    repository), how old is the newest backup, how big is the repository.

    CLI example::

        salt-run pigsty_backup.check cluster=pg-test
    """
    _inv, _members, conf, repo = _context(cluster)
    checked = _call(repo, "pigsty_backup.check", [cluster], timeout=600)
    summary = _call(repo, "pigsty_backup.info", [cluster])
    size = _call(repo, "pigsty_backup.repo_bytes")
    now = time.time()
    newest = summary["backups"][-1] if summary.get("backups") else None
    age = round((now - newest["stop"]) / 3600.0, 2) if newest else None
    if max_age_hours is None:
        # the alert's threshold (PostgresBackupTooOld): the schedule's longest gap + grace
        allowed = _max_age(conf, summary)
        max_age_hours = round(allowed / 3600.0, 2) if allowed is not None else None
    problems = []
    if not checked.get("result"):
        problems.append("archiving: %s" % checked.get("output", "")[-600:])
    if newest is None:
        problems.append("no backup yet")
    elif max_age_hours is not None and age > float(max_age_hours):
        problems.append("the newest backup is %.1f h old (more than %s h)" % (age, max_age_hours))
    out = {"result": not problems, "cluster": cluster, "archive_ok": bool(checked.get("result")),
           "last_backup": newest["label"] if newest else None, "last_backup_age_hours": age,
           "backups": len(summary.get("backups") or []), "repo_bytes": size,
           "wal_range": [summary.get("wal_min"), summary.get("wal_max")],
           "comment": "; ".join(problems) or "archiving works, newest backup %s h old" % age}
    if problems:
        __context__["retcode"] = 1
    return out


# ------------------------------------------------------------------ restore in place
@_refusing
def _plan_restore(cluster, target, confirm, summary, members, now):
    """The refusals of an in-place restore, before anything is touched: (rtype, value) or
    BackupError. Pure: the unit tests call it."""
    rtype, value = pigsty_backup.parse_target(target, now)
    why = pigsty_backup.refuse_target(rtype, value, summary, now)
    if why:
        raise pigsty_backup.BackupError("restore of %s refused, nothing was stopped: %s" % (
            cluster, why))
    if confirm != cluster:
        raise pigsty_backup.BackupError(pigsty_backup.destroys(cluster, members, rtype, value))
    return rtype, value


@_refusing
def clone_check(cluster):
    """Before a clone (pg_pitr) is created: its source's backups cover the target. A clone
    that already runs (it has a leader) passes: pg_pitr acts only when it is created. What
    orch.pgsql runs before the clone's first member restores anything.

    CLI example::

        salt-run pigsty_backup.clone_check pg-clone
    """
    if not isinstance(cluster, str) or not cluster:
        raise salt.exceptions.SaltInvocationError("cluster: expected a cluster name such as pg-clone")
    _merged, inv = pigsty_ha_inventory.load(__opts__)
    members = pigsty_ha_inventory.members(inv, cluster)
    clone = pigsty_clone.clone_of(inv, cluster)
    if not clone:
        raise salt.exceptions.SaltInvocationError(
            "cluster: %s is not a clone (no valid pg_pitr with another cluster)" % cluster)
    conf = pigsty_inventory.cluster_vars(inv, cluster)
    leader, _errors = pigsty_patroni.find_leader([m["ip"] for m in members], conf["patroni_port"],
                                                 timeout=2, access=_access(conf))
    if leader:
        return {"result": True, "comment": "%s runs (leader %s): pg_pitr acts only when it is "
                                           "created; nothing to check" % (cluster, leader["name"])}
    _s_inv, _s_members, _s_conf, repo = _context(clone["cluster"])
    summary = _call(repo, "pigsty_backup.info", [clone["cluster"]])
    why = pigsty_backup.refuse_target(clone["rtype"], clone["value"], summary,
                                      datetime.datetime.now(datetime.timezone.utc)) \
        if isinstance(summary, dict) and "backups" in summary else \
        "the repository's information of %s could not be read: %s" % (clone["cluster"], summary)
    if why:
        return _fail("clone %s of %s refused, nothing was created: %s" % (cluster, clone["cluster"], why))
    return {"result": True, "comment": "%s's backups cover %s: %s can be restored from them" % (
        clone["cluster"], clone["target"], cluster)}


def _wait_leader(members, conf, want, timeout):
    """True once ``want`` holds the leader key and its Postgres runs as primary."""
    ip = next(m["ip"] for m in members if m["pg_instance"] == want)
    port, access = conf["patroni_port"], _access(conf)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader, _errors = pigsty_patroni.find_leader([m["ip"] for m in members], port, 1,
                                                     access=access)
        if leader and leader.get("name") == want:
            try:
                st = pigsty_patroni.get_json(ip, port, "/patroni", timeout=1, access=access)
                if pigsty_patroni.normalize_role(st.get("role")) == "primary" and \
                        st.get("state") == "running":
                    return True
            except pigsty_patroni.PatroniError:
                pass
        time.sleep(2)
    return False


def _wait_streaming(members, conf, timeout):
    deadline = time.monotonic() + timeout
    others = set()
    while time.monotonic() < deadline:
        roles, streaming = _live(members, conf)
        others = {m["pg_instance"] for m in members if roles.get(m["pg_instance"]) != "primary"}
        if others <= streaming:
            return True, sorted(streaming)
        time.sleep(3)
    return False, sorted(others)


@_refusing
def restore(cluster, target, confirm=None, timeout=3600):
    """Restore ``cluster`` in place to ``target``: a time ('2026-12-01 10:00:00+00', UTC
    without a zone), an LSN ('0/3000060'), name:RESTORE_POINT or latest. Everything after
    the target is lost on every member: ``confirm=<cluster>`` is required.

    CLI example::

        salt-run pigsty_backup.restore cluster=pg-test target='2026-12-01 10:00:00+00' confirm=pg-test
    """
    try:
        inv, members, conf, repo = _context(cluster)
    except salt.exceptions.SaltInvocationError as exc:
        return _fail("restore refused, nothing was stopped: %s" % exc)
    if _still_standby(inv, cluster, conf):
        return _fail("restore refused, nothing was stopped: %s is a standby cluster (pg_upstream), "
                     "without backups of its own until promoted (salt-run pigsty_ha.promote "
                     "cluster=%s); restore its upstream, or a clone of it" % (cluster, cluster))
    now = datetime.datetime.now(datetime.timezone.utc)
    summary = _call(repo, "pigsty_backup.info", [cluster])
    try:
        rtype, value = _plan_restore(cluster, target, confirm, summary, members, now)
    except pigsty_backup.BackupError as exc:
        return _fail(str(exc))
    roles, _streaming = _live(members, conf)
    primary = next((m for m in members if roles.get(m["pg_instance"]) == "primary"), None) or \
        next(m for m in members if m["pg_role"] == "primary")
    others = [m for m in members if m is not primary]
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    shown = value.isoformat() if rtype == "time" else value
    steps = []

    def step(name, result):
        steps.append({"step": name, "result": result})
        _progress("%s restore: %s: %s" % (cluster, name, result))
        return result

    # the node that restores must answer before anything is stopped
    ready = _fan([primary["minion"]], "pigsty_backup.settings").get(primary["minion"])
    if not isinstance(ready, dict) or not ready.get("pg_data"):
        return _fail("restore of %s refused, nothing was stopped: %s (the node that restores, "
                     "%s) does not answer pigsty_backup.settings: %s" % (
                         cluster, primary["minion"], primary["pg_instance"], ready))

    def restart_all():
        for m in [primary] + others:
            step("start patroni on %s" % m["pg_instance"],
                 _fan([m["minion"]], "service.start", ["patroni"]).get(m["minion"]))

    shared = _shared(inv)
    with pigsty_ha_locks.operation_lock(__opts__, cluster, "restore", kind="backup", shared=shared), \
            pigsty_ha_locks.operation_lock(__opts__, cluster, "restore to %s" % target, shared=shared):
        # 0. the live primary's WAL up to now into the repository, with a marker commit after
        # the target (recovery to a time needs one to stop at; 'latest' loses nothing unarchived)
        if roles.get(primary["pg_instance"]) == "primary":
            try:
                marked = _call(primary["minion"], "pigsty_backup.archive_now", timeout=300)
            except salt.exceptions.SaltException as exc:
                marked = {"result": False, "comment": str(exc)}
            step("archive up to now on %s" % primary["pg_instance"], marked.get("comment"))
            if not marked.get("result"):
                return _fail("restore of %s refused, nothing was stopped: the primary's latest "
                             "WAL did not reach the repository (%s); a restore now could lose "
                             "what is not archived: fix archiving first (salt-run "
                             "pigsty_backup.check cluster=%s)" % (
                                 cluster, marked.get("comment"), cluster), steps=steps)
        else:
            step("archive up to now", "no live primary: recovery gets the WAL the repository holds")
        # 1. stop every member (replicas first): Patroni stops its Postgres
        for m in others + [primary]:
            step("stop patroni on %s" % m["pg_instance"],
                 _fan([m["minion"]], "service.stop", ["patroni"], timeout=STEP_TIMEOUT).get(m["minion"]))
        if steps[-1]["result"] is not True:
            restart_all()
            return _fail("restore of %s stopped before any data was touched: Patroni on %s did "
                         "not stop (%s); every member was started again" % (
                             cluster, primary["pg_instance"], steps[-1]["result"]), steps=steps)
        # 2. the primary's data directory aside, restore, recovery to the target
        recovered = {"result": False}
        aside = None
        try:
            aside = _call(primary["minion"], "pigsty_backup.set_aside", [stamp])
            step("set aside on %s" % primary["pg_instance"], aside.get("comment"))
            if aside.get("result"):
                done = _call(primary["minion"], "pigsty_backup.restore", [cluster, rtype, shown],
                             timeout=CALL_TIMEOUT)
                step("pgbackrest restore on %s" % primary["pg_instance"],
                     "ok in %ss" % done.get("seconds") if done.get("result") else done.get("output"))
                if done.get("result"):
                    recovered = _call(primary["minion"], "pigsty_backup.recover",
                                      kwarg={"timeout": timeout}, timeout=int(timeout) + 120)
                    step("recovery on %s" % primary["pg_instance"], recovered.get("comment"))
        except salt.exceptions.SaltException as exc:
            step("restore on %s" % primary["pg_instance"], "failed: %s" % exc)
        if not recovered.get("result"):
            if aside and aside.get("result"):
                back = _fan([primary["minion"]], "pigsty_backup.put_back", [stamp]).get(
                    primary["minion"])
                step("put back on %s" % primary["pg_instance"], back)
            restart_all()
            return _fail("restore of %s failed; the cluster is as it was (the primary's data "
                         "directory was put back and every member started again): see steps"
                         % cluster, steps=steps)
        # 3. a new cluster history in the DCS, the restored node its leader
        removed = _call(primary["minion"], "pigsty_backup.dcs_remove", [cluster])
        step("remove %s from the DCS" % cluster, removed.get("comment"))
        if not removed.get("result"):
            # Patroni would not make a node behind the DCS's last leader position a leader
            return _fail("restore of %s stopped half-way: the data is restored on %s (old data "
                         "directory at PGDATA.before-restore-%s) but the cluster's DCS keys could "
                         "not be removed; every member is stopped. Run `patronictl -c "
                         "/etc/patroni/config.yml remove %s` on %s, then start patroni there, "
                         "then on the replicas after emptying their data directories" % (
                             cluster, primary["pg_instance"], stamp, cluster,
                             primary["minion"]), steps=steps)
        step("start patroni on %s" % primary["pg_instance"],
             _fan([primary["minion"]], "service.start", ["patroni"]).get(primary["minion"]))
        if not _wait_leader(members, conf, primary["pg_instance"], 300):
            return _fail("restore of %s: the data is restored on %s (old data directory at "
                         "PGDATA.before-restore-%s) but Patroni did not make it the leader "
                         "within 300 s; the replicas are still stopped. Check `patronictl "
                         "list` on %s" % (cluster, primary["pg_instance"], stamp,
                                          primary["minion"]), steps=steps)
        # 4. replicas cloned again from the new leader
        for m in others:
            step("remove data on %s" % m["pg_instance"],
                 _call(m["minion"], "pigsty_backup.remove_data").get("comment"))
            step("start patroni on %s" % m["pg_instance"],
                 _fan([m["minion"]], "service.start", ["patroni"]).get(m["minion"]))
        ok, streaming = _wait_streaming(members, conf, 900)
        step("replicas streaming", streaming if ok else "not yet: %s" % streaming)
    # 5. routing (HAProxy, VIP, DNS, Prometheus roles) follows the new leader
    try:
        salt.runner.RunnerClient(__opts__).cmd("pigsty_ha.reconcile", [cluster], print_event=False)
        step("reconcile", "done")
    except Exception as exc:  # pylint: disable=broad-except
        step("reconcile", "failed: %s (the beacon's events will retry)" % exc)
    return {"result": ok, "cluster": cluster, "target": target, "leader": primary["pg_instance"],
            "steps": steps,
            "comment": "%s restored in place to %s; leader %s; old data directory kept at "
                       "PGDATA.before-restore-%s on %s (remove it by hand); take a full backup "
                       "now" % (cluster, target, primary["pg_instance"], stamp, primary["minion"])}


# ------------------------------------------------------------------ the schedule
def _shared(inv):
    """What several masters share in etcd (locks, the schedule record), or None with one."""
    return pigsty_ha_shared_lock.for_master(__opts__, inv)


def _read_json(path):
    try:
        with open(path) as fh:
            doc = json.load(fh)
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)


@_refusing
def run_due(now=None):
    """Take the backups that the clusters' ``pgbackrest_schedule`` (cron, UTC) says are due:
    what Salt's scheduler on the master runs every minute (master.d/reactor.conf). A
    firing missed (master down, a backup still running) is caught up once; a backup refused
    because another one of the cluster runs is tried again at the next call. The first call
    that sees a cluster only starts its schedule (no catch-up of earlier firings).

    CLI example::

        salt-run pigsty_backup.run_due
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    _merged, inv = pigsty_ha_inventory.load(__opts__)
    shared = _shared(inv)
    results = {}
    for name in sorted(inv.get("clusters") or {}):
        conf = pigsty_inventory.cluster_vars(inv, name)
        if not conf.get("pgbackrest_enabled") or _still_standby(inv, name, conf):
            continue            # (a standby cluster: no backups of its own until promoted)
        record, last = pigsty_backup_schedule.record(__opts__["cachedir"], name, shared)
        btype, fired = pigsty_backup.due(conf["pgbackrest_schedule"], last, now)
        if not last:
            # first sight of the cluster: the schedule starts from now (no catch-up of
            # firings before it, so a master start does not back up every cluster at once)
            record.claim(dict(fired, since=now.timestamp()))
            continue
        if not btype:
            continue
        # the firing is this master's only once the record moved to it (with several
        # masters: a swap in etcd, which one of them wins)
        before, taken = dict(last), dict(last, **fired)
        if not record.claim(taken):
            results[name] = {"result": None, "comment": "the %s backup due is another master's" % btype}
            continue
        _progress("%s: scheduled %s backup due" % (name, btype))
        try:
            out = backup(name, btype)
        except salt.exceptions.SaltException as exc:
            if "in progress" in str(exc):
                record.claim(before)           # given back: tried again next minute
                results[name] = {"result": None, "comment": str(exc)}
                continue
            out = {"result": False, "comment": str(exc)}
        taken["last_result"] = {"type": btype, "result": out.get("result"),
                                "comment": out.get("comment"), "time": time.time()}
        record.claim(taken)
        results[name] = out
    return results


# ------------------------------------------------------------------ metrics
def _attempt_path(cluster):
    return os.path.join(__opts__["cachedir"], "pigsty", "backup-attempt-%s.json" % cluster)


def _record_attempt(cluster, btype, ok, comment):
    """The last backup attempt of ``cluster`` (scheduled or by hand), on the master."""
    _write_json(_attempt_path(cluster), {"type": btype, "result": bool(ok), "time": time.time(),
                                         "comment": (comment or "")[-600:]})


def _max_age(conf, summary):
    return pigsty_backup_metrics.max_age_seconds(conf.get("pgbackrest_schedule"),
                                                 pigsty_backup_metrics.longest_backup(summary))


def _refresh_metrics():
    """After a backup: start the refresh on the repository host and return (the operator
    does not wait for ``pgbackrest info`` of every stanza; the scheduler's run each minute
    refreshes it anyway)."""
    try:
        _publish(wait=False)
    except Exception as exc:  # pylint: disable=broad-except
        log.warning("backup metrics not refreshed: %s", exc)


def _publish(wait):
    """The master's part of the backup metrics (each cluster's last backup attempt, when its
    schedule started) sent to ``pigsty_backup.publish_metrics`` on the repository host; its
    answer when ``wait``, else the job id of the started refresh."""
    _merged, inv = pigsty_ha_inventory.load(__opts__)
    metas = pigsty_inventory.meta_nodes(inv)
    if not metas:
        return _fail("no meta node: no backup repository")
    shared = _shared(inv)
    facts = {}
    for name in sorted(inv.get("clusters") or {}):
        conf = pigsty_inventory.cluster_vars(inv, name)
        if not conf.get("pgbackrest_enabled") or _still_standby(inv, name, conf):
            continue
        _record, schedule = pigsty_backup_schedule.record(__opts__["cachedir"], name, shared)
        attempt = _read_json(_attempt_path(name)) or {}
        facts[name] = {"schedule": conf.get("pgbackrest_schedule") or [],
                       "schedule_start": schedule.get("since"),
                       "attempt": {k: v for k, v in attempt.items()
                                   if k in ("type", "result", "time")} or None}
    if not wait:
        jid = pigsty_fanout.fire(__opts__, metas[:1], "pigsty_backup.publish_metrics",
                                 kwarg={"facts": facts})
        return {"result": bool(jid), "jid": jid,
                "comment": "backup metrics refresh started on %s (job %s)" % (metas[0], jid)}
    out = _call(metas[0], "pigsty_backup.publish_metrics", kwarg={"facts": facts}, timeout=180)
    if not out.get("result"):
        __context__["retcode"] = 1
    return out


@_refusing
def metrics():
    """Refresh the backup metrics on the repository host (pigsty_backup_*): the master's
    part (each cluster's last backup attempt, when its schedule started, the age its
    schedule allows) goes to ``pigsty_backup.publish_metrics`` there, which adds the
    repository's (pgbackrest info, bytes on disk) and writes the file Prometheus scrapes.
    What Salt's scheduler on the master runs every minute (master.d/reactor.conf).

    CLI example::

        salt-run pigsty_backup.metrics
    """
    return _publish(wait=True)


# Salt exposes list_ as pigsty_backup.list
__func_alias__ = {"list_": "list"}
