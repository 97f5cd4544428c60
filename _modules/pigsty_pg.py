"""PostgreSQL roles and databases on the local instance (Pigsty's pg_users / pg_databases).

    salt-call pigsty_pg.is_primary
    salt-call pigsty_pg.role_info dbuser_meta
    salt-call pigsty_pg.user_ensure dbuser_meta password=... roles='[dbrole_admin]' test=True
    salt-call pigsty_pg.user_remove dbuser_old
    salt-call pigsty_pg.db_info meta
    salt-call pigsty_pg.db_ensure meta owner=dbuser_meta schemas='[app]'
    salt-call pigsty_pg.db_ensure meta parameters='{work_mem: 64MB}' baseline=cmdb.sql
    salt-call pigsty_pg.default_roles_ensure admin_user=dbuser_dba
    salt-call pigsty_pg.pgbouncer_userlist      # what pgsql.pgbouncer writes to userlist.txt
    salt-call pigsty_pg.read 'SELECT 1'         # rows of a query, in a read-only transaction

Connects as the dbsu (pg_dbsu) to database ``postgres`` over the unix socket: directory
from the ``pigsty_pg.socket_dir`` option (default /var/run/postgresql), port and dbsu from
this node's resolved configuration (pigsty.config: pg_port, pg_dbsu); every function takes
``host``, ``port``, ``user`` and ``dbname`` to override them. Changes are refused on a replica. The SQL comes from ``pigsty_sql``; a
password travels only as a verifier and is logged and reported as '***' / "changed".
A stored verifier that the pillar password reproduces is kept (random salts, no churn), and
pgbouncer's userlist carries the verifier this instance stores (SCRAM pass-through).
"""
import contextlib
import logging
import time

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_baseline
    import pigsty_local
    import pigsty_pgsql
    import pigsty_sql
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None
from salt.exceptions import CommandExecutionError, SaltInvocationError

try:
    import psycopg2

    HAS_PSYCOPG2 = True
except ImportError:
    HAS_PSYCOPG2 = False

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_pg"

CONNECT_TIMEOUT = 10            # seconds
STATEMENT_TIMEOUT = 30000       # milliseconds, for every statement of every connection
CONNECTION_KEYS = ("host", "port", "user", "dbname", "connect_wait")
DEFAULT_PRIVILEGE_DATABASES = ("template1", "postgres")
USERLIST_PATH = "/etc/pgbouncer/userlist.txt"
BASELINE_TIMEOUT = 3600         # seconds: a baseline may load data


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    if not HAS_PSYCOPG2:
        return (False, "pigsty_pg: psycopg2 is not importable (install psycopg2-binary in "
                       "Salt's Python)")
    return __virtualname__


# ------------------------------------------------------------------ plumbing
def _split(kwargs):
    """(connection overrides, other arguments) with Salt's ``__pub_*`` keys dropped."""
    conn = {k: kwargs[k] for k in CONNECTION_KEYS if kwargs.get(k) is not None}
    rest = {k: v for k, v in kwargs.items()
            if k not in CONNECTION_KEYS and not str(k).startswith("__")}
    return conn, rest


def _no_extra(function, rest):
    if rest:
        raise SaltInvocationError("pigsty_pg.%s: unexpected argument(s): %s" % (
            function, ", ".join(sorted(rest))))


def _local():
    """This node's port and dbsu (pigsty.config; options pigsty_pg.port and pigsty_pg.dbsu
    on a node without an instance)."""
    return pigsty_local.settings(__salt__, ("pg_port", "pg_dbsu"),
                                 {"pg_port": "pigsty_pg.port", "pg_dbsu": "pigsty_pg.dbsu"})


def _params(conn, dbname=None):
    """host (the socket directory), port, user and dbname of a connection."""
    local = {} if conn.get("port") and conn.get("user") else _local()
    return {
        "host": conn.get("host") or __salt__["config.option"]("pigsty_pg.socket_dir",
                                                              "/var/run/postgresql"),
        "port": int(conn.get("port") or local["pg_port"]),
        "user": conn.get("user") or local["pg_dbsu"],
        "dbname": dbname or conn.get("dbname") or "postgres",
    }


