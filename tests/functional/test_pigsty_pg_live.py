"""The pigsty_pg execution and state modules against a real PostgreSQL 15 (see conftest)."""
import base64
import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import psycopg2
import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

import pigsty_sql
from loader import load_module

HOSTILE_PASSWORD = "pa'ss\"w;rd\\"


def _name(prefix):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:8])


def _can_login(pg, user, password, dbname="postgres"):
    try:
        pg.connect(dbname, user=user, password=password).close()
        return True
    except psycopg2.OperationalError:
        return False


def test_virtual_and_primary(pg, pg_mod):
    assert pg_mod.__virtual__() == "pigsty_pg"
    assert pg_mod.is_primary(**pg.conn) is True


def test_connection_failure_is_a_clear_error(pg, pg_mod):
    with pytest.raises(CommandExecutionError) as err:
        pg_mod.is_primary(host=pg.host, port=1, connect_wait=0)
    assert "cannot connect to PostgreSQL" in str(err.value)


@pytest.mark.parametrize("conforming", ["on", "off"])
def test_quoting_round_trips_through_postgresql(pg, conforming):
    hostile = ["pa'ss\"w;rd\\", "'; DROP ROLE postgres; --", "\\'", "x\"y'z\\w", "new\nline"]
    db = pg.connect()
    try:
        with db.cursor() as cur:
            cur.execute("SET standard_conforming_strings = " + conforming)
            for text in hostile:
                cur.execute("SELECT %s AS %s" % (pigsty_sql.quote_literal(text),
                                                 pigsty_sql.quote_ident(text)))
                assert cur.fetchone()[0] == text
                assert cur.description[0].name == text
    finally:
        db.close()


@pytest.mark.parametrize("password", [HOSTILE_PASSWORD, "I\u00adX", "\u2168", "a\u00a0b\u00e9",
                                      "\u00e9\x07"])
def test_scram_verifier_equals_what_postgresql_computes(pg, password):
    role = _name("scram")
    pg.query("CREATE ROLE %s LOGIN PASSWORD %%s" % role, (password,))
    stored = pg.query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))[0][0]
    salt = base64.b64decode(pigsty_sql.SCRAM_RE.match(stored).group(2))
    assert pigsty_sql.scram_verifier(role, password, 4096, salt) == stored
    pg.query("DROP ROLE %s" % role)


def test_user_lifecycle(pg, pg_mod):
    user = _name("dbuser")
    spec = {"password": HOSTILE_PASSWORD, "roles": ["pg_monitor", "pg_read_all_data"],
            "parameters": {"work_mem": "64MB", "search_path": ["$user", "public"]},
            "comment": "it's \"hostile\"; ok", "connlimit": 7, "expire_at": "2099-12-31"}
    # test mode: reports, changes nothing
    planned = pg_mod.user_ensure(user, test=True, **pg.conn, **spec)
    assert planned["changes"]["role"] == "created" and "would be changed" in planned["comment"]
    assert pg_mod.role_info(user, **pg.conn) is None
    # create; log in by SCRAM with the hostile password
    done = pg_mod.user_ensure(user, **pg.conn, **spec)
    assert done["changes"]["password"] == "changed"
    assert HOSTILE_PASSWORD not in repr(done)
    assert _can_login(pg, user, HOSTILE_PASSWORD)
    assert not _can_login(pg, user, "wrong")
    info = pg_mod.role_info(user, **pg.conn)
    assert "password" not in info and info["has_password"] is True
    assert info["roles"] == ["pg_monitor", "pg_read_all_data"]
    assert info["parameters"] == {"work_mem": "64MB", "search_path": '"$user", public'}
    assert info["comment"] == "it's \"hostile\"; ok"
    assert info["connlimit"] == 7 and info["valid_until"] == "2099-12-31"
    assert info["login"] is True and info["superuser"] is False
    # idempotent
    again = pg_mod.user_ensure(user, **pg.conn, **spec)
    assert again == {"changes": {}, "comment": "user %s is in the desired state" % user}
    # change the password and the rest
    changed = dict(spec, password="n3w'pass", roles=["pg_monitor"], parameters={"work_mem": "1MB"},
                   comment="plain", connlimit=-1)
    planned = pg_mod.user_ensure(user, test=True, **pg.conn, **changed)
    assert planned["changes"]["password"] == "changed"
    assert _can_login(pg, user, HOSTILE_PASSWORD)                    # test mode: untouched
    done = pg_mod.user_ensure(user, **pg.conn, **changed)
    assert done["changes"] == {
        "password": "changed", "connlimit": {"old": 7, "new": -1},
        "roles": {"revoked": ["pg_read_all_data"]},
        "parameters": {"set": {"work_mem": "1MB"}, "reset": ["search_path"]},
        "comment": {"old": "it's \"hostile\"; ok", "new": "plain"}}
    assert _can_login(pg, user, "n3w'pass") and not _can_login(pg, user, HOSTILE_PASSWORD)
    assert pg_mod.user_ensure(user, **pg.conn, password="n3w'pass")["changes"] == {}
    # only the password changes
    assert pg_mod.user_ensure(user, **pg.conn, password="third")["changes"] == \
        {"password": "changed"}
    # remove
    assert pg_mod.user_remove(user, test=True, **pg.conn)["changes"] == {"role": "dropped"}
    assert pg_mod.role_info(user, **pg.conn) is not None
    assert pg_mod.user_remove(user, **pg.conn)["changes"] == {"role": "dropped"}
    assert pg_mod.role_info(user, **pg.conn) is None
    assert pg_mod.user_remove(user, **pg.conn)["changes"] == {}


