"""This node's part of the patrol report (salt-run pigsty.patrol), read-only.

    salt node-1 pigsty_patrol.facts

Asks the local PostgreSQL through pigsty_pg.read (a read-only transaction as the dbsu over
the unix socket; ``host``, ``port``, ``user`` override it like every pigsty_pg function):
recovery or not, archive_mode and pg_stat_archiver, WAL segments waiting to be archived,
the age of every database's oldest unfrozen XID, the data and WAL sizes, and (on the
primary: replicas keep no such statistics) the tables with the most dead tuples of every
database that accepts connections; and the data directory's filesystem (statvfs). The SQL
is in _utils/pigsty_patrol.py, the report's logic on the master.
"""
import logging
import os

from salt.exceptions import CommandExecutionError

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_defaults
    import pigsty_patrol
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_patrol"

CONNECTION_KEYS = ("host", "port", "user")


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    if "pigsty_pg.read" not in __salt__:
        return (False, "pigsty_patrol: needs pigsty_pg.read (pigsty_pg is not loaded: psycopg2?)")
    return __virtualname__


def _disk(path):
    """Size, used and available bytes of the filesystem holding ``path`` (df's used %)."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    pct = 100.0 * used / (used + avail) if used + avail else 0.0
    return {"path": path, "total": total, "used": used, "avail": avail, "pct": round(pct, 1)}


def _data_dir_of_config():
    try:
        conf = __salt__["pigsty.config"]() if "pigsty.config" in __salt__ else None
    except Exception:  # pylint: disable=broad-except  (no inventory: no data directory known)
        conf = None
    return (conf or {}).get("pg_data")


def facts(top=None, **kwargs):
    """The local instance's facts for the patrol report (see the module's docstring).
    ``top``: tables listed per database (default pigsty_defaults.PATROL's top_tables).
    Postgres not answering is reported in ``pg_error`` (the disk is still measured).

    CLI example::

        salt-call pigsty_patrol.facts
    """
    conn = {k: kwargs[k] for k in CONNECTION_KEYS if kwargs.get(k) is not None}
    unexpected = sorted(k for k in kwargs if k not in CONNECTION_KEYS and not str(k).startswith("__"))
    if unexpected:
        raise CommandExecutionError("pigsty_patrol.facts: unexpected argument(s): %s" % (
            ", ".join(unexpected)))
    top = int(top if top is not None else pigsty_defaults.PATROL["top_tables"])
    read = __salt__["pigsty_pg.read"]
    out = {"errors": []}
    try:
        in_recovery, data_dir, archive_mode, data_bytes, wal_bytes, ready = read(
            pigsty_patrol.NODE_SQL, connect_wait=2, **conn)[0]
        archiver = read(pigsty_patrol.ARCHIVER_SQL, **conn)[0]
        xid = read(pigsty_patrol.XID_SQL, **conn)
    except CommandExecutionError as exc:
        out["pg_error"] = str(exc).strip().splitlines()[0][:500]
        data_dir = _data_dir_of_config()
    else:
        out.update(in_recovery=in_recovery, archive_mode=archive_mode, data_bytes=data_bytes,
                   wal_bytes=wal_bytes, archive_ready=ready,
                   archiver=dict(zip(pigsty_patrol.ARCHIVER_KEYS, archiver)),
                   xid=[{"datname": d, "age": age} for d, age, _conn in xid])
        dead = []
        if not in_recovery:
            for datname, _age, connectable in xid:
                if not connectable:
                    continue
                try:
                    rows = read(pigsty_patrol.DEAD_SQL, args=[top], dbname=datname, **conn)
                except CommandExecutionError as exc:
                    out["errors"].append("%s: %s" % (datname, str(exc).strip().splitlines()[0][:300]))
                    continue
                dead += [dict(zip(pigsty_patrol.DEAD_KEYS, r)) for r in rows]
        out["dead"] = sorted(dead, key=lambda r: (-r["dead"], r["datname"], r["table"]))[:top]
    out["data_directory"] = data_dir
    if data_dir:
        try:
            out["disk"] = _disk(data_dir)
        except OSError as exc:
            out["disk_error"] = "%s: %s" % (data_dir, exc.strerror)
    else:
        out["disk_error"] = "no data directory known"
    return out
