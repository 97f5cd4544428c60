"""Pgbouncer's admin console on this node: RELOAD, PAUSE / RESUME, SHOW.

The console is reached over the local unix socket as the dbsu (pgbouncer's HBA: peer), so
no password is involved; psql runs as the dbsu and the command goes on its stdin.

    salt -G 'pg_cluster:pg-test' pgbouncer.reload
    salt node-1 pgbouncer.show pools
"""
import ipaddress
import json
import logging
import os
import pwd
import re
import subprocess
import time

import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_local
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pgbouncer"

SHOW = ("pools", "stats", "databases", "clients", "servers", "lists", "config", "users", "version")


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    if __salt__["cmd.has_exec"]("psql"):
        return __virtualname__
    return (False, "pgbouncer module: psql (postgresql-client) is not installed")


def _local():
    """This node's pgbouncer port and dbsu (pigsty.config; options pgbouncer.port and
    pgbouncer.dbsu on a node without an instance)."""
    return pigsty_local.settings(__salt__, ("pgbouncer_port", "pg_dbsu"),
                                 {"pgbouncer_port": "pgbouncer.port", "pg_dbsu": "pgbouncer.dbsu"})


def _console(command, port=None, user=None, timeout=10):
    """Run console command(s) (";"-separated) through psql as the dbsu; psql's stdout.
    psql is started directly as the dbsu (no su and login shell): a pause or a resume
    during a switchover costs milliseconds, not a shell's start-up."""
    if not port or not user:
        local = _local()
        port, user = port or local["pgbouncer_port"], user or local["pg_dbsu"]
    port = int(port)
    pw = pwd.getpwnam(user)
    try:
        res = subprocess.run(
            ["psql", "-X", "-A", "-F", "\t", "-h", "/var/run/postgresql", "-p", str(port),
             "-U", user, "-d", "pgbouncer", "-v", "ON_ERROR_STOP=1"],
            input=command + ";\n", capture_output=True, text=True, timeout=timeout,
            user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], cwd="/",
            env={"PATH": "/usr/bin:/bin", "HOME": pw.pw_dir, "LANG": "C.UTF-8"})
    except subprocess.TimeoutExpired:
        raise salt.exceptions.CommandExecutionError(
            "pgbouncer console %s did not finish within %ss" % (command, timeout))
    log.debug("pgbouncer console %s -> %s", command, res.returncode)
    if res.returncode != 0:
        raise salt.exceptions.CommandExecutionError(
            "pgbouncer console %s failed: %s" % (command, (res.stderr or res.stdout).strip()))
    return res.stdout


def reload(port=None, wait=0, interval=0.5):
    """Re-read pgbouncer.ini, database.txt, the HBA file and the userlist (no restart).

    With ``wait`` seconds, a console that does not accept connections yet (pgbouncer just
    (re)started: no socket, or the socket refuses) is tried again until ``wait`` has passed;
    other errors are reported at once."""
    deadline = time.monotonic() + float(wait)
    while True:
        try:
            _console("RELOAD", port)
            return True
        except salt.exceptions.CommandExecutionError as exc:
            starting = any(s in str(exc) for s in ("No such file or directory", "Connection refused",
                                                   "the database system is starting up"))
            if not starting or time.monotonic() + interval > deadline:
                if starting and wait:
                    raise salt.exceptions.CommandExecutionError(
                        "%s (still not accepting after waiting %ss)" % (exc, wait))
                raise
        time.sleep(interval)


PAUSE_MARKER = "/run/pigsty/pgbouncer-paused"   # written by pause(), removed by resume()