def test_statements_are_logged_without_password(pg, pg_mod, caplog):
    user = _name("dbuser")
    caplog.set_level(logging.INFO)
    pg_mod.user_ensure(user, **pg.conn, password=HOSTILE_PASSWORD, comment="logged")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert 'CREATE ROLE "%s"' % user in logged and "PASSWORD '***'" in logged
    assert "COMMENT ON ROLE" in logged
    assert HOSTILE_PASSWORD not in logged and "SCRAM-SHA-256$" not in logged
    pg_mod.user_remove(user, **pg.conn)


def _stored(pg, user):
    return pg.query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,))[0][0]


def test_password_set_elsewhere_is_kept_when_it_verifies(pg, pg_mod):
    """PostgreSQL's own verifier (random salt) for the pillar password is left alone."""
    user = _name("dbuser")
    pg.query("CREATE ROLE %s LOGIN PASSWORD 'psql-set'" % user)
    stored = _stored(pg, user)
    assert pg_mod.user_ensure(user, **pg.conn, password="psql-set")["changes"] == {}
    assert _stored(pg, user) == stored and _can_login(pg, user, "psql-set")
    assert pg_mod.user_ensure(user, **pg.conn, password="other")["changes"] == \
        {"password": "changed"}
    assert _can_login(pg, user, "other") and not _can_login(pg, user, "psql-set")
    pg.query("DROP ROLE %s" % user)


def test_reapply_is_a_no_op_and_a_change_is_applied(pg, pg_mod):
    user = _name("dbuser")
    created = pg_mod.user_ensure(user, **pg.conn, password=HOSTILE_PASSWORD)["changes"]
    assert created["role"] == "created" and created["password"] == "changed"
    first = _stored(pg, user)
    for _ in range(3):
        assert pg_mod.user_ensure(user, **pg.conn, password=HOSTILE_PASSWORD)["changes"] == {}
    assert _stored(pg, user) == first                        # the random salt stays
    planned = pg_mod.user_ensure(user, test=True, **pg.conn, password="changed pw")
    assert planned["changes"] == {"password": "changed"} and _stored(pg, user) == first
    assert pg_mod.user_ensure(user, **pg.conn, password="changed pw")["changes"] == \
        {"password": "changed"}
    assert _stored(pg, user) != first
    assert _can_login(pg, user, "changed pw") and not _can_login(pg, user, HOSTILE_PASSWORD)
    pg_mod.user_remove(user, **pg.conn)


def test_same_password_gives_different_verifiers(pg, pg_mod):
    users = [_name("dbuser") for _ in range(2)]
    for user in users:
        pg_mod.user_ensure(user, **pg.conn, password=HOSTILE_PASSWORD)
    one, two = (_stored(pg, user) for user in users)
    assert one != two
    assert pigsty_sql.SCRAM_RE.match(one).group(2) != pigsty_sql.SCRAM_RE.match(two).group(2)
    assert all(_can_login(pg, user, HOSTILE_PASSWORD) for user in users)
    for user in users:
        pg_mod.user_remove(user, **pg.conn)


def test_weak_verifier_is_replaced(pg, pg_mod):
    user = _name("dbuser")
    weak = pigsty_sql.scram_verifier(user, "pw", 1024)
    pg.query("CREATE ROLE %s LOGIN PASSWORD %%s" % user, (weak,))
    assert _can_login(pg, user, "pw")
    assert pg_mod.user_ensure(user, **pg.conn, password="pw")["changes"] == {"password": "changed"}
    assert _stored(pg, user).startswith("SCRAM-SHA-256$4096:") and _can_login(pg, user, "pw")
    pg.query("DROP ROLE %s" % user)


