"""Day-2 operations on pg-test through the custom modules and states: users, databases,
HBA, pgbouncer, Patroni. Pillar changes are given as `pillar=` overrides carrying SCRAM
verifiers (never a plain password on a command line)."""
import json

import psycopg2
import pytest

import pigsty_sql
from pg_test_cluster import DBA, TEST
from sandbox_cli import node_exec, salt_json, wait_for
from pg import cluster_secrets, query

NEW_USER, NEW_DB = "dbuser_day2", "day2"
PASSWORD_1, PASSWORD_2 = "Day2'first\"pass;", "Day2-second-pass"


def pillar_with(users, databases):
    return json.dumps({"pigsty": {"clusters": {"pg-test": {"vars": {"pg_users": users, "pg_databases": databases}}}}})


def default_users():
    return cluster_secrets("pg-test")["pg_users"]


def default_dbs():
    return cluster_secrets("pg-test")["pg_databases"]


def day2_user(password, **extra):
    user = {"name": NEW_USER, "password": pigsty_sql.scram_verifier(NEW_USER, password),
            "pgbouncer": True, "roles": ["dbrole_readwrite"], "comment": "day-2 test user"}
    user.update(extra)
    return user


def apply(sls, pillar=None, test=False):
    args = ["-G", "pg_cluster:pg-test", "state.apply", sls]
    if pillar:
        args.append("pillar=" + pillar)
    if test:
        args.append("test=True")
    return salt_json(*args, timeout=900)


def changed(ret):
    return sorted((m, k.split("_|-")[1]) for m, states in ret.items() if isinstance(states, dict)
                  for k, v in states.items() if isinstance(v, dict) and v.get("changes"))


def postmaster_start():
    return query("10.10.10.11", 5436, *DBA, "select pg_postmaster_start_time()::text")[0][0]


def login(password, port=5433, host="10.10.10.12", dbname=NEW_DB):
    return query(host, port, NEW_USER, password, "select current_user, current_database()", dbname=dbname)


@pytest.fixture(scope="module")
def day2(pg_test_as_built):           # the tests read and write through node-1's 5436
    yield
    # back to the pillar as committed: remove the day-2 user and database if a test left them
    apply("pgsql.user,pgsql.pgbouncer", pillar_with(default_users() + [{"name": NEW_USER, "state": "absent"}], default_dbs()))
    query("10.10.10.11", 5436, *DBA, "drop database if exists %s with (force)" % NEW_DB)
    query("10.10.10.11", 5436, *DBA, "drop role if exists %s" % NEW_USER)
    apply("pgsql.user,pgsql.pgbouncer")


def test_connections_the_rules_do_not_allow_are_refused(day2):
    # the dbsu never logs in over the network, neither to Postgres nor through pgbouncer
    for port in (5432, 5433):
        with pytest.raises(psycopg2.OperationalError) as err:
            query("10.10.10.11", port, "postgres", "whatever", "select 1")
        assert "reject" in str(err.value) or "no pg_hba.conf entry" in str(err.value), str(err.value)


def test_add_user_and_database_online_change_password_then_remove(day2):
    start = postmaster_start()
    users = default_users() + [day2_user(PASSWORD_1)]
    dbs = default_dbs() + [{"name": NEW_DB, "owner": NEW_USER, "schemas": ["app"], "comment": "day-2 db"}]
    # test mode first: would-be changes, nothing done
    ret, _rc = apply("pgsql.user,pgsql.pgbouncer", pillar_with(users, dbs), test=True)
    assert ("node-1", "pg-user-" + NEW_USER) in changed(ret)
    assert query("10.10.10.11", 5436, *DBA, "select count(*) from pg_roles where rolname = %s", args=(NEW_USER,)) == [(0,)]
    # apply: created online in Postgres and pgbouncer
    ret, rc = apply("pgsql.user,pgsql.pgbouncer", pillar_with(users, dbs))
    assert rc == 0, ret
    text = json.dumps(ret)
    assert PASSWORD_1 not in text and users[-1]["password"] not in text
    assert wait_for(lambda: login(PASSWORD_1) == [(NEW_USER, NEW_DB)], 15)
    assert query("10.10.10.11", 5436, *DBA, "select nspname from pg_namespace where nspname = 'app'", dbname=NEW_DB) == [("app",)]
    # a second apply changes nothing
    ret, _rc = apply("pgsql.user,pgsql.pgbouncer", pillar_with(users, dbs))
    assert changed(ret) == []
    # change the password: the old one stops working, the new one works
    users[-1] = day2_user(PASSWORD_2)
    ret, rc = apply("pgsql.user,pgsql.pgbouncer", pillar_with(users, dbs))
    assert rc == 0 and ("node-1", "pg-user-" + NEW_USER) in changed(ret)
    assert json.dumps(ret).count('"password": "changed"') >= 1
    assert wait_for(lambda: login(PASSWORD_2) == [(NEW_USER, NEW_DB)], 15)
    with pytest.raises(psycopg2.OperationalError):
        login(PASSWORD_1)
    # remove with state: absent (after dropping its database)
    query("10.10.10.11", 5436, *DBA, "drop database %s with (force)" % NEW_DB)
    users[-1] = {"name": NEW_USER, "state": "absent"}
    ret, rc = apply("pgsql.user,pgsql.pgbouncer", pillar_with(users, default_dbs()))
    assert rc == 0, ret
    assert query("10.10.10.11", 5436, *DBA, "select count(*) from pg_roles where rolname = %s", args=(NEW_USER,)) == [(0,)]
    # none of this restarted Postgres
    assert postmaster_start() == start


