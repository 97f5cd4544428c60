"""Pgbouncer's admin console on this node: RELOAD, PAUSE / RESUME, SHOW.

The console is reached over the local unix socket as the dbsu (pgbouncer's HBA: peer), so
no password is involved; psql runs as the dbsu and the command goes on its stdin.

    salt -G 'pg_cluster:pg-test' pgbouncer.reload
    salt node-1 pgbouncer.show pools
"""
import re

import salt.exceptions

__virtualname__ = "pgbouncer"

SHOW = ("pools", "stats", "databases", "clients", "servers", "lists", "config", "users", "version")


def __virtual__():
    if __salt__["cmd.has_exec"]("psql"):
        return __virtualname__
    return (False, "pgbouncer module: psql (postgresql-client) is not installed")


def _console(command, port=None, user=None, timeout=10):
    port = int(port or __salt__["config.option"]("pgbouncer.port", 6432))
    user = user or __salt__["config.option"]("pgbouncer.dbsu", "postgres")
    res = __salt__["cmd.run_all"](
        ["psql", "-X", "-A", "-F", "\t", "-h", "/var/run/postgresql", "-p", str(port),
         "-U", user, "-d", "pgbouncer", "-v", "ON_ERROR_STOP=1"],
        stdin=command + ";\n", runas=user, python_shell=False, timeout=timeout,
        ignore_retcode=True, output_loglevel="debug")
    if res["retcode"] != 0:
        raise salt.exceptions.CommandExecutionError(
            "pgbouncer console %s failed: %s" % (command, (res["stderr"] or res["stdout"]).strip()))
    return res["stdout"]


def reload(port=None):
    """Re-read pgbouncer.ini, database.txt, the HBA file and the userlist (no restart)."""
    _console("RELOAD", port)
    return True


def pause(database=None, port=None, timeout=30):
    """PAUSE (all databases, or one): new queries wait, server connections are released."""
    _console("PAUSE" + (" %s" % _db(database) if database else ""), port, timeout=timeout)
    return True


def resume(database=None, port=None):
    """RESUME after PAUSE."""
    _console("RESUME" + (" %s" % _db(database) if database else ""), port)
    return True


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


def _db(name):
    if not isinstance(name, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise salt.exceptions.SaltInvocationError(
            "database: %r is not a database name (expected a safe identifier)" % (name,))
    return name