def test_md5_hash_is_stored_as_given(pg, pg_mod):
    user = _name("dbuser")
    md5 = "md5" + hashlib.md5(("secret" + user).encode()).hexdigest()
    assert pg_mod.user_ensure(user, **pg.conn, password=md5)["changes"]["password"] == "changed"
    stored = pg.query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,))[0][0]
    assert stored == md5
    assert pg_mod.user_ensure(user, **pg.conn, password=md5)["changes"] == {}
    assert not _can_login(pg, user, "secret")    # an md5 hash cannot pass scram-sha-256 auth
    pg_mod.user_remove(user, **pg.conn)


def test_bad_spec_is_refused_without_password_or_change(pg, pg_mod):
    user = _name("dbuser")
    with pytest.raises(SaltInvocationError) as err:
        pg_mod.user_ensure(user, **pg.conn, password=HOSTILE_PASSWORD, connlimit="many",
                           colour="red")
    message = str(err.value)
    assert "connlimit: expected" in message and "colour: unknown field" in message
    assert HOSTILE_PASSWORD not in message
    assert pg_mod.role_info(user, **pg.conn) is None


def test_changes_are_refused_on_a_replica(pg, pg_mod, monkeypatch):
    monkeypatch.setattr(pg_mod, "_is_primary", lambda db: False)
    for call in (lambda: pg_mod.user_ensure(_name("u"), **pg.conn),
                 lambda: pg_mod.db_ensure(_name("d"), **pg.conn),
                 lambda: pg_mod.default_roles_ensure(**pg.conn)):
        with pytest.raises(CommandExecutionError) as err:
            call()
        assert "catalog changes go to the primary" in str(err.value)


def test_failed_statement_rolls_back_and_hides_password(pg, pg_mod):
    user = _name("dbuser")
    with pytest.raises(CommandExecutionError) as err:     # the member role does not exist
        pg_mod.user_ensure(user, **pg.conn, password=HOSTILE_PASSWORD, roles=["no_such_role"])
    assert "no_such_role" in str(err.value)
    assert HOSTILE_PASSWORD not in str(err.value) and "SCRAM-SHA-256$" not in str(err.value)
    assert pg_mod.role_info(user, **pg.conn) is None       # CREATE ROLE rolled back too


def test_database_lifecycle(pg, pg_mod):
    owner, other, dbname = _name("dbuser"), _name("dbuser"), _name("db")
    pg_mod.user_ensure(owner, **pg.conn, password="owner-pw")
    pg_mod.user_ensure(other, **pg.conn, password="other-pw")
    spec = {"owner": owner, "template": "template0", "encoding": "UTF8", "locale": "C.UTF-8",
            "comment": "it's a test db", "revokeconn": True, "connlimit": 20,
            "schemas": ["app", "audit"],
            "extensions": ["pgcrypto", {"name": "pg_stat_statements", "schema": "audit"}]}
    planned = pg_mod.db_ensure(dbname, test=True, **pg.conn, **spec)
    assert planned["changes"]["database"] == "created"
    assert planned["changes"]["schemas"] == {"created": ["app", "audit"]}
    assert pg_mod.db_info(dbname, **pg.conn) is None
    done = pg_mod.db_ensure(dbname, **pg.conn, **spec)
    assert done["changes"]["extensions"] == {"created": ["pgcrypto", "pg_stat_statements"]}
    info = pg_mod.db_info(dbname, **pg.conn)
    assert info["owner"] == owner and info["encoding"] == "UTF8"
    assert info["comment"] == "it's a test db" and info["connlimit"] == 20
    assert info["public_connect"] is False
    assert {"app", "audit", "public"} <= set(info["schemas"])
    assert info["extensions"]["pgcrypto"] == "public"
    assert info["extensions"]["pg_stat_statements"] == "audit"
    owners = dict(pg.query("SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace",
                           dbname=dbname))
    assert owners["app"] == owner and owners["audit"] == owner
    assert _can_login(pg, owner, "owner-pw", dbname)
    assert not _can_login(pg, other, "other-pw", dbname)           # revokeconn
    # idempotent
    assert pg_mod.db_ensure(dbname, **pg.conn, **spec)["changes"] == {}
    # alter what can be altered
    changed = dict(spec, owner=other, comment="", connlimit=-1, revokeconn=False)
    done = pg_mod.db_ensure(dbname, **pg.conn, **changed)
    assert done["changes"] == {"owner": {"old": owner, "new": other},
                               "connlimit": {"old": 20, "new": -1},
                               "comment": {"old": "it's a test db", "new": ""},
                               "revokeconn": {"old": True, "new": False}}
    assert _can_login(pg, other, "other-pw", dbname)
    assert pg_mod.db_ensure(dbname, **pg.conn, **changed)["changes"] == {}
    # what is fixed at creation is refused
    with pytest.raises(CommandExecutionError) as err:
        pg_mod.db_ensure(dbname, **pg.conn, **dict(changed, encoding="SQL_ASCII"))
    assert "encoding is 'UTF8' (asked: 'SQL_ASCII')" in str(err.value)
    # drop, while a session is connected to it (pgbouncer's pools would be)
    held = pg.connect(dbname)
    assert pg_mod.db_ensure(dbname, **pg.conn, state="absent")["changes"] == \
        {"database": "dropped"}
    held.close()
    assert pg_mod.db_info(dbname, **pg.conn) is None
    for user in (owner, other):
        pg_mod.user_remove(user, **pg.conn)


