"""Progress lines of a long runner job: a log line, and a ``progress`` event on the job's bus
so that `salt-run` and orchestrate output show the step as it runs.

A runner passes its own logger and the ``__jid_event__`` Salt put in its globals (None when
the function is called outside a job, e.g. from another module or a test)."""


def report(logger, jid_event, message):
    """Log ``message`` on ``logger`` and fire it as ``{"message": ...}`` with tag suffix
    ``progress`` on ``jid_event``. The log line is the record when there is no event bus, or
    when the job's bus is already gone at the end of a long run (Salt hands runners a weak
    proxy to it: ReferenceError; seen at the end of a restore)."""
    logger.info(message)
    if jid_event is None:
        return
    try:
        jid_event.fire_event({"message": message}, "progress")
    except ReferenceError:
        pass
