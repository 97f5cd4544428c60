"""Orchestrations that show each step as it finishes, with the elapsed time.

    salt-run pigsty_orch.run orch.site                 # Salt's state.orchestrate, step lines live
    salt-run pigsty_orch.run orch.pgsql pillar='{"cluster": "pg-test"}'
    salt-run pigsty_orch.follow                        # watch an orchestration started elsewhere

``salt-run state.orchestrate`` prints its result only when the whole orchestration has
ended (minutes for orch.site). ``run`` starts the same orchestration (Salt's own runner,
same arguments, same return and exit code) and, while it runs, prints one line per step
from the ``salt/job/<jid>/prog/...`` events Salt's state system fires as each step ends
(``state_events``, master.d/pigsty.conf). Steps of orchestrations nested in it (a
``salt.runner`` step calling state.orchestrate) are shown indented. ``follow`` prints the
step lines of whatever orchestration runs on this master (``salt-run state.orchestrate``
in another terminal) until one ends or ``timeout`` passes.
"""
import contextvars
import logging
import threading
import time

import salt.exceptions
import salt.utils.event
import salt.utils.jid

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_progress
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_orch"

POLL = 0.25            # seconds between looks at the event bus


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _progress(message):
    pigsty_progress.report(log, globals().get("__jid_event__"), message)


def _step(tag, data):
    """(jid, minion id) of a ``salt/job/<jid>/prog/<id>/<n>`` event, else None."""
    parts = tag.split("/")
    if len(parts) >= 6 and parts[:2] == ["salt", "job"] and parts[3] == "prog":
        return parts[2], parts[4]
    return None


def _line(ev, t0, ours, master_id, seen):
    """The step line of event ``ev`` when it is a step of orchestration ``ours`` or of one
    running on this master (nested: indented; ``ours`` None: any), once per step."""
    step = _step(ev.get("tag", ""), ev.get("data"))
    if not step or (step[0] != ours and step[1] != master_id):
        return None                        # a minion's own state run, or another master's
    data = ev.get("data") or {}
    key = (step[0], (data.get("ret") or {}).get("__run_num__"))
    if key in seen:
        return None
    seen.add(key)
    return pigsty_progress.step_line(data, time.time() - t0, nested=ours is not None and step[0] != ours)


def _show(bus, t0, ours, master_id, seen):
    """Print the step lines of the events waiting on ``bus``."""
    while True:
        ev = bus.get_event(wait=POLL, tag="salt/job/", full=True, match_type="startswith")
        if not ev:
            return
        line = _line(ev, t0, ours, master_id, seen)
        if line:
            _progress(line)


def _check(mods, pillar):
    if not isinstance(mods, str) or not mods.strip():
        raise salt.exceptions.SaltInvocationError(
            "mods: expected the orchestration's SLS name(s), e.g. orch.site, got %r" % (mods,))
    if pillar is not None and not isinstance(pillar, dict):
        raise salt.exceptions.SaltInvocationError(
            "pillar: expected a mapping, e.g. pillar='{\"cluster\": \"pg-test\"}', got %r" % (pillar,))


def run(mods, pillar=None, test=None, saltenv="base"):
    """Run ``salt-run state.orchestrate mods`` and print each step as it finishes, with
    the time since the start. Returns what state.orchestrate returns (the highstate
    outputter prints it at the end) and exits as it would (1 when a step failed).

    CLI example::

        salt-run pigsty_orch.run orch.site
        salt-run pigsty_orch.run orch.pgsql pillar='{"cluster": "pg-test"}' test=True
    """
    _check(mods, pillar)
    jid = salt.utils.jid.gen_jid(__opts__)
    __opts__["state_events"] = True        # this process's orchestration fires its step events
    master_id = __opts__.get("id")
    t0 = time.time()
    done = {}

    def orchestrate():
        try:
            done["ret"] = __salt__["state.orchestrate"](
                mods, saltenv=saltenv, test=test, pillar=pillar, orchestration_jid=jid)
        except Exception as exc:  # noqa: BLE001 - reported below, as state.orchestrate would raise it
            done["error"] = exc

    seen = set()
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=True) as bus:
        _progress("[%7.1fs] %s: started (orchestration %s)" % (0.0, mods, jid))
        worker = threading.Thread(target=contextvars.copy_context().run, args=(orchestrate,),
                                  name="pigsty-orch", daemon=True)
        worker.start()
        while worker.is_alive():
            _show(bus, t0, jid, master_id, seen)
        _show(bus, t0, jid, master_id, seen)      # the last steps' events
    if "error" in done:
        raise done["error"]
    ret = done["ret"]
    failed = ret.get("retcode") if isinstance(ret, dict) else 1
    _progress("[%7.1fs] %s: %s" % (time.time() - t0, mods, "FAILED (see below)" if failed else "done"))
    if failed:
        __context__["retcode"] = failed
    return ret


def follow(timeout=600):
    """Print the steps of the orchestrations that run on this master as they finish,
    until one ends (its ``salt/run/<jid>/ret``) or ``timeout`` seconds pass. For an
    orchestration started with plain ``salt-run state.orchestrate`` elsewhere.

    CLI example::

        salt-run pigsty_orch.follow timeout=1800
    """
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise salt.exceptions.SaltInvocationError("timeout: expected seconds, got %r" % (timeout,))
    if not 0 < timeout <= 86400:
        raise salt.exceptions.SaltInvocationError("timeout: expected 0 < seconds <= 86400, got %r" % (timeout,))
    master_id = __opts__.get("id")
    t0 = time.time()
    seen = set()
    shown = 0
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=True) as bus:
        while time.time() - t0 < timeout:
            ev = bus.get_event(wait=POLL, full=True)
            if not ev:
                continue
            tag, data = ev.get("tag", ""), ev.get("data") or {}
            if tag.startswith("salt/run/") and tag.endswith("/ret") and "orchestrate" in str(data.get("fun")):
                _progress("[%7.1fs] %s: ended" % (time.time() - t0, data.get("fun")))
                return {"result": True, "steps": shown, "comment": "the orchestration ended"}
            line = _line(ev, t0, None, master_id, seen)
            if line:
                _progress(line)
                shown += 1
    return {"result": True, "steps": shown, "comment": "no orchestration ended within %g s" % timeout}