def test_hba_rule_from_pillar_applies_online_and_keeps_admin_paths(day2):
    start = postmaster_start()
    rules = [{"user": "test", "db": "all", "addr": "10.10.10.1/32", "auth": "deny", "order": 1, "title": "no test from the host"}]
    override = json.dumps({"pigsty": {"clusters": {"pg-test": {"vars": {"pg_hba_rules": rules}}}}})
    try:
        ret, rc = apply("pgsql.hba", override)
        assert rc == 0, ret

        def refused():
            try:
                query("10.10.10.11", 5432, *TEST, "select 1", dbname="test")
            except psycopg2.OperationalError as exc:
                return "reject" in str(exc)
            return False
        assert wait_for(refused, 20)
        # the admin path still works (protected rules come first)
        assert query("10.10.10.11", 5432, *DBA, "select 1") == [(1,)]
    finally:
        apply("pgsql.hba")
    assert wait_for(lambda: query("10.10.10.11", 5432, *TEST, "select 1", dbname="test") == [(1,)], 20)
    assert postmaster_start() == start


def test_patronictl_and_the_patroni_module_agree(day2):
    out = node_exec("node-2", "patronictl", "-c", "/etc/patroni/config.yml", "list", "-f", "json", check=True).stdout
    ctl = {m["Member"]: (m["Role"].lower(), m["TL"]) for m in json.loads(out)}
    ret, rc = salt_json("node-2", "patroni.members")
    mod = {m["name"]: ("leader" if m["role"] == "primary" else m["role"], m["timeline"]) for m in ret["node-2"]}
    assert ctl == mod and len(mod) == 3


def test_second_apply_of_day2_states_reports_no_changes(day2):
    ret, rc = apply("pgsql.user,pgsql.hba")
    assert rc == 0
    assert changed(ret) == []


@pytest.mark.parametrize("args,fragment", [
    (["node-1", "pigsty_pg.user_ensure", "bad name"], "name"),
    (["node-1", "pigsty_pg.user_ensure", "okname", "superpower=True"], "superpower"),
    (["node-1", "pigsty_pg.db_ensure", "okdb", "connlimit=lots", "test=True"], "connlimit"),
    (["node-1", "patroni.config_patch", "[]"], "patch"),
    (["node-1", "pgbouncer.show", "secrets"], "what"),
    (["node-2", "pigsty_pg.user_ensure", "okname"], "primary"),
])
def test_invalid_module_input_is_refused_with_a_clear_error(day2, args, fragment):
    ret, rc = salt_json(*args)
    assert rc != 0
    assert fragment in json.dumps(ret), ret
    assert query("10.10.10.11", 5436, *DBA, "select count(*) from pg_roles where rolname = 'okname'") == [(0,)]


def test_invalid_state_input_is_refused_and_changes_nothing(day2):
    bad_users = default_users() + [{"name": "dbuser_bad", "password": "x", "login": "maybe"}]
    ret, rc = apply("pgsql.user", pillar_with(bad_users, default_dbs()))
    assert rc != 0
    assert query("10.10.10.11", 5436, *DBA, "select count(*) from pg_roles where rolname = 'dbuser_bad'") == [(0,)]