def test_default_roles_and_privileges(pg, pg_mod):
    admin, dbname = _name("dbuser_dba"), _name("db")
    pg_mod.user_ensure(admin, **pg.conn, password="dba-pw", superuser=True)
    planned = pg_mod.default_roles_ensure(test=True, admin_user=admin, **pg.conn)
    for where in ("template1", "postgres"):
        statements = planned["changes"]["default_privileges"][where]
        assert len([s for s in statements if '"%s"' % admin in s]) == 17
    assert pg.query("SELECT count(*) FROM pg_default_acl WHERE defaclrole = %s::regrole",
                    (admin,))[0][0] == 0                           # test mode: untouched
    done = pg_mod.default_roles_ensure(admin_user=admin, **pg.conn)
    assert set(done["changes"]["default_privileges"]) <= {"template1", "postgres"}
    assert pg_mod.default_roles_ensure(admin_user=admin, **pg.conn)["changes"] == {}
    assert pg_mod.role_info("dbrole_admin", **pg.conn)["roles"] == \
        ["dbrole_readwrite", "pg_monitor"]
    assert pg_mod.role_info("dbrole_readwrite", **pg.conn)["login"] is False
    # a database created afterwards inherits the defaults from template1
    pg_mod.db_ensure(dbname, **pg.conn)
    pg.query("CREATE TABLE t (id int); CREATE SEQUENCE s", dbname=dbname)
    checks = pg.query("""SELECT has_table_privilege('dbrole_readonly', 't', 'SELECT'),
                                has_table_privilege('dbrole_readonly', 't', 'INSERT'),
                                has_table_privilege('dbrole_readwrite', 't', 'DELETE'),
                                has_table_privilege('dbrole_admin', 't', 'TRUNCATE'),
                                has_sequence_privilege('dbrole_readwrite', 's', 'UPDATE')""",
                      dbname=dbname)[0]
    assert checks == (True, False, True, True, True)
    pg_mod.db_ensure(dbname, **pg.conn, state="absent")


def test_default_privileges_from_pillar_lines(pg, pg_mod):
    """pg_default_privileges (Pigsty's lines): the missing ones are granted on what the admin
    user creates; a bad line is refused before anything changes."""
    admin = _name("dbuser_dba")
    pg_mod.user_ensure(admin, **pg.conn, password="dba-pw", superuser=True)
    lines = ["GRANT USAGE ON TYPES TO dbrole_readonly", "GRANT SELECT, UPDATE ON SEQUENCES TO dbrole_offline"]
    with pytest.raises(SaltInvocationError):
        pg_mod.default_roles_ensure(admin_user=admin, privileges=["GRANT ALL ON TABLES TO x"], **pg.conn)
    done = pg_mod.default_roles_ensure(admin_user=admin, privileges=lines, **pg.conn)
    assert any("GRANT USAGE ON TYPES" in st for st in done["changes"]["default_privileges"]["template1"])
    acl = pg.query("""SELECT d.defaclobjtype::text, a.privilege_type, pg_get_userbyid(a.grantee)
                        FROM pg_default_acl d, aclexplode(d.defaclacl) a
                       WHERE d.defaclrole = %s::regrole""", (admin,), dbname="template1")
    assert ("T", "USAGE", "dbrole_readonly") in acl and ("S", "UPDATE", "dbrole_offline") in acl
    assert pg_mod.default_roles_ensure(admin_user=admin, privileges=lines, **pg.conn)["changes"] == {}
    for db in ("template1", "postgres"):
        pg.query("DROP OWNED BY %s" % admin, dbname=db)
    pg_mod.user_remove(admin, **pg.conn)


