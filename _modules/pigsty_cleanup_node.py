"""This node's part of the scheduled cleanup (salt-run pigsty.cleanup).

    salt node-1 pigsty_cleanup.logs test=True

pgBackRest appends to its log files (pgbackrest_log_dir) and never rotates them; the alert
sink on meta appends every notification to its file. Each one past ``max_bytes`` is moved
to NAME.1 (one old copy kept). The logic is _utils/pigsty_cleanup.py.
"""
import logging
import os

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_cleanup
    import pigsty_patrol
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None
from salt.exceptions import SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_cleanup"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _log_dir():
    """This node's pgbackrest_log_dir (pigsty_backup.settings), or None."""
    try:
        return __salt__["pigsty_backup.settings"]().get("pgbackrest_log_dir")
    except Exception as exc:  # pylint: disable=broad-except  (no inventory / no meta: nothing)
        log.info("pigsty_cleanup: no pgbackrest_log_dir here: %s", exc)
        return None


def logs(max_bytes=None, test=False, log_dir=None, extra=None):
    """Rotate pgBackRest's log files and the alert sink's file past ``max_bytes`` (default
    pigsty_defaults.PATROL's log_max_bytes). ``log_dir`` / ``extra`` (a list of files):
    instead of this node's pgbackrest_log_dir / the alert sink's file (tests). With
    ``test=True`` nothing is moved.

    CLI example::

        salt-call pigsty_cleanup.logs test=True
    """
    try:
        limit = pigsty_cleanup.max_bytes_of(max_bytes)
    except pigsty_patrol.PatrolError as exc:
        raise SaltInvocationError(str(exc))
    directory = log_dir if log_dir is not None else _log_dir()
    files = pigsty_cleanup.log_files(directory) if directory else []
    for path in (extra if extra is not None else [pigsty_cleanup.ALERT_SINK_FILE]):
        if os.path.isfile(path) and not os.path.islink(path):
            files.append((path, os.path.getsize(path)))
    plan = pigsty_cleanup.rotate_plan(files, limit)
    done = pigsty_cleanup.rotate(plan, test=bool(test))
    if done and not test:
        log.info("pigsty_cleanup: rotated %s", ", ".join(done))
    return {"result": None if test and done else True, "rotated": done,
            "checked": len(files), "log_dir": directory,
            "comment": "%d of %d file(s) %s (over %d bytes)" % (
                len(done), len(files), "would be rotated" if test else "rotated", limit)}
