"""Per-cluster locks on the master (flock: a process that dies releases its lock).

- the reconcile lock: one reconciliation of a cluster at a time; it also keeps what the
  last finished run saw, so that a burst of events coalesces (in etcd when several masters
  share it: pigsty_ha_shared_lock);
- the operation lock: one planned operation (switchover, failover) of a cluster at a
  time; reconciliation leaves a hand-off alone while one is in progress.
"""
import contextlib
import fcntl
import json
import logging
import os
import time

import salt.exceptions

import pigsty_etcd
import pigsty_ha_shared_lock

log = logging.getLogger(__name__)


def _path(opts, kind, cluster):
    return os.path.join(opts["cachedir"], "pigsty", "%s-%s" % (kind, cluster))


def _acquire(fh, wait, what):
    deadline = time.time() + wait
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.time() >= deadline:
                raise salt.exceptions.CommandExecutionError(what)
            time.sleep(0.05)


def _shared_lock(shared, enter, refusal, what, cluster):
    """Take the lock several masters share (``enter()``: its context manager) when ``shared``
    is given: (an ExitStack holding it, what it yields). Held by another master: refused with
    ``refusal(holder)``; etcd out of reach: (None, None) with a warning, and the caller takes
    this master's own lock. No ``shared``: (None, None)."""
    if shared is None:
        return None, None
    stack = contextlib.ExitStack()
    try:
        value = stack.enter_context(enter())
    except pigsty_ha_shared_lock.Busy as exc:
        raise salt.exceptions.CommandExecutionError(refusal(str(exc))) from None
    except pigsty_etcd.EtcdError as exc:
        log.warning("pigsty_ha: the shared %s of %s is out of reach (%s): this master's own "
                    "lock is used", what, cluster, exc)
        return None, None
    return stack, value


@contextlib.contextmanager
def reconcile_lock(opts, cluster, wait=120, shared=None):
    """One reconciliation of a cluster at a time (others wait, bounded); yields what the
    last finished one recorded ({"start", "roles"}), to be updated in place.
    ``shared``: (etcd client, this master's name) when several masters share the lock
    (pigsty_ha_shared_lock); when etcd does not answer, this master's own lock is used (each
    master then reconciles on its own: the steps are idempotent) and a warning logged."""
    stack, last = _shared_lock(shared, lambda: pigsty_ha_shared_lock.reconcile_lock(
        shared[0], cluster, shared[1], wait), str, "reconcile lock", cluster)
    if stack is not None:
        with stack:
            yield last
        return
    path = _path(opts, "reconcile", cluster)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+") as fh:
        _acquire(fh, wait, "another reconciliation of %s has held its lock for %ss" % (cluster, wait))
        try:
            fh.seek(0)
            try:
                last = json.loads(fh.read() or "{}")
            except ValueError:
                last = {}
            yield last
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(last))
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def operation_lock(opts, cluster, operation, wait=0, kind="operation", shared=None):
    """Hold the cluster's operation lock for ``operation`` (e.g. "switchover to pg-test-2").
    A second operation waits up to ``wait`` seconds, then is refused with a message naming
    the one in progress; nothing of it has run then. ``kind`` names the lock: "operation"
    (planned HA operations), "backup" (one backup or restore of a cluster at a time).
    ``shared``: as for reconcile_lock (the lock in etcd, every master's operations)."""
    stack, _held = _shared_lock(shared, lambda: pigsty_ha_shared_lock.operation_lock(
        shared[0], cluster, kind, operation, shared[1], wait),
        lambda running: busy_message(operation, cluster, running), kind + " lock", cluster)
    if stack is not None:
        with stack:
            yield
        return
    path = _path(opts, kind, cluster)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+") as fh:
        try:
            _acquire(fh, wait, "")
        except salt.exceptions.CommandExecutionError:
            fh.seek(0)
            running = fh.read().strip() or "another operation"
            raise salt.exceptions.CommandExecutionError(busy_message(operation, cluster, running))
        try:
            fh.seek(0)
            fh.truncate()
            fh.write("%s (pid %d, since %s)" % (operation, os.getpid(), time.strftime("%H:%M:%S")))
            fh.flush()
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def busy_message(operation, cluster, running):
    """The refusal of ``operation`` while ``running`` (its holder's description) runs."""
    return ("%s of %s refused: %s is in progress (one planned operation of a cluster at a "
            "time; try again when it has finished)" % (operation, cluster, running))


def operation_in_progress(opts, cluster, shared=None):
    """True while some process (of any master, with ``shared``) holds the cluster's
    operation lock."""
    return operation_running(opts, cluster, shared=shared) is not None


def operation_running(opts, cluster, kind="operation", shared=None):
    """The planned operation of ``cluster`` in progress, as its holder describes it
    ("switchover pg-test-1 -> pg-test-2 (pid ..., since ...)"), or None. Read-only: it
    neither creates the lock file nor keeps the lock (a dry run uses it). ``shared``: asks
    etcd (every master's operations), and this master's own lock when etcd is out of reach."""
    if shared is not None:
        try:
            return pigsty_ha_shared_lock.operation_running(shared[0], cluster, kind)
        except pigsty_etcd.EtcdError as exc:
            log.warning("pigsty_ha: the shared %s lock of %s is out of reach (%s): this "
                        "master's own lock is read", kind, cluster, exc)
    path = _path(opts, kind, cluster)
    try:
        fh = open(path)
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return fh.read().strip() or "another operation"
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None