# ------------------------------------------------------------------ state module
def test_state_user_present_test_mode_then_apply(pg, pg_state, pg_mod):
    user = _name("dbuser")
    pg_state.__opts__["test"] = True
    ret = pg_state.user_present(user, password=HOSTILE_PASSWORD, roles=["pg_monitor"])
    assert ret["name"] == user and ret["result"] is None
    assert ret["changes"]["role"] == "created" and ret["changes"]["password"] == "changed"
    assert pg_mod.role_info(user, **pg.conn) is None
    pg_state.__opts__["test"] = False
    ret = pg_state.user_present(user, password=HOSTILE_PASSWORD, roles=["pg_monitor"])
    assert ret["result"] is True and ret["changes"]["role"] == "created"
    assert HOSTILE_PASSWORD not in repr(ret)
    ret = pg_state.user_present(user, password=HOSTILE_PASSWORD, roles=["pg_monitor"])
    assert ret == {"name": user, "changes": {}, "result": True,
                   "comment": "user %s is in the desired state" % user}
    pg_state.__opts__["test"] = True
    assert pg_state.user_present(user, password=HOSTILE_PASSWORD,
                                 roles=["pg_monitor"])["result"] is True
    assert pg_state.user_absent(user)["result"] is None
    pg_state.__opts__["test"] = False
    assert pg_state.user_absent(user)["changes"] == {"role": "dropped"}
    assert pg_state.user_absent(user)["changes"] == {}


def test_state_bad_input_fails_without_change(pg, pg_state, pg_mod):
    user = _name("dbuser")
    ret = pg_state.user_present(user, password=HOSTILE_PASSWORD, expire_in=1,
                                expire_at="2030-01-01")
    assert ret["result"] is False and ret["changes"] == {}
    assert "expire_in: conflicts with expire_at" in ret["comment"]
    assert HOSTILE_PASSWORD not in ret["comment"]
    assert pg_mod.role_info(user, **pg.conn) is None
    ret = pg_state.database_present(_name("db"), owner="No-Such")
    assert ret["result"] is False and "owner: expected a safe identifier" in ret["comment"]


def test_state_database_and_default_roles(pg, pg_state, pg_mod):
    dbname = _name("db")
    pg_state.__opts__["test"] = True
    ret = pg_state.database_present(dbname, schemas=["app"], extensions=["pgcrypto"])
    assert ret["result"] is None and ret["changes"]["database"] == "created"
    assert pg_mod.db_info(dbname, **pg.conn) is None
    pg_state.__opts__["test"] = False
    ret = pg_state.database_present(dbname, schemas=["app"], extensions=["pgcrypto"])
    assert ret["result"] is True and ret["changes"]["extensions"] == {"created": ["pgcrypto"]}
    assert pg_state.database_present(dbname, schemas=["app"],
                                     extensions=["pgcrypto"])["changes"] == {}
    pg_mod.db_ensure(dbname, **pg.conn, state="absent")
    pg_state.default_roles_present("pigsty-default-roles")
    ret = pg_state.default_roles_present("pigsty-default-roles")
    assert ret["result"] is True and ret["changes"] == {}