@contextlib.contextmanager
def _connect(conn, dbname=None):
    """A psycopg2 connection, closed on exit (uncommitted work is rolled back)."""
    params = _params(conn, dbname)
    # A configuration change that Patroni is still applying (pg_hba, pg_ident) can refuse
    # the first attempts: retry for a bounded time (pigsty_pg.connect_wait, seconds).
    wait = float(conn.get("connect_wait", __salt__["config.option"]("pigsty_pg.connect_wait", 10)))
    deadline = time.monotonic() + wait
    while True:
        try:
            db = psycopg2.connect(connect_timeout=CONNECT_TIMEOUT,
                                  options="-c statement_timeout=%d" % STATEMENT_TIMEOUT, **params)
            break
        except psycopg2.Error as exc:
            if time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise CommandExecutionError(
                "pigsty_pg: cannot connect to PostgreSQL (socket %(host)s, port %(port)s, user "
                "%(user)s, database %(dbname)s): " % params + str(exc).strip())
    try:
        yield db
    finally:
        db.close()


def _query(db, sql, args=()):
    with db.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def _execute(db, statements, where):
    """Run the statements; each is logged without its password. A failure rolls back the
    open transaction and raises CommandExecutionError, also without the password."""
    for statement in statements:
        log.info("pigsty_pg [%s]: %s", where, pigsty_sql.redact(statement))
        try:
            with db.cursor() as cur:
                cur.execute(statement)
        except psycopg2.Error as exc:
            if not db.autocommit:
                db.rollback()
            raise CommandExecutionError("pigsty_pg [%s]: %s failed: %s" % (
                where, pigsty_sql.redact(statement), pigsty_sql.redact(str(exc).strip())))


def _apply(db, statements, where):
    """CREATE/DROP DATABASE each on its own (autocommit), the rest in one transaction."""
    db.rollback()                       # end the transaction the reads opened
    outside = [s for s in statements if pigsty_sql.outside_transaction(s)]
    inside = [s for s in statements if not pigsty_sql.outside_transaction(s)]
    if outside:
        db.autocommit = True
        _execute(db, outside, where)
        db.autocommit = False
    _execute(db, inside, where)
    db.commit()


def _is_primary(db):
    return _query(db, "SELECT NOT pg_is_in_recovery()")[0][0]


def _require_primary(db):
    if not _is_primary(db):
        raise CommandExecutionError("pigsty_pg: this instance is a replica (in recovery); "
                                    "catalog changes go to the primary")


def _spec(normalize, spec):
    try:
        return normalize(spec)
    except ValueError as exc:
        raise SaltInvocationError(str(exc))


def _result(what, changes, test):
    if not changes:
        comment = "%s is in the desired state" % what
    elif test:
        comment = "%s would be changed" % what
    else:
        comment = "%s changed" % what
    return {"changes": changes, "comment": comment}


# ------------------------------------------------------------------ catalog reads
_ROLE_QUERY = """
SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolinherit, r.rolcanlogin,
       r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolpassword,
       CASE WHEN r.rolvaliduntil IS NULL THEN NULL
            WHEN NOT isfinite(r.rolvaliduntil) THEN 'infinity'
            ELSE to_char(r.rolvaliduntil, 'YYYY-MM-DD') END,
       ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1),
       (SELECT s.setconfig FROM pg_db_role_setting s
         WHERE s.setrole = r.oid AND s.setdatabase = 0),
       shobj_description(r.oid, 'pg_authid')
  FROM pg_authid r WHERE r.rolname = %s
"""
_ROLE_KEYS = ("superuser", "createdb", "createrole", "inherit", "login", "replication",
              "bypassrls", "connlimit", "password", "valid_until", "roles", "parameters",
              "comment")


def _role_current(db, name):
    """The role as pigsty_sql.user_plan reads it (with its verifier), or None."""
    rows = _query(db, _ROLE_QUERY, (name,))
    if not rows:
        return None
    role = dict(zip(_ROLE_KEYS, rows[0]))
    role["parameters"] = pigsty_sql.role_parameters(role["parameters"])
    return role


_DB_QUERY = """
SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
       t.spcname, d.datallowconn, d.datconnlimit, shobj_description(d.oid, 'pg_database'),
       EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'),
       (SELECT s.setconfig FROM pg_db_role_setting s
         WHERE s.setdatabase = d.oid AND s.setrole = 0)
  FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace
 WHERE d.datname = %s
"""
_DB_KEYS = ("owner", "encoding", "lc_collate", "lc_ctype", "tablespace", "allowconn",
            "connlimit", "comment", "public_connect", "parameters")


def _db_current(db, name):
    """The database as pigsty_sql.database_plan reads it (its own settings: ALTER DATABASE
    SET, for every role), or None."""
    rows = _query(db, _DB_QUERY, (name,))
    if not rows:
        return None
    current = dict(zip(_DB_KEYS, rows[0]))
    current["parameters"] = pigsty_sql.role_parameters(current["parameters"])
    return current


