"""Issue 14 in the sandbox: Pigsty parameters that take effect on a live cluster, set as
`pillar=` overrides on pg-test and put back afterwards: pg_weight (HAProxy), the pgbouncer pool
settings (pool_mode, max_db_connections), pg_default_schemas and
pg_default_extensions (template1 and postgres). The sandbox runs the default ports, dbsu and
namespace; the non-default ones are checked in the rendered files (tests/unit/
test_compat_params.py)."""
import json

import pytest

from conftest import node_exec, salt_json, wait_for
from pg import query
from test_pgsql import DBA


def override(cluster_vars=None, hosts=None):
    cls = {}
    if cluster_vars:
        cls["vars"] = cluster_vars
    if hosts:
        cls["hosts"] = hosts
    return json.dumps({"pigsty": {"clusters": {"pg-test": cls}}})


def apply(sls, pillar=None):
    args = ["-G", "pg_cluster:pg-test", "state.apply", sls]
    if pillar:
        args.append("pillar=" + pillar)
    ret, code = salt_json(*args, timeout=900)
    failed = [(m, k) for m, states in ret.items() if isinstance(states, dict)
              for k, v in states.items() if isinstance(v, dict) and v.get("result") is False]
    assert code == 0 and not failed and len(ret) == 3, (code, failed, ret)
    return ret


def haproxy_cfg(node):
    return node_exec(node, "cat", "/etc/haproxy/haproxy.cfg", check=True).stdout


def pgbouncer_config(node):
    ret, _code = salt_json(node, "pgbouncer.show", "config")
    return {row["key"]: row["value"] for row in ret[node]}


@pytest.fixture(scope="module")
def compat(sandbox):
    yield
    apply("pgsql.service,pgsql.pgbouncer")          # back to the committed pillar
    for db in ("template1", "postgres"):
        node_exec("node-1", "runuser", "-u", "postgres", "--", "psql", "-X", "-d", db, "-c",
                  "DROP EXTENSION IF EXISTS pgstattuple; DROP SCHEMA IF EXISTS pigsty_compat")


def test_pg_weight_of_a_member_reaches_every_haproxy(compat):
    apply("pgsql.service", override(hosts={"10.10.10.12": {"pg_weight": 7}}))
    for node in ("node-1", "node-2", "node-3"):
        lines = [l for l in haproxy_cfg(node).splitlines() if l.strip().startswith("server pg-test-2 ")]
        assert lines and all(l.endswith(" weight 7") for l in lines), (node, lines)
    # and back: no weight of its own (default-server's 100)
    apply("pgsql.service")
    assert " weight 7" not in haproxy_cfg("node-2")


def test_pgbouncer_pool_settings_take_effect(compat):
    # (a user's pool_mode / pool_connlimit would need pg_users on the command line, with its
    # password: checked against the real pgbouncer in tests/functional/test_compat_config.py)
    apply("pgsql.pgbouncer", override({"pgbouncer_poolmode": "statement",
                                       "pgbouncer_max_db_conn": 40}))
    for node in ("node-1", "node-2", "node-3"):
        config = wait_for(lambda: pgbouncer_config(node), 30)
        assert config["pool_mode"] == "statement" and config["max_db_connections"] == "40", node
    apply("pgsql.pgbouncer")
    config = pgbouncer_config("node-1")
    assert config["pool_mode"] == "transaction" and config["max_db_connections"] == "0"


def test_default_schemas_and_extensions_are_created_in_template1_and_postgres(compat):
    apply("pgsql.user", override({"pg_default_schemas": ["pigsty_compat"],
                                  "pg_default_extensions": [{"name": "pgstattuple",
                                                             "schema": "pigsty_compat"}]}))
    for db in ("template1", "postgres"):
        rows = query("10.10.10.11", 5436, *DBA,
                     "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON "
                     "n.oid = e.extnamespace WHERE e.extname = 'pgstattuple'", dbname=db)
        assert rows == [("pigsty_compat",)], (db, rows)
