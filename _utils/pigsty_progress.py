"""Progress lines of a long runner job: a log line, and a ``progress`` event on the job's bus
so that `salt-run` and orchestrate output show the step as it runs.

A runner passes its own logger and the ``__jid_event__`` Salt put in its globals (None when
the function is called outside a job, e.g. from another module or a test). salt-run prints
each line through the pigsty_progress outputter (_output/pigsty_progress.py) as it comes."""


def report(logger, jid_event, message):
    """Log ``message`` on ``logger`` and fire it as ``{"message": ...}`` with tag suffix
    ``progress`` on ``jid_event``. The log line is the record when there is no event bus, or
    when the job's bus is already gone at the end of a long run (Salt hands runners a weak
    proxy to it: ReferenceError; seen at the end of a restore)."""
    logger.info(message)
    if jid_event is None:
        return
    try:
        jid_event.fire_event({"message": message, "outputter": "pigsty_progress"}, "progress")
    except ReferenceError:
        pass


# ------------------------------------------------------------------ orchestration steps
ORCHESTRATE_RUNNERS = ("state.orchestrate", "state.orch", "state.sls")


def _target(tgt):
    return ",".join(str(t) for t in tgt) if isinstance(tgt, (list, tuple)) else str(tgt)


class OrchestrationFollower:
    """Lines that show an orchestration's steps as they happen, from the master's events
    (``feed`` one event at a time; it returns the lines to print, each with the seconds since
    ``t0``). Salt's orchestrate fires ``salt/run/<orchestration jid>/args`` as each step starts
    (salt.state, salt.function, salt.runner, salt.wheel; nested orchestrations keep the jid);
    a state or function step's job then publishes (``salt/job/<jid>/new``) and each minion
    returns (``salt/job/<jid>/ret/<minion>``); a runner step fires ``salt/run/<jid>/new`` and
    ``/ret``. The job or run that starts right after a step's args event is that step's (steps
    run one after the other). ``jid``: the orchestration to follow (None: any)."""

    def __init__(self, jid, t0):
        self.jid, self.t0 = jid, t0
        self.waiting = None          # the step whose job or run has not published yet
        self.jobs = {}               # job or run jid -> its step
        self.depth = 0               # nested orchestrations running
        self.ended = None            # the fun of a top-level orchestration run that ended

    def _line(self, now, text, depth=0):
        return "[%7.1fs] %s%s" % (now - self.t0, "  " * depth, text)

    def feed(self, tag, data, now):
        parts = tag.split("/") if isinstance(tag, str) else []
        data = data if isinstance(data, dict) else {}
        if len(parts) < 4 or parts[0] != "salt" or parts[1] not in ("run", "job"):
            return []
        kind, jid, what = parts[1], parts[2], parts[3]
        if kind == "run" and what == "args" and (self.jid is None or jid == self.jid):
            return self._step_started(data, now)
        if what == "new" and self.waiting is not None:
            return self._published(kind, jid, data, now)
        if kind == "job" and what == "ret" and jid in self.jobs:
            return self._minion_returned(jid, parts[4] if len(parts) > 4 else data.get("id"), data, now)
        if kind == "run" and what == "ret":
            if jid in self.jobs:
                return self._run_returned(jid, data, now)
            if self.jid is None and str(data.get("fun", "")).replace("runner.", "") in ORCHESTRATE_RUNNERS:
                self.ended = data.get("fun")
        return []

    def _step_started(self, data, now):
        kind, name = data.get("type"), data.get("name")
        if kind == "state":
            mods = (data.get("args") or {}).get("arg") or []
            what = "state %s on %s" % (_target(mods[0] if mods else name), _target(data.get("tgt")))
        elif kind == "function":
            what = "%s on %s" % (name, _target(data.get("tgt")))
        else:
            what = "%s %s" % (kind or "step", name)
        self.waiting = {"label": "%s" % (name if kind == "state" else what), "what": what, "depth": self.depth,
                        "nested": kind == "runner" and name in ORCHESTRATE_RUNNERS,
                        "fun": name if kind == "function" else None}
        return [self._line(now, "> %s" % what, self.depth)]

    def _published(self, kind, jid, data, now):
        """The waiting step's job (or run) was published. A batched state or function step
        (``batch:``) publishes Salt's ``test.ping`` of the whole target first, then one job per
        batch: the ping's minions are the step's, and every batch's job belongs to it until
        all of them returned."""
        step = self.waiting
        fun = data.get("fun")
        if kind == "job" and fun == "test.ping" and step["fun"] != "test.ping" and "start" not in step:
            step.update(start=now, minions=list(data.get("minions") or []), returned={}, batched=True)
            return []
        if "start" not in step:
            step.update(start=now, minions=list(data.get("minions") or []), returned={})
        if not step.get("batched"):
            self.waiting = None
        self.jobs[jid] = step
        if step.get("nested"):
            self.depth += 1
        return []

    def _minion_returned(self, jid, minion, data, now):
        step = self.jobs[jid]
        ok = data.get("success", True) is not False and data.get("retcode", 0) in (0, None)
        step["returned"][minion] = ok
        lines = [self._line(now, "  %s: %s (%.1f s)" % (
            minion, "ok" if ok else "FAILED (retcode %s)" % data.get("retcode"), now - step["start"]), step["depth"])]
        if set(step["minions"]) <= set(step["returned"]):
            good = sum(1 for v in step["returned"].values() if v)
            lines.append(self._line(now, "%s %s: %d/%d minion(s) ok in %.1f s" % (
                "done" if good == len(step["returned"]) else "FAILED", step["label"], good,
                len(step["returned"]), now - step["start"]), step["depth"]))
            for done in [j for j, s in self.jobs.items() if s is step]:
                del self.jobs[done]
            if self.waiting is step:
                self.waiting = None
        return lines

    def _run_returned(self, jid, data, now):
        step = self.jobs.pop(jid)
        if step.get("nested"):
            self.depth = max(0, self.depth - 1)
        ret = data.get("return")
        ok = data.get("success", True) is not False and not (isinstance(ret, dict) and (
            ret.get("retcode") not in (0, None) or ret.get("result") is False))
        return [self._line(now, "%s %s (%.1f s)" % ("done" if ok else "FAILED", step["what"], now - step["start"]),
                           step["depth"])]
