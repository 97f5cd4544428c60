"""Planned switchover from this node, the primary, without failing its pgbouncer clients.

Run by `salt-run pigsty_ha.switchover` on the current primary's minion, so that nothing in
the window where clients wait needs a round trip through the Salt master:

    CHECKPOINT (so that the demotion's shutdown checkpoint is short)
    PAUSE pgbouncer           clients through 5433 wait; in-flight transactions finish first
    candidate caught up       it has received all WAL the leader wrote (else: RESUME, refuse)
    Patroni switchover        POST /switchover to the local Patroni
    early leader-key release  see below (etcd only)
    wait for the new primary  its /primary answers 200 and says master, i.e. out of recovery
                              (polled every 20 ms)
    forward pgbouncer         database.txt points at the new primary, RELOAD
    RESUME pgbouncer          the waiting clients carry on, on the new primary

Early release: Patroni 3 releases the leader key only when its once-a-second poll of
pg_controldata sees the demoted primary "shut down", which costs up to a second of the
clients' wait. This node polls every 20 ms instead and, once PostgreSQL is cleanly shut down
and the candidate has received the shutdown checkpoint (the condition Patroni checks), does
the same compare-and-delete of the leader key that Patroni would do (it only deletes a key
that still names the old leader). Patroni's own release then finds the key gone; everything
else stays Patroni's. With Consul, or when the condition is not met, Patroni releases it.

If Patroni refuses or no new primary appears in time, pgbouncer is resumed unchanged and
the result says so. Nothing here ever sends a password: pgbouncer's console is reached over
the unix socket by peer authentication.

    salt node-1 pigsty_handoff.switchover pg-test-1 '{"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12"}' candidate=pg-test-2
"""
import fcntl
import ipaddress
import logging
import os
import pwd
import subprocess
import threading
import time

import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_etcd
    import pigsty_patroni
    import pigsty_patroni_rest
    import pigsty_pgsql
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_handoff"

POLL = 0.02          # seconds between checks for the new primary
REST_TIMEOUT = 0.5   # each check
CHECKPOINT_WAIT = 1.0   # seconds to see a candidate with the shutdown checkpoint (then Patroni releases)


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _check_members(leader, members, candidate):
    if not isinstance(members, dict) or not members:
        raise salt.exceptions.SaltInvocationError(
            "members: expected {instance: ipv4 address} of the cluster, got %r" % (members,))
    for name, ip in members.items():
        try:
            ipaddress.IPv4Address(str(ip))
        except ValueError:
            raise salt.exceptions.SaltInvocationError("members: %s has %r, expected an IPv4 address" % (name, ip))
    if leader not in members:
        raise salt.exceptions.SaltInvocationError("leader: %r is not one of members %s" % (leader, sorted(members)))
    if candidate is not None and (candidate not in members or candidate == leader):
        raise salt.exceptions.SaltInvocationError(
            "candidate: %r is not another member (expected one of: %s)" % (
                candidate, ", ".join(sorted(m for m in members if m != leader))))


def _check_timeouts(**timeouts):
    """The timeouts as positive floats, in the order given; a bad one is refused before
    anything is paused (they are used while pgbouncer's clients wait)."""
    out = []
    for name, value in timeouts.items():
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if not 0 < seconds <= 600:
            raise salt.exceptions.SaltInvocationError(
                "%s: expected seconds between 0 and 600, got %r" % (name, value))
        out.append(seconds)
    return out


def _new_primary(leader, members, candidate, port, access=None):
    for name in ([candidate] if candidate else sorted(members)):
        if name == leader:
            continue
        try:
            code, body = pigsty_patroni.request(members[name], port, "/primary", timeout=REST_TIMEOUT,
                                                access=access)
        except pigsty_patroni.PatroniError:
            continue
        if pigsty_patroni.writable_primary(code, body):      # key held and out of recovery
            return name
    return None