# ------------------------------------------------------------------ baseline SQL files
def _baseline_text(name, where):
    """The text of a baseline file, fetched from the master's file server; an error naming
    its salt:// address when it is not there (before the database is created)."""
    url = pigsty_baseline.source(name)
    path = __salt__["cp.cache_file"](url, __opts__.get("saltenv") or "base")
    if not path:
        raise CommandExecutionError(
            "pigsty_pg [%s]: baseline %s: %s is not on the master's file server (put the file "
            "in the state tree's %s/); nothing was created" % (
                where, name, url, pigsty_baseline.DIRECTORY))
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandExecutionError("pigsty_pg [%s]: baseline %s: cannot read %s: %s; nothing "
                                    "was created" % (where, name, url, exc))


def _run_baseline(conn, dbname, name, text, where):
    """Run the baseline in the new database as the dbsu with psql (stop at the first error,
    one transaction): psql reads it from standard input."""
    params = _params(conn, dbname)
    cmd = pigsty_baseline.psql_command("psql", params["host"], params["port"], params["user"],
                                       dbname)
    log.info("pigsty_pg [%s]: running baseline %s", where, name)
    res = __salt__["cmd.run_all"](cmd, runas=params["user"], stdin=text, python_shell=False,
                                  cwd="/", timeout=BASELINE_TIMEOUT)
    if res.get("retcode") != 0:
        raise CommandExecutionError(
            "pigsty_pg [%s]: the database was created but its baseline %s failed and was rolled "
            "back (a baseline runs only right after the database is created: drop the database "
            "to have it run again, or run the file by hand): %s" % (
                where, name, (res.get("stderr") or res.get("stdout") or "").strip()))


def _db_contents(db):
    """(schema names, {extension: schema}) of the connected database."""
    schemas = [r[0] for r in _query(db, "SELECT nspname FROM pg_namespace")]
    extensions = dict(_query(db, "SELECT e.extname, n.nspname FROM pg_extension e "
                                 "JOIN pg_namespace n ON n.oid = e.extnamespace"))
    return schemas, extensions


def _default_acl(db, owner):
    """(grantee, kind, privilege) default privileges that ``owner`` gives in every schema."""
    rows = _query(db, """
        SELECT d.defaclobjtype::text, a.privilege_type,
               CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END
          FROM pg_default_acl d, aclexplode(d.defaclacl) a
         WHERE d.defaclnamespace = 0 AND d.defaclrole = (
               SELECT oid FROM pg_roles WHERE rolname = %s)""", (owner,))
    return {(grantee, pigsty_sql.DEFAULT_ACL_KINDS.get(kind, kind), priv)
            for kind, priv, grantee in rows}


# ------------------------------------------------------------------ public functions
def is_primary(**kwargs):
    """True on the primary, False on a replica (in recovery).

    CLI example::

        salt-call pigsty_pg.is_primary
    """
    conn, rest = _split(kwargs)
    _no_extra("is_primary", rest)
    with _connect(conn) as db:
        return _is_primary(db)


def read(sql, args=None, **kwargs):
    """The rows (lists) of one query run in a READ ONLY transaction, so it cannot change
    anything; ``args``: its %s parameters. For reports (pigsty_patrol.facts): cast values in
    the SQL to what Salt's returns carry (int, float, text).

    CLI example::

        salt-call pigsty_pg.read 'SELECT datname::text FROM pg_database' dbname=postgres
    """
    conn, rest = _split(kwargs)
    _no_extra("read", rest)
    with _connect(conn) as db:
        db.set_session(readonly=True)
        try:
            return [list(row) for row in _query(db, sql, args if args is not None else None)]
        except psycopg2.Error as exc:
            raise CommandExecutionError("pigsty_pg: read failed in database %s: %s" % (
                _params(conn)["dbname"], str(exc).strip()))


def role_info(name, **kwargs):
    """The role's attributes, memberships, parameters and comment, with ``has_password``
    instead of the verifier; None when the role does not exist.

    CLI example::

        salt-call pigsty_pg.role_info dbuser_meta
    """
    conn, rest = _split(kwargs)
    _no_extra("role_info", rest)
    with _connect(conn) as db:
        role = _role_current(db, name)
    if role is not None:
        role["has_password"] = role.pop("password") is not None
    return role