def pause(database=None, port=None, timeout=30, hold=120, while_alive=False):
    """PAUSE (all databases, or one): new queries wait, server connections are released.
    A marker (time, pid, expires) says pgbouncer was paused by us, so that a pause whose
    owner died (pigsty_handoff.resume_stale, and the node's pigsty-pgbouncer-watchdog once
    ``hold`` seconds have passed) can be told from one an operator made by hand. With
    ``while_alive`` the pause belongs to this process: the watchdog resumes it as soon as the
    process is gone (a hand-off, which resumes before it returns)."""
    try:
        hold = float(hold)
    except (TypeError, ValueError):
        hold = -1
    if not 0 < hold <= 3600:
        raise salt.exceptions.SaltInvocationError("hold: %r, expected seconds in (0, 3600]" % (hold,))
    try:
        os.makedirs(os.path.dirname(PAUSE_MARKER), exist_ok=True)
        now = time.time()
        with open(PAUSE_MARKER, "w") as fh:
            json.dump({"time": now, "pid": os.getpid(), "database": database, "expires": now + hold,
                       "while_alive": bool(while_alive)}, fh)
    except OSError as exc:
        log.warning("pgbouncer: pause marker not written: %s", exc)
    _console("PAUSE" + (" %s" % _db(database) if database else ""), port, timeout=timeout)
    return True


def resume(database=None, port=None):
    """RESUME after PAUSE. Resuming a pgbouncer that is not paused is not an error."""
    try:
        _console("RESUME" + (" %s" % _db(database) if database else ""), port)
    except salt.exceptions.CommandExecutionError as exc:
        if "not paused" not in str(exc):
            raise
    try:
        os.unlink(PAUSE_MARKER)
    except OSError:
        pass
    return True


def paused_by_us():
    """The pause marker ({time, pid, database}) when we paused pgbouncer, else None."""
    try:
        with open(PAUSE_MARKER) as fh:
            doc = json.load(fh)
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return None


def show(what="pools", port=None):
    """SHOW POOLS / STATS / DATABASES / ...: a list of rows (dicts)."""
    if what not in SHOW:
        raise salt.exceptions.SaltInvocationError(
            "what: %r is not something pgbouncer shows (expected one of: %s)" % (what, ", ".join(SHOW)))
    out = _console("SHOW %s" % what.upper(), port).splitlines()
    rows = [l for l in out if l and not l.startswith("(")]
    if not rows:
        return []
    head = rows[0].split("\t")
    return [dict(zip(head, r.split("\t"))) for r in rows[1:]]


# ------------------------------------------------------------------ switchover hand-off
# After a planned switchover the old primary's pgbouncer still holds the sessions of
# clients that came through 5433. Instead of cutting them, it forwards them to the new
# primary until they are gone (pigsty_ha ends the hand-off); the marker file says where.
FORWARD_FILE = "/etc/pgbouncer/pigsty-forward"
DATABASES_FILE = "/etc/pgbouncer/database.txt"


def forwarding():
    """The primary's address this pgbouncer forwards to, or None (routes locally)."""
    try:
        with open(FORWARD_FILE) as fh:
            value = fh.read().strip()
    except OSError:
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return None


def forward(host=None, port=None, database_file=None, resume=False):
    """Point every database at the primary ``host`` (an IPv4 address), or back at the local
    instance (host=None), and RELOAD (and RESUME in the same breath with ``resume``).
    Returns whether anything changed. ``database_file``: the text of database.txt for that
    host, when the caller has it ready."""
    if host is not None:
        try:
            host = str(ipaddress.IPv4Address(str(host)))
        except ValueError:
            raise salt.exceptions.SaltInvocationError("host: %r is not an IPv4 address" % (host,))
    if host == forwarding() and (host is not None or not os.path.exists(FORWARD_FILE)):
        if resume:
            globals()["resume"](port=port)     # the parameter shadows the function's name
        return False
    if host is None:
        os.unlink(FORWARD_FILE)
    else:
        _write(FORWARD_FILE, host + "\n")
    _write(DATABASES_FILE, database_file or __salt__["pigsty.pgbouncer"]()["database_file"])
    _console("RELOAD; RESUME" if resume else "RELOAD", port)
    if resume:
        try:
            os.unlink(PAUSE_MARKER)
        except OSError:
            pass
    return True


def clients(port=None):
    """Client connections of the databases (the admin console's own are not counted)."""
    return len([c for c in show("clients", port) if c.get("database") != "pgbouncer"])


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o640)
    pw = pwd.getpwnam(_local()["pg_dbsu"])
    os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.replace(tmp, path)


def _db(name):
    if not isinstance(name, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise salt.exceptions.SaltInvocationError(
            "database: %r is not a database name (expected a safe identifier)" % (name,))
    return name