def _wait_caught_up(leader, members, candidate, port, timeout, access=None):
    """With pgbouncer paused: wait (bounded) until ``candidate`` (or, without one, any other
    member) has received every WAL byte the leader had written once the pause held. Returns
    (name, None) or (None, what each was missing)."""
    names = [candidate] if candidate else sorted(set(members) - {leader})
    try:
        leader_status = pigsty_patroni.get_json(members[leader], port, "/patroni", timeout=REST_TIMEOUT,
                                                access=access)
    except pigsty_patroni.PatroniError as exc:
        return None, "the local Patroni did not answer: %s" % exc
    deadline = time.monotonic() + float(timeout)
    behind = {}
    while True:
        for name in names:
            try:
                status = pigsty_patroni.get_json(members[name], port, "/patroni", timeout=REST_TIMEOUT,
                                                 access=access)
            except pigsty_patroni.PatroniError as exc:
                behind[name] = "did not answer: %s" % exc
                continue
            ok, detail = pigsty_patroni.caught_up(leader_status, status)
            if ok:
                return name, None
            behind[name] = detail
        if time.monotonic() >= deadline:
            return None, "; ".join("%s: %s" % kv for kv in sorted(behind.items()))
        time.sleep(POLL)


def _controldata(conf):
    pw = pwd.getpwnam(conf["pg_dbsu"])
    res = subprocess.run(
        [os.path.join("/usr/lib/postgresql/%d/bin" % conf["pg_version"], "pg_controldata"), "-D", conf["pg_data"]],
        capture_output=True, text=True, timeout=2, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
        cwd="/", env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    return pigsty_patroni.parse_controldata(res.stdout)


def _release_early(conf, leader, members, candidate, port, stop, marks, access=None):
    """Compare-and-delete the leader key as soon as the old primary is cleanly shut down and
    a candidate has its shutdown checkpoint (etcd only). Returns what it did."""
    if conf.get("dcs_type") != "etcd":
        return "left to Patroni (DCS is %s)" % conf.get("dcs_type")
    checkpoint, data = None, {}
    while not stop.is_set():
        data = _controldata(conf)
        checkpoint = pigsty_patroni.shutdown_checkpoint(data)
        if checkpoint is not None:
            break
        time.sleep(POLL)
    if checkpoint is None:
        return "left to Patroni (no clean shutdown seen)"
    marks["shut down"] = time.monotonic()
    timeline = int(data.get("Latest checkpoint's TimeLineID", "0") or 0)
    # The candidate receives the shutdown checkpoint just after it is written: asked once, at
    # the moment the shutdown is seen, it often has not yet (more so over HTTPS), and the key
    # was left to Patroni's once-a-second release. Ask again for a short bound.
    names = [candidate] if candidate else sorted(set(members) - {leader})
    deadline = time.monotonic() + CHECKPOINT_WAIT
    ready = []
    while True:
        for name in names:
            try:
                st = pigsty_patroni.get_json(members[name], port, "/patroni", timeout=REST_TIMEOUT,
                                             access=access)
            except pigsty_patroni.PatroniError:
                continue
            pos = pigsty_patroni.wal_position(st)
            if pos is not None and pos >= checkpoint and st.get("timeline") == timeline:
                ready.append(name)
        if ready or stop.is_set() or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    if not ready:
        return "left to Patroni (no candidate has the shutdown checkpoint yet)"
    key = pigsty_pgsql.leader_key(conf)
    client = pigsty_pgsql.dcs_client(conf)      # Patroni's own: https, CA, the node certificate
    for endpoint in pigsty_pgsql.dcs_endpoints(conf):
        etcd = pigsty_etcd.Client("https://" + endpoint, cafile=client["cacert"], certfile=client["cert"],
                                  keyfile=client["key"], timeout=REST_TIMEOUT)
        try:
            status, _ = etcd.delete(key, prev_value=leader)
        except pigsty_etcd.EtcdError:
            continue
        if status in (200, 201):
            marks["leader key released"] = time.monotonic()
            return "released the leader key (candidates with the checkpoint: %s)" % ", ".join(ready)
        if status in (404, 412):
            return "left to Patroni (etcd answered %s: the key no longer names %s)" % (status, leader)
        return "left to Patroni (etcd answered %s)" % status
    return "left to Patroni (no etcd endpoint answered)"


def checkpoint():
    """CHECKPOINT on this node's instance, so that the one PostgreSQL writes while shutting
    down for a demotion is short. The runner calls it before it pauses anything."""
    conf = __salt__["pigsty.config"]()
    if not conf:
        raise salt.exceptions.CommandExecutionError("this node hosts no PostgreSQL instance (pillar)")
    res = __salt__["cmd.run_all"](["psql", "-X", "-q", "-p", str(conf["pg_port"]), "-c", "CHECKPOINT"],
                                  runas=conf["pg_dbsu"],
                                  python_shell=False, timeout=60, ignore_retcode=True, output_loglevel="debug")
    return res.get("retcode") == 0


def switchover(leader, members, candidate=None, patroni_port=8008, pause_timeout=10, switch_timeout=30,
               early_release=True, catchup_timeout=5, checkpoint=True):
    """Switch the cluster's primary (this node, instance ``leader``) over to ``candidate`` (or
    to the replica Patroni picks), handing pgbouncer's clients over; returns what happened
    and how long clients waited (``paused_s``).

    CLI example::

        salt node-1 pigsty_handoff.switchover pg-test-1 '{"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12"}'
    """
    _check_members(leader, members, candidate)
    pause_timeout, switch_timeout, catchup_timeout = _check_timeouts(
        pause_timeout=pause_timeout, switch_timeout=switch_timeout, catchup_timeout=catchup_timeout)
    lock = _local_lock()
    if lock is None:
        return {"result": False, "new": None,
                "comment": "another hand-off runs on this node; nothing was paused or switched"}
    with lock:
        return _switchover(leader, members, candidate, int(patroni_port), pause_timeout, switch_timeout,
                           early_release, catchup_timeout, checkpoint)


LOCK_FILE = "/run/pigsty/handoff.lock"


def _local_lock():
    """This node's hand-off lock (an open file holding flock), or None when another process
    holds it. The lock dies with its process, so a killed hand-off leaves none behind."""
    os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
    fh = open(LOCK_FILE, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def _switchover(leader, members, candidate, port, pause_timeout, switch_timeout, early_release,
                catchup_timeout, do_checkpoint):
    conf = __salt__["pigsty.config"]()
    if not conf:
        raise salt.exceptions.CommandExecutionError("this node hosts no PostgreSQL instance (pillar)")
    # HTTPS with the cluster's login; its SSL context is built now, not while clients wait
    access = pigsty_patroni_rest.access(conf)
    try:
        access.context()
    except pigsty_patroni.PatroniError as exc:
        return {"result": False, "new": None, "comment": "%s; nothing was paused or switched" % exc}
    # a checkpoint now makes the one PostgreSQL writes while shutting down for the demotion short
    # (the runner has done it already, before it paused other members' forwarded clients)
    if do_checkpoint:
        checkpoint()
    pgb_port = conf["pgbouncer_port"]
    # what pgbouncer's databases will be, for each possible new primary: ready before the pause
    files = {name: __salt__["pigsty.pgbouncer"](forward_to=ip)["database_file"]
             for name, ip in members.items() if name != leader and (candidate is None or name == candidate)}
    try:
        # the node's watchdog resumes this pause on its own if nobody has by then
        # (at once if this process dies: the pause is ours while we live)
        __salt__["pgbouncer.pause"](port=pgb_port, timeout=pause_timeout, while_alive=True,
                                    hold=pause_timeout + catchup_timeout + switch_timeout + 15)
    except salt.exceptions.CommandExecutionError as exc:
        __salt__["pgbouncer.resume"](port=pgb_port)
        return {"result": False, "new": None,
                "comment": "pgbouncer PAUSE did not finish, nothing was switched: %s (a transaction that "
                           "stays open holds PAUSE; handoff=False switches without the hand-off)" % exc}
    t_paused = time.monotonic()
    marks, answer, released = {}, {}, {}
    new, forwarded, resumed, refused = None, False, False, None
    stop = threading.Event()
    poster = releaser = None
    # From here on pgbouncer is paused: every path, an exception included, either hands the
    # clients over (forward + RESUME) or resumes them unchanged (finally).
    try:
        # every transaction the paused clients committed must be on the new primary first
        chosen, behind = _wait_caught_up(leader, members, candidate, port, catchup_timeout, access)
        if not chosen:
            refused = ("no candidate received all of the leader's WAL within %ss (%s); nothing was "
                       "switched, pgbouncer resumed unchanged" % (catchup_timeout, behind))
        else:
            candidate = chosen
            marks["candidate caught up"] = time.monotonic()

            def post():
                body = {"leader": leader}
                if candidate:
                    body["candidate"] = candidate
                try:
                    answer["status"], answer["body"] = pigsty_patroni.request(
                        members[leader], port, "/switchover", method="POST", body=body, timeout=switch_timeout,
                        access=access)
                except pigsty_patroni.PatroniError as exc:
                    answer["status"], answer["body"] = None, str(exc)

            def release():
                try:
                    released["how"] = _release_early(conf, leader, members, candidate, port, stop, marks, access)
                except Exception as exc:  # noqa: BLE001 - Patroni releases the key itself anyway
                    log.exception("pigsty_handoff: early release failed")
                    released["how"] = "left to Patroni (early release failed: %s: %s)" % (type(exc).__name__, exc)
            poster = threading.Thread(target=post, daemon=True)
            releaser = threading.Thread(target=release, daemon=True)
            poster.start()
            if early_release:
                releaser.start()
            deadline = t_paused + switch_timeout
            while time.monotonic() < deadline:
                new = _new_primary(leader, members, candidate, port, access)
                if new or (not poster.is_alive() and answer.get("status") != 200):
                    break
                time.sleep(POLL)
            marks["new primary seen"] = time.monotonic()
            if new:
                # RELOAD and RESUME in one console session: the clients wait no longer than that
                forwarded = __salt__["pgbouncer.forward"](members[new], port=pgb_port, database_file=files.get(new), resume=True)
                resumed = True
    finally:
        stop.set()
        if not resumed:
            __salt__["pgbouncer.resume"](port=pgb_port)
        paused = time.monotonic() - t_paused
    if refused:
        return {"result": False, "new": None, "paused_s": round(paused, 3), "comment": refused}
    poster.join(switch_timeout)
    if early_release:
        releaser.join(5)
    log.info("pigsty_handoff: %s -> %s, pgbouncer paused %.3fs, forwarded %s", leader, new, paused, forwarded)
    if not new:
        return {"result": False, "new": None, "paused_s": round(paused, 3),
                "comment": "no new primary within %ss; Patroni answered %s: %s; pgbouncer resumed unchanged" % (
                    switch_timeout, answer.get("status"), answer.get("body"))}
    return {"result": True, "new": new, "paused_s": round(paused, 3), "forwarded_to": members[new],
            "timeline_s": {k: round(v - t_paused, 3) for k, v in marks.items()},
            "leader_key": released.get("how", "left to Patroni"),
            "patroni": "%s: %s" % (answer.get("status"), answer.get("body"))}


def state():
    """This node's pgbouncer hand-off: where it forwards (None: local) and its clients."""
    return {"forward": __salt__["pgbouncer.forwarding"](), "clients": __salt__["pgbouncer.clients"]()}


def resume_stale(test=False):
    """Resume a pgbouncer that we paused and nobody will resume: paused by a hand-off or a
    switchover whose process is gone (killed minion, crashed runner). A hand-off running on
    this node is left alone, and so is a pause made by hand (no marker). The caller (the
    master's reconciliation) calls it only when no planned operation of the cluster runs.
    Returns {"resumed": bool, "paused_since": time or None}; with ``test``, whether it
    would resume (nothing is resumed)."""
    marker = __salt__["pgbouncer.paused_by_us"]()
    if marker is None:
        return {"resumed": False, "paused_since": None}
    lock = _local_lock()
    if lock is None:
        return {"resumed": False, "paused_since": marker.get("time"), "comment": "a hand-off runs"}
    with lock:
        if test:
            return {"resumed": True, "paused_since": marker.get("time"), "test": True}
        __salt__["pgbouncer.resume"]()
    log.warning("pigsty_handoff: resumed a pgbouncer paused since %s whose hand-off is gone", marker.get("time"))
    return {"resumed": True, "paused_since": marker.get("time")}


def end(primary_ip=None, test=False):
    """End or redirect this node's hand-off: with no clients left (or when this node is the
    primary itself, ``primary_ip`` = None) route locally again; otherwise keep forwarding,
    to ``primary_ip``. Returns {"forward": where it forwards now, "changed": bool}; with
    ``test``, where it would forward and whether that changes anything (nothing is)."""
    current = __salt__["pgbouncer.forwarding"]()
    if current is None:
        return {"forward": None, "changed": False}
    if primary_ip and __salt__["pgbouncer.clients"]() > 0:
        if test:
            return {"forward": primary_ip, "changed": current != primary_ip, "test": True}
        return {"forward": primary_ip, "changed": __salt__["pgbouncer.forward"](primary_ip)}
    if test:
        return {"forward": None, "changed": True, "test": True}
    return {"forward": None, "changed": __salt__["pgbouncer.forward"](None)}
