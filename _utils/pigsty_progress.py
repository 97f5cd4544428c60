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
def step_line(event, elapsed, nested=False):
    """One line for an orchestration step that finished: ``event`` is the data of Salt's
    ``salt/job/<jid>/prog/<id>/<n>`` event ({"ret": the step's state return, "len": number
    of steps}), ``elapsed`` seconds since the orchestration started. None when ``event`` is
    not a step's result."""
    ret = event.get("ret") if isinstance(event, dict) else None
    if not isinstance(ret, dict) or "result" not in ret:
        return None
    result = ret["result"]
    status = "ok" if result is True else ("test" if result is None else "FAILED")
    step = ret.get("__id__") or ret.get("name") or "?"
    n, total = ret.get("__run_num__"), event.get("len")
    count = "%d/%s" % (n + 1, total) if isinstance(n, int) else "-"
    took = (ret.get("duration") or 0) / 1000.0
    line = "[%7.1fs] %s%-6s %-7s %s (%.1f s)" % (elapsed, "  " if nested else "", status, count, step, took)
    if result is False:
        line += ": " + " ".join(str(ret.get("comment") or "").split())[:300]
    return line
