#!/usr/bin/python3
"""pigsty-pgbouncer-watchdog: resume a pgbouncer that a hand-off paused and nobody resumed.

A switchover pauses pgbouncer (pgbouncer.pause writes a marker with the time it expires)
and resumes it within a bounded time; the process that does so can die (a killed minion, a
crashed runner). The master's reconciliation resumes such a pause once the minion answers
again; this watchdog does it even when the minion does not: run by a systemd timer every
few seconds, it resumes when the marker has expired and no hand-off holds this node's
hand-off lock. A pause made by hand on the console (no marker) is left alone.

Managed by Salt (Pigsty on Salt): salt/pgsql/pause_watchdog.sls.
"""
import argparse
import fcntl
import json
import os
import pwd
import subprocess
import sys
import time

MARKER = "/run/pigsty/pgbouncer-paused"
LOCK = "/run/pigsty/handoff.lock"
DEFAULT_HOLD = 120          # a marker without "expires" (older code) expires this long after "time"


def alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True                         # exists (another user's), or unknown: assume alive
    return True


def decide(marker, now, lock_free, is_alive=alive):
    """'resume', or why not: 'no marker', 'not expired', 'hand-off running'. A pause that
    belongs to its process (``while_alive``: a hand-off's) ends with that process; any
    other ends when it expires."""
    if marker is None:
        return "no marker"
    try:
        expires = float(marker.get("expires") or float(marker.get("time", 0)) + DEFAULT_HOLD)
    except (TypeError, ValueError):
        expires = 0.0                       # an unreadable marker is nobody's: resume
    owner_gone = bool(marker.get("while_alive")) and not is_alive(marker.get("pid"))
    if now < expires and not owner_gone:
        return "not expired"
    if not lock_free:
        return "hand-off running"
    return "resume"


def read_marker(path=MARKER):
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def console_resume(port, dbsu):
    pw = pwd.getpwnam(dbsu)
    res = subprocess.run(
        ["psql", "-X", "-A", "-h", "/var/run/postgresql", "-p", str(port), "-U", dbsu, "-d", "pgbouncer",
         "-c", "RESUME"], capture_output=True, text=True, timeout=10, user=pw.pw_uid, group=pw.pw_gid,
        extra_groups=[], cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": pw.pw_dir, "LANG": "C.UTF-8"})
    err = (res.stderr or "").strip()
    # "pooler is not paused/suspended": resumed meanwhile by someone else, nothing to do
    if res.returncode != 0 and "not paused" not in err:
        raise RuntimeError("RESUME failed: %s" % err[:300])


def run(port, dbsu, marker_path=MARKER, lock_path=LOCK, resume=console_resume, now=None):
    marker = read_marker(marker_path)
    if marker is None:
        return "no marker"
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock_free = True
        except BlockingIOError:
            lock_free = False
        verdict = decide(marker, time.time() if now is None else now, lock_free)
        if verdict == "resume":
            resume(port, dbsu)
            try:
                os.unlink(marker_path)
            except FileNotFoundError:
                pass
            print("<4>resumed pgbouncer on port %s: paused at %s by pid %s (expiring at %s), its hand-off is gone" % (
                port, marker.get("time"), marker.get("pid"), marker.get("expires")), flush=True)
        return verdict


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=6432)
    p.add_argument("--dbsu", default="postgres")
    args = p.parse_args(argv)
    try:
        run(args.port, args.dbsu)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print("<3>pigsty-pgbouncer-watchdog: %s" % exc, file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
