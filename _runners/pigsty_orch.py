"""Orchestrations that show each step as it runs, with the elapsed time.

    salt-run pigsty_orch.run orch.site                 # Salt's state.orchestrate, step lines live
    salt-run pigsty_orch.run orch.pgsql pillar='{"cluster": "pg-test"}'
    salt-run pigsty_orch.follow                        # watch an orchestration started elsewhere

``salt-run state.orchestrate`` prints its result only when the whole orchestration has
ended (minutes for orch.site). ``run`` starts the same orchestration (Salt's own runner,
as an asynchronous job, with the same arguments, return and exit code) and, while it runs,
prints each step as it starts, each minion's return and each step's end, with the seconds
since the start, from the events Salt fires on the master's bus
(pigsty_progress.OrchestrationFollower); steps of nested orchestrations are indented. At
the end salt-run prints the whole result as state.orchestrate does. ``follow`` prints the
same lines for whatever orchestration runs on this master (``salt-run state.orchestrate``
in another terminal) until one ends or ``timeout`` passes.
"""
import logging
import time

import salt.exceptions
import salt.runner
import salt.utils.event
import salt.utils.jid
import salt.utils.user

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_progress
    from pigsty_invalid import refusing as _refusing
except ImportError as exc:
    UTILS_MISSING = str(exc)

    def _refusing(func):        # not loaded anyway: __virtual__ gives the reason
        return func
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_orch"

POLL = 0.25            # seconds to wait for the next event


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _progress(message):
    pigsty_progress.report(log, globals().get("__jid_event__"), message)


def _show(bus, follower):
    """Print the lines of the events waiting on ``bus``."""
    while True:
        ev = bus.get_event(wait=POLL, full=True)
        if not ev:
            return
        for line in follower.feed(ev.get("tag", ""), ev.get("data"), time.time()):
            _progress(line)


def _seconds(timeout):
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise salt.exceptions.SaltInvocationError("timeout: expected seconds, got %r" % (timeout,)) from None
    if not 0 < timeout <= 86400:
        raise salt.exceptions.SaltInvocationError("timeout: expected 0 < seconds <= 86400, got %r" % (timeout,))
    return timeout


def _check(mods, pillar):
    if not isinstance(mods, str) or not mods.strip():
        raise salt.exceptions.SaltInvocationError(
            "mods: expected the orchestration's SLS name(s), e.g. orch.site, got %r" % (mods,))
    if pillar is not None and not isinstance(pillar, dict):
        raise salt.exceptions.SaltInvocationError("pillar: expected a mapping, e.g. pillar='{\"cluster\": "
                                   "\"pg-test\"}', got %r" % (pillar,))


@_refusing
def run(mods, pillar=None, test=None, saltenv="base", timeout=21600):
    """Run ``salt-run state.orchestrate mods`` and print each step as it runs, with the
    time since the start. Returns what state.orchestrate returns (the highstate outputter
    prints it at the end) and exits as it would (1 when a step failed). The orchestration
    runs as Salt's asynchronous runner job (its own process, as ``salt-run --async``); this
    command follows its events and waits at most ``timeout`` seconds for its return.

    CLI example::

        salt-run pigsty_orch.run orch.site
        salt-run pigsty_orch.run orch.pgsql pillar='{"pg_cluster": "pg-test"}' test=True
    """
    _check(mods, pillar)
    timeout = _seconds(timeout)
    client = salt.runner.RunnerClient(__opts__)
    jid = salt.utils.jid.gen_jid(__opts__)
    tag = "salt/run/%s" % jid
    t0 = time.time()
    follower = pigsty_progress.OrchestrationFollower(jid, t0)
    low = {"fun": "state.orchestrate", "arg": [mods],
           "kwarg": {"saltenv": saltenv, "test": test, "pillar": pillar, "orchestration_jid": jid}}
    ret = None
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=True) as bus:
        client.asynchronous("state.orchestrate", low, user=salt.utils.user.get_specific_user(),
                            pub={"jid": jid, "tag": tag})
        _progress("[%7.1fs] %s: started (job %s)" % (0.0, mods, jid))
        while ret is None:
            if time.time() - t0 > timeout:
                _progress("[%7.1fs] %s: no return within %g s; it may still run (job %s)"
                          % (time.time() - t0, mods, timeout, jid))
                __context__["retcode"] = 1
                return {"result": False, "jid": jid,
                        "comment": "no return within %g s (salt-run jobs.lookup_jid %s)" % (timeout, jid)}
            ev = bus.get_event(wait=POLL, full=True)
            if not ev:
                continue
            for line in follower.feed(ev.get("tag", ""), ev.get("data"), time.time()):
                _progress(line)
            if ev.get("tag") == tag + "/ret":
                ret = (ev.get("data") or {}).get("return")
    failed = ret.get("retcode") if isinstance(ret, dict) else 1
    _progress("[%7.1fs] %s: %s" % (time.time() - t0, mods, "FAILED (see below)" if failed else "done"))
    if failed:
        __context__["retcode"] = failed
    return ret


@_refusing
def follow(timeout=600):
    """Print the steps of the orchestrations that run on this master as they finish,
    until one ends (its ``salt/run/<jid>/ret``) or ``timeout`` seconds pass. For an
    orchestration started with plain ``salt-run state.orchestrate`` elsewhere.

    CLI example::

        salt-run pigsty_orch.follow timeout=1800
    """
    timeout = _seconds(timeout)
    t0 = time.time()
    follower = pigsty_progress.OrchestrationFollower(None, t0)
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=True) as bus:
        while time.time() - t0 < timeout:
            ev = bus.get_event(wait=POLL, full=True)
            if not ev:
                continue
            for line in follower.feed(ev.get("tag", ""), ev.get("data"), time.time()):
                _progress(line)
            if follower.ended:
                _progress("[%7.1fs] %s: ended" % (time.time() - t0, follower.ended))
                return {"result": True, "comment": "the orchestration ended"}
    return {"result": True, "comment": "no orchestration ended within %g s" % timeout}