def user_ensure(name, test=False, **kwargs):
    """Create or alter the role to match a Pigsty user spec (fields as keyword arguments:
    password, login, superuser, createdb, createrole, inherit, replication, bypassrls,
    connlimit, expire_in/expire_at, roles, parameters, comment, pgbouncer, state).
    Returns ``{"changes": ..., "comment": ...}``; with ``test=True`` nothing is changed.

    CLI example::

        salt-call pigsty_pg.user_ensure dbuser_meta password=... roles='[dbrole_admin]'
    """
    conn, spec = _split(kwargs)
    desired = _spec(pigsty_sql.normalize_user, dict(spec, name=name))
    with _connect(conn) as db:
        _require_primary(db)
        changes, statements = pigsty_sql.user_plan(desired, _role_current(db, name))
        if statements and not test:
            _apply(db, statements, "user %s" % name)
    return _result("user %s" % name, changes, test)


def user_remove(name, test=False, **kwargs):
    """Drop the role if it exists (PostgreSQL refuses while it owns objects).

    CLI example::

        salt-call pigsty_pg.user_remove dbuser_old
    """
    conn, rest = _split(kwargs)
    _no_extra("user_remove", rest)
    return user_ensure(name, test=test, state="absent", **conn)


def db_info(name, **kwargs):
    """The database's owner, encoding, locale, tablespace, allowconn, connlimit, comment,
    public_connect, schemas and extensions; None when it does not exist.

    CLI example::

        salt-call pigsty_pg.db_info meta
    """
    conn, rest = _split(kwargs)
    _no_extra("db_info", rest)
    with _connect(conn) as db:
        info = _db_current(db, name)
    if info is not None and info["allowconn"]:
        with _connect(conn, name) as db:
            schemas, extensions = _db_contents(db)
        info.update(schemas=sorted(schemas), extensions=extensions)
    return info


def db_ensure(name, test=False, **kwargs):
    """Create or alter the database to match a Pigsty database spec (owner, template,
    encoding, locale, lc_collate, lc_ctype, tablespace, allowconn, revokeconn, connlimit,
    comment, parameters, schemas, extensions, baseline, pgbouncer, state), then create its
    missing schemas and extensions inside it. A ``baseline`` (a file of the state tree's
    pgsql/files/baseline/, pigsty_baseline) is fetched before the database is created and
    run right after, never on a database that already exists. Returns
    ``{"changes": ..., "comment": ...}``.

    CLI example::

        salt-call pigsty_pg.db_ensure meta owner=dbuser_meta extensions='[pgcrypto]'
    """
    conn, spec = _split(kwargs)
    desired = _spec(pigsty_sql.normalize_database, dict(spec, name=name))
    where = "database %s" % name
    baseline = None
    with _connect(conn) as db:
        _require_primary(db)
        current = _db_current(db, name)
        try:
            changes, statements = pigsty_sql.database_plan(desired, current)
        except ValueError as exc:
            raise CommandExecutionError(str(exc))
        if current is None and desired["state"] == "present" and desired["baseline"]:
            baseline = _baseline_text(desired["baseline"], where)   # before CREATE DATABASE
        if statements and not test:
            _apply(db, statements, where)
    if desired["state"] == "present" and (desired["schemas"] or desired["extensions"]):
        if test and not (current or {}).get("allowconn"):    # not there / not open yet
            inner_changes = pigsty_sql.database_inner_plan(desired, [], {})[0]
        else:
            with _connect(conn, name) as db:
                inner_changes, inner = pigsty_sql.database_inner_plan(desired, *_db_contents(db))
                if inner and not test:
                    _apply(db, inner, where)
        changes.update(inner_changes)
    if baseline is not None:            # a new database only: never on one that exists
        if not test:
            _run_baseline(conn, name, desired["baseline"], baseline, where)
        changes["baseline"] = "%s %s" % (desired["baseline"], "would run" if test else "ran")
    return _result(where, changes, test)


