"""A database's ``baseline`` (Pigsty's pg_databases field): a SQL file run once, right after
the database is created, never again.

Where the files live: the state tree's ``pgsql/files/baseline/`` directory (in this
repository ``salt/pgsql/files/baseline/``); pillar names a file there, as Pigsty names one
among its ``files/``::

    pg_databases:
      - name: meta
        baseline: cmdb.sql            # salt://pgsql/files/baseline/cmdb.sql

The name is a relative path of plain segments (letters, digits, '_', '.', '+', '-'; none
starting with a dot, so no '..' and no hidden file), so it cannot leave that directory.

When it is checked:

- ``salt-run pigsty.validate`` refuses a bad name and, for the master's own ``file_roots``
  (base environment), a file that is not there (``file_problems``); a file served otherwise
  (gitfs...) is checked at apply time;
- ``pigsty_pg.db_ensure`` fetches the file (``cp.cache_file``) before it creates the
  database: a missing file fails the state with its ``salt://`` address, and nothing is
  created;
- after CREATE DATABASE (and the database's schemas and extensions) it runs the file as the
  dbsu with ``psql -X -v ON_ERROR_STOP=1 --single-transaction`` against the new database
  over the unix socket: a failing statement rolls the whole file back, and the state fails
  with psql's message. The database stays (created, without its baseline): the baseline is
  never run on a database that exists, so drop the database to have it run again, or run
  the file by hand.

Pure Python (no Salt).
"""
import os
import re

DIRECTORY = "pgsql/files/baseline"        # in the state tree (base environment)
SEGMENT = r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,127}"
NAME_RE = re.compile(r"^%s(/%s){0,7}$" % (SEGMENT, SEGMENT))


def name_problem(value):
    """None for a usable baseline name, else what was expected."""
    if isinstance(value, str) and NAME_RE.fullmatch(value):
        return None
    return ("a SQL file name under the state tree's %s/ (such as cmdb.sql: letters, digits, "
            "'_', '.', '+', '-', subdirectories with '/'; no absolute path, no segment "
            "starting with '.')" % DIRECTORY)


def source(name):
    """The file's address on the master's file server."""
    if name_problem(name) is not None:
        raise ValueError("baseline: expected %s, got %r" % (name_problem(name), name))
    return "salt://%s/%s" % (DIRECTORY, name)


def psql_command(psql, socket_dir, port, dbsu, dbname):
    """The psql command that runs a baseline read from standard input (the cached file is
    root's; the dbsu reads nothing from disk): stop at the first error, one transaction,
    no ~/.psqlrc."""
    return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
            "-h", socket_dir, "-p", str(int(port)), "-U", dbsu, "-d", dbname, "-f", "-"]


def named(inv):
    """[(cluster, database, baseline name)] of every database that names a baseline (a
    cluster's own pg_databases, else the global one), in the inventory ``inv`` (the
    ``pigsty`` pillar key)."""
    out = []
    if not isinstance(inv, dict):
        return out
    gvars = inv.get("vars") if isinstance(inv.get("vars"), dict) else {}
    clusters = inv.get("clusters") if isinstance(inv.get("clusters"), dict) else {}
    for cluster in sorted(clusters, key=str):
        cls = clusters[cluster]
        cvars = cls.get("vars") if isinstance(cls, dict) and isinstance(cls.get("vars"), dict) else {}
        dbs = cvars["pg_databases"] if "pg_databases" in cvars else gvars.get("pg_databases")
        for db in dbs if isinstance(dbs, list) else []:
            if isinstance(db, dict) and db.get("baseline") is not None \
                    and db.get("state", "present") != "absent":
                out.append((cluster, db.get("name"), db["baseline"]))
    return out


def _roots(file_roots):
    roots = file_roots.get("base") if isinstance(file_roots, dict) else None
    return [r for r in roots if isinstance(r, str)] if isinstance(roots, list) else []


def in_roots(name, file_roots):
    """Whether one of the base environment's ``file_roots`` (the master's option) holds the
    baseline ``name``; None when there are no local roots to look in (or a bad name)."""
    roots = _roots(file_roots)
    if not roots or name_problem(name) is not None:
        return None
    return any(os.path.isfile(os.path.join(root, DIRECTORY, name)) for root in roots)


def file_problems(inv, file_roots):
    """Baselines that none of the base environment's ``file_roots`` holds (the master's
    option ``file_roots``); [] when there are no local roots to look in."""
    roots = _roots(file_roots)
    problems = []
    for cluster, dbname, name in named(inv):
        if in_roots(name, file_roots) is False:
            problems.append("pigsty:clusters:%s:vars:pg_databases[%s]:baseline: %s is not in the "
                            "state tree (expected the file %s/%s under file_roots %s)" % (
                                cluster, dbname, name, DIRECTORY, name, ", ".join(roots)))
    return problems
