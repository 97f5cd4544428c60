"""Asking many members at once from the master: threads for local calls, Salt's local
client for minion calls, each bounded, each with a job id of its own."""
import logging
import threading
import time

import salt.client
import salt.utils.jid

log = logging.getLogger(__name__)

CALL_TIMEOUT = 5        # seconds for each fan-out to the members


def parallel(calls, join_timeout=CALL_TIMEOUT * 6):
    """Run {name: (function, *args)} in threads; {name: return value, or a failed result
    naming the exception, or saying it did not finish within ``join_timeout`` seconds} (a
    failing call is reported, never raised; a late one's return is not used)."""
    out = {}

    def run(name, fn, args):
        try:
            out[name] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported in the step's result
            log.exception("pigsty: %s failed", name)
            out[name] = {"result": False, "comment": "%s: %s" % (type(exc).__name__, exc)}
    threads = [threading.Thread(target=run, args=(name, c[0], c[1:]), daemon=True) for name, c in calls.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + join_timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    done = dict(out)
    for name in calls:
        done.setdefault(name, {"result": False, "comment": "did not finish within %ss" % join_timeout})
    return done


_JID_LOCK = threading.Lock()
_LAST_JID = [""]


def unique_jid(opts):
    """A job id no other fan-out of this process has: jids are timestamps, and two threads
    publishing in the same microsecond would share one, which a minion runs only once."""
    with _JID_LOCK:
        jid = salt.utils.jid.gen_jid(opts)
        while jid <= _LAST_JID[0]:
            time.sleep(0.000001)
            jid = salt.utils.jid.gen_jid(opts)
        _LAST_JID[0] = jid
        return jid


def answering(members, roles):
    """Members whose Patroni answered: only their minions are asked (a member that did not
    answer, dead or just slow, would hold every fan-out for its whole timeout)."""
    return [m for m in members if roles.get(m["pg_instance"]) not in ("unreachable", "unresponsive")]


def fan_out(opts, minions, fun, arg=None, kwarg=None, timeout=CALL_TIMEOUT):
    """Run ``fun`` on the minions in parallel; {minion: return} (missing = no answer)."""
    if not minions:
        return {}
    client = salt.client.get_local_client(opts["conf_file"])
    try:
        return client.cmd(minions, fun, arg=arg or [], kwarg=kwarg or {}, tgt_type="list",
                          timeout=timeout, jid=unique_jid(opts))
    finally:
        client.destroy()


def fire(opts, minions, fun, arg=None, kwarg=None):
    """Start ``fun`` on the minions and return at once (its job id; "" when no minion was
    targeted): for work whose answer nobody waits for, such as refreshing a metrics file."""
    if not minions:
        return ""
    client = salt.client.get_local_client(opts["conf_file"])
    try:
        return client.cmd_async(minions, fun, arg=arg or [], kwarg=kwarg or {}, tgt_type="list",
                                jid=unique_jid(opts)) or ""
    finally:
        client.destroy()