def default_roles_ensure(test=False, admin_user=None, privileges=None, **kwargs):
    """Pigsty's default roles (dbrole_readonly, dbrole_offline, dbrole_readwrite,
    dbrole_admin) and their default privileges on what the superuser (the connecting user)
    and ``admin_user`` create, in template1 (inherited by new databases) and postgres.
    ``privileges``: Pigsty's pg_default_privileges lines ("GRANT SELECT ON TABLES TO
    dbrole_readonly", ...); ours by default. Missing ones are granted, none revoked.

    CLI example::

        salt-call pigsty_pg.default_roles_ensure admin_user=dbuser_dba
    """
    conn, rest = _split(kwargs)
    _no_extra("default_roles_ensure", rest)
    wanted = None if privileges is None else _spec(pigsty_sql.parse_default_privileges, privileges)
    owners = [conn.get("user") or _local()["pg_dbsu"]] + ([admin_user] if admin_user else [])
    changes = {}
    with _connect(conn) as db:
        _require_primary(db)
        statements = []
        for spec in pigsty_sql.DEFAULT_ROLES:
            desired = pigsty_sql.normalize_user(spec)
            role_changes, role_statements = pigsty_sql.user_plan(
                desired, _role_current(db, desired["name"]))
            if role_changes:
                changes.setdefault("roles", {})[desired["name"]] = role_changes
            statements += role_statements
        if statements and not test:
            _apply(db, statements, "default roles")
    for dbname in DEFAULT_PRIVILEGE_DATABASES:
        with _connect(conn, dbname) as db:
            statements = [statement for owner in owners
                          for statement in pigsty_sql.default_privileges_sql(
                              owner, _default_acl(db, owner), wanted)]
            if statements:
                changes.setdefault("default_privileges", {})[dbname] = statements
            if statements and not test:
                _apply(db, statements, "default privileges in %s" % dbname)
    return _result("default roles", changes, test)


# ------------------------------------------------------------------ pgbouncer's userlist
def _stored_verifiers(conn, names):
    """({name: rolpassword or None}, in recovery?) from the local pg_authid, or (None, None)
    when Postgres does not answer (not running yet, restarting)."""
    try:
        with _connect(conn) as db:
            rows = _query(db, "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
                          (list(names),))
            return dict(rows), not _is_primary(db)
    except CommandExecutionError as exc:
        log.info("pigsty_pg: pgbouncer userlist without the local Postgres (%s)",
                 pigsty_sql.redact(str(exc)).splitlines()[0])
        return None, None


def _userlist_on_disk(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return pigsty_sql.parse_userlist(fh.read())
    except (OSError, UnicodeDecodeError):
        return {}


def pgbouncer_userlist(users=None, path=USERLIST_PATH, wait=10, **kwargs):
    """The lines of pgbouncer's auth_file (userlist.txt): the dbsu (peer authentication
    only) and one SCRAM verifier per user that logs in through pgbouncer.

    For each user the verifier is, in this order: the one the local Postgres stores
    (pg_authid) when the pillar password reproduces it, so SCRAM pass-through works (it
    needs the same salt and keys on both sides); else the one already in ``path`` when it
    still matches (Postgres not answering: nothing changes); else a new one with a random
    salt. A hash given in pillar is written as it is. On a replica whose pg_authid does not
    match yet (the primary is changing the password in the same run), it waits up to
    ``wait`` seconds for replication (never in test mode). ``users``: [[name, password],
    ...]; default: this instance's users from pillar (pigsty.config).

    The result holds verifiers (secrets, like the file): the pgsql.pgbouncer state renders
    it into a file written with show_changes False.

    CLI example::

        salt-call pigsty_pg.pgbouncer_userlist
    """
    conn, rest = _split(kwargs)
    _no_extra("pgbouncer_userlist", rest)
    conn.setdefault("connect_wait", 2)
    conf = __salt__["pigsty.config"]() if users is None else None
    if users is None:
        if conf is None:
            raise CommandExecutionError("pigsty_pg: this minion hosts no Postgres instance in "
                                        "the pillar inventory (no pgbouncer users)")
        users = pigsty_pgsql.pgbouncer_users(conf)
    users = [(name, password) for name, password in users]
    dbsu = conf["pg_dbsu"] if conf else _local()["pg_dbsu"]
    deadline = time.monotonic() + float(wait)
    while True:
        stored, replica = _stored_verifiers(conn, [name for name, _pw in users])
        behind = [name for name, password in users if stored is not None
                  and not pigsty_sql.password_matches(stored.get(name), password)]
        left = deadline - time.monotonic()
        if not behind or not replica or __opts__.get("test") or left <= 0:
            break
        time.sleep(min(0.5, left))
    if behind:
        log.info("pigsty_pg: pgbouncer userlist: the local Postgres%s holds no matching "
                 "verifier for %s (a new or kept one is used; re-apply once Postgres has it)",
                 " (a replica)" if replica else "", ", ".join(behind))
    on_disk = _userlist_on_disk(path)
    lines = [pigsty_sql.userlist_line(dbsu, "")]
    for name, password in users:
        keep = [(stored or {}).get(name), on_disk.get(name)]
        lines.append(pigsty_sql.userlist_line(name, pigsty_sql.password_hash(name, password, keep)))
    return lines