# ------------------------------------------------------------------ database parameters, baseline
def _run_all(cmd, runas=None, stdin=None, python_shell=False, cwd=None, timeout=None):
    """cmd.run_all as Salt runs it with ``runas`` (runuser here), the list as argv."""
    assert python_shell is False and isinstance(cmd, list)
    proc = subprocess.run(["runuser", "-u", runas, "--"] + cmd, input=stdin, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return {"retcode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.fixture()
def baseline_mod(tmp_path):
    """pigsty_pg with a file server that holds tmp_path/pgsql/files/baseline/ and psql run
    as the dbsu; ``calls`` records every psql run."""
    calls = []

    def cache_file(url, saltenv="base"):
        assert url.startswith("salt://") and saltenv == "base"
        path = tmp_path / url[len("salt://"):]
        return str(path) if path.is_file() else False

    def run_all(cmd, **kwargs):
        calls.append(cmd)
        return _run_all(cmd, **kwargs)
    mod = load_module("_modules/pigsty_pg.py", salt={
        "config.option": lambda key, default=None: default, "cp.cache_file": cache_file,
        "cmd.run_all": run_all}, opts={"test": False})
    (tmp_path / "pgsql" / "files" / "baseline").mkdir(parents=True)
    return mod, tmp_path / "pgsql" / "files" / "baseline", calls


def test_database_parameters_are_set_reset_and_idempotent(pg, pg_mod):
    dbname = _name("db")
    spec = {"parameters": {"work_mem": "8MB", "search_path": ["app", "public"],
                           "TimeZone": "UTC"}}
    planned = pg_mod.db_ensure(dbname, test=True, **pg.conn, **spec)
    assert planned["changes"]["parameters"] == {"set": {"search_path": ["app", "public"],
                                                        "timezone": "UTC", "work_mem": "8MB"}}
    done = pg_mod.db_ensure(dbname, **pg.conn, **spec)
    assert done["changes"]["database"] == "created" and "parameters" in done["changes"]
    assert pg_mod.db_info(dbname, **pg.conn)["parameters"] == {     # PostgreSQL's spelling
        "work_mem": "8MB", "search_path": "app, public", "TimeZone": "UTC"}
    # a new session in the database gets them
    assert pg.query("SHOW work_mem", dbname=dbname) == [("8MB",)]
    assert pg.query("SHOW search_path", dbname=dbname) == [("app, public",)]
    assert pg_mod.db_ensure(dbname, **pg.conn, **spec)["changes"] == {}       # idempotent
    # a key removed from pillar is reset; a changed value is set
    changed = {"parameters": {"work_mem": "16MB", "search_path": ["app", "public"]}}
    done = pg_mod.db_ensure(dbname, **pg.conn, **changed)
    assert done["changes"] == {"parameters": {"set": {"work_mem": "16MB"}, "reset": ["timezone"]}}
    assert pg_mod.db_info(dbname, **pg.conn)["parameters"] == {"work_mem": "16MB",
                                                                "search_path": "app, public"}
    assert pg_mod.db_ensure(dbname, **pg.conn, **changed)["changes"] == {}
    # without parameters in the spec they are not managed: a setting made by hand stays
    pg.query('ALTER DATABASE "%s" SET jit = off' % dbname)
    assert pg_mod.db_ensure(dbname, **pg.conn)["changes"] == {}
    # a role's own setting in that database is none of the database's
    pg.query('ALTER ROLE postgres IN DATABASE "%s" SET work_mem = \'1MB\'' % dbname)
    assert pg_mod.db_ensure(dbname, **pg.conn, parameters={})["changes"] == {
        "parameters": {"reset": ["jit", "search_path", "work_mem"]}}
    assert pg_mod.db_info(dbname, **pg.conn)["parameters"] == {}
    pg.query('ALTER ROLE postgres IN DATABASE "%s" RESET ALL' % dbname)
    pg_mod.db_ensure(dbname, **pg.conn, state="absent")


def test_baseline_runs_once_right_after_the_database_is_created(pg, baseline_mod):
    mod, files, calls = baseline_mod
    (files / "app.sql").write_text(
        "CREATE TABLE app.config (key text PRIMARY KEY, value text);\n"
        "INSERT INTO app.config VALUES ('created by', current_user), ('in', current_database());\n")
    dbname = _name("db")
    spec = {"schemas": ["app"], "baseline": "app.sql"}
    planned = mod.db_ensure(dbname, test=True, **pg.conn, **spec)
    assert planned["changes"]["baseline"] == "app.sql would run" and calls == []
    done = mod.db_ensure(dbname, **pg.conn, **spec)
    assert done["changes"]["baseline"] == "app.sql ran" and len(calls) == 1
    assert "ON_ERROR_STOP=1" in calls[0] and calls[0][calls[0].index("-d") + 1] == dbname
    # after the schemas (the file uses app), as the dbsu, in the new database
    assert dict(pg.query("SELECT key, value FROM app.config", dbname=dbname)) == {
        "created by": "postgres", "in": dbname}
    # never again: the database exists (even when the file changes)
    (files / "app.sql").write_text("DROP TABLE app.config;\n")
    assert mod.db_ensure(dbname, **pg.conn, **spec)["changes"] == {}
    assert mod.db_ensure(dbname, test=True, **pg.conn, **spec)["changes"] == {}
    assert len(calls) == 1
    assert pg.query("SELECT count(*) FROM app.config", dbname=dbname) == [(2,)]
    mod.db_ensure(dbname, **pg.conn, state="absent")


def test_a_missing_baseline_fails_before_the_database_is_created(pg, baseline_mod):
    mod, _files, calls = baseline_mod
    dbname = _name("db")
    for test in (True, False):
        with pytest.raises(CommandExecutionError) as err:
            mod.db_ensure(dbname, test=test, **pg.conn, baseline="nothere.sql")
        assert "salt://pgsql/files/baseline/nothere.sql is not on the master's file server" \
            in str(err.value) and "nothing was created" in str(err.value)
        assert mod.db_info(dbname, **pg.conn) is None
    assert calls == []
    with pytest.raises(SaltInvocationError) as err:
        mod.db_ensure(dbname, **pg.conn, baseline="../../etc/passwd")
    assert "baseline: expected a SQL file name" in str(err.value)


def test_a_failing_baseline_is_rolled_back_and_the_state_says_so(pg, baseline_mod):
    mod, files, _calls = baseline_mod
    (files / "bad.sql").write_text("CREATE TABLE kept_not (i int);\nSELECT 1/0;\n"
                                   "CREATE TABLE after_error (i int);\n")
    dbname = _name("db")
    with pytest.raises(CommandExecutionError) as err:
        mod.db_ensure(dbname, **pg.conn, baseline="bad.sql")
    assert "was created but its baseline bad.sql failed and was rolled back" in str(err.value)
    assert "division by zero" in str(err.value)
    tables = pg.query("SELECT relname FROM pg_class WHERE relname IN ('kept_not', 'after_error')",
                      dbname=dbname)
    assert tables == []                          # one transaction, stopped at the error
    # the database is there; the baseline does not run again
    assert mod.db_ensure(dbname, **pg.conn, baseline="bad.sql")["changes"] == {}
    mod.db_ensure(dbname, **pg.conn, state="absent")


# ------------------------------------------------------------------ pgbouncer's userlist
def test_userlist_carries_the_verifiers_postgres_stores(pg, pg_mod, tmp_path):
    users = [[_name("dbuser"), HOSTILE_PASSWORD], [_name("dbuser"), HOSTILE_PASSWORD]]
    for name, password in users:
        pg_mod.user_ensure(name, **pg.conn, password=password)
    path = str(tmp_path / "userlist.txt")
    lines = pg_mod.pgbouncer_userlist(users=users, path=path, **pg.conn)
    assert lines[0] == '"postgres" ""'
    parsed = pigsty_sql.parse_userlist("\n".join(lines))
    for name, _password in users:
        assert parsed[name] == _stored(pg, name)
    assert HOSTILE_PASSWORD not in "\n".join(lines)
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    assert pg_mod.pgbouncer_userlist(users=users, path=path, **pg.conn) == lines    # no change
    # Postgres not answering: what is on disk is kept; a user not on disk gets a new one
    down = dict(pg.conn, port=1, connect_wait=0)
    extra = [_name("dbuser"), "new-user-pw"]
    kept = pg_mod.pgbouncer_userlist(users=users + [extra], path=path, **down)
    assert kept[:3] == lines
    assert pigsty_sql.scram_verifies(pigsty_sql.parse_userlist(kept[3])[extra[0]], "new-user-pw")
    # a password change on the primary: the userlist follows pg_authid
    pg_mod.user_ensure(users[0][0], **pg.conn, password="rotated")
    rotated = [[users[0][0], "rotated"], users[1]]
    after = pigsty_sql.parse_userlist("\n".join(
        pg_mod.pgbouncer_userlist(users=rotated, path=path, **pg.conn)))
    assert after[users[0][0]] == _stored(pg, users[0][0]) != parsed[users[0][0]]
    assert after[users[1][0]] == parsed[users[1][0]]
    for name, _password in users:
        pg_mod.user_remove(name, **pg.conn)


def test_userlist_pillar_users_and_hashes(pg, pg_mod, tmp_path, monkeypatch):
    name = _name("dbuser")
    md5 = "md5" + hashlib.md5(("secret" + name).encode()).hexdigest()
    conf = {"pg_dbsu": "postgres", "pg_port": 5432, "pg_admin_username": "dbuser_dba", "pg_admin_password": "a",
            "pg_monitor_username": "dbuser_monitor", "pg_monitor_password": "m",
            "pg_users": [{"name": name, "password": md5, "pgbouncer": True},
                         {"name": "not_pooled", "password": "x"}]}
    monkeypatch.setitem(pg_mod.__salt__, "pigsty.config", lambda: conf)
    lines = pg_mod.pgbouncer_userlist(path=str(tmp_path / "none"), **pg.conn)
    parsed = pigsty_sql.parse_userlist("\n".join(lines))
    assert list(parsed) == ["postgres", "dbuser_dba", "dbuser_monitor", name]
    assert parsed[name] == md5 and pigsty_sql.scram_verifies(parsed["dbuser_dba"], "a")


def test_userlist_on_a_replica_waits_for_replication_bounded(pg, pg_mod, tmp_path, monkeypatch):
    monkeypatch.setattr(pg_mod, "_is_primary", lambda db: False)
    name = _name("dbuser")                 # not (yet) in pg_authid: the primary would create it
    t0 = time.monotonic()
    lines = pg_mod.pgbouncer_userlist(users=[[name, "pw"]], path=str(tmp_path / "x"), wait=1,
                                      **pg.conn)
    assert 0.9 <= time.monotonic() - t0 < 5
    assert pigsty_sql.scram_verifies(pigsty_sql.parse_userlist(lines[1])[name], "pw")
    monkeypatch.setitem(pg_mod.__opts__, "test", True)           # test mode never waits
    t0 = time.monotonic()
    pg_mod.pgbouncer_userlist(users=[[name, "pw"]], path=str(tmp_path / "x"), wait=5, **pg.conn)
    assert time.monotonic() - t0 < 2


def _pgbouncer_binary():
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.access(
        "/usr/sbin/pgbouncer", os.X_OK) else None)
    if not found:
        message = "pgbouncer is not installed (Debian package pgbouncer; tests/run.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture()
def pgbouncer(pg):
    """A pgbouncer on loopback in front of the test server (auth_type scram-sha-256, the
    databases without a user: SCRAM pass-through), run as postgres."""
    binary = _pgbouncer_binary()
    base = tempfile.mkdtemp(prefix="pigsty-pgb-test-")
    os.chown(base, *(lambda pw: (pw.pw_uid, pw.pw_gid))(__import__("pwd").getpwnam("postgres")))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ini = os.path.join(base, "pgbouncer.ini")
    userlist = os.path.join(base, "userlist.txt")
    with open(ini, "w") as fh:
        fh.write("[databases]\npostgres = host=%s port=%d dbname=postgres\n[pgbouncer]\n"
                 "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir = %s\n"
                 "auth_type = scram-sha-256\nauth_file = %s\nlogfile = %s/pgbouncer.log\n"
                 "pidfile = %s/pgbouncer.pid\npool_mode = transaction\n"
                 % (pg.host, pg.port, port, base, userlist, base, base))
    open(userlist, "w").close()
    proc = {}

    def start(lines):
        with open(userlist, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        if "p" in proc:
            proc["p"].terminate()
            proc["p"].wait(10)
        proc["p"] = subprocess.Popen(["runuser", "-u", "postgres", "--", binary, ini],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return port
            except OSError:
                time.sleep(0.1)
        pytest.fail("pgbouncer did not listen on %d" % port)

    yield start
    if "p" in proc:
        proc["p"].terminate()
        proc["p"].wait(10)
    shutil.rmtree(base, ignore_errors=True)


def _login_through(port, user, password):
    try:
        db = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres", user=user,
                              password=password, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        return str(exc).strip().splitlines()[0]
    try:
        with db.cursor() as cur:
            cur.execute("SELECT current_user")
            return cur.fetchone()[0]
    finally:
        db.close()


def test_scram_pass_through_pgbouncer(pg, pg_mod, pgbouncer, tmp_path):
    """A client logs in through pgbouncer with SCRAM, and pgbouncer logs in to Postgres
    with the client's proof: that works only with the very verifier pg_authid stores."""
    name = _name("dbuser")
    pg_mod.user_ensure(name, **pg.conn, password=HOSTILE_PASSWORD)
    lines = pg_mod.pgbouncer_userlist(users=[[name, HOSTILE_PASSWORD]],
                                      path=str(tmp_path / "u"), **pg.conn)
    port = pgbouncer(lines)
    assert _login_through(port, name, HOSTILE_PASSWORD) == name
    assert _login_through(port, name, "wrong") != name
    # the same password with another salt in the userlist: pgbouncer accepts the client,
    # the server refuses pgbouncer (what the old deterministic salt risked after \password)
    other = pigsty_sql.userlist_line(name, pigsty_sql.scram_verifier(name, HOSTILE_PASSWORD))
    port = pgbouncer([lines[0], other])
    assert _login_through(port, name, HOSTILE_PASSWORD) != name
    pg_mod.user_remove(name, **pg.conn)
