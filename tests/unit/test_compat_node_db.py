"""Issue 14, the last Pigsty parameters: a database's ``parameters`` (ALTER DATABASE SET) and
``baseline`` (a SQL file run once when it is created); the node role's admin user
(``node_admin_*``), extra packages (``node_packages``) and tuning profile (``node_tune``).
Each is refused when bad (naming the field and what was expected), changes what is
rendered when set, and is carried over by the importer."""
import copy
import os

import pytest
import yaml

import pigsty_baseline
import pigsty_import as imp
import pigsty_inventory as inv
import pigsty_sql as sql
from pillar_fixture import REPO, default_pillar
from render import render_state
from test_compat_params import pillar_with, template_salt
from test_pigsty_import import merged

V1 = os.path.join(REPO, "tests", "data", "pigsty-v1.5.1.yml")


def with_database(**fields):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_databases"].append(dict(fields, name="app"))
    return pillar


def problems_of(pillar):
    return inv.validate(pillar)


# ------------------------------------------------------------------ database parameters
def test_database_parameters_plan_sets_resets_and_is_idempotent():
    db = sql.normalize_database({"name": "app", "parameters": {"work_mem": "64MB", "JIT": False,
                                                               "search_path": ["app", "public"]}})
    assert db["parameters"] == {"work_mem": "64MB", "jit": "off", "search_path": ["app", "public"]}
    changes, statements = sql.database_plan(db, None)
    assert statements[0].startswith('CREATE DATABASE "app"')
    assert statements[1:] == ['ALTER DATABASE "app" SET "jit" = \'off\'',
                              'ALTER DATABASE "app" SET "search_path" = \'app\', \'public\'',
                              'ALTER DATABASE "app" SET "work_mem" = \'64MB\'']
    assert changes["parameters"] == {"set": {"jit": "off", "search_path": ["app", "public"],
                                             "work_mem": "64MB"}}
    current = {"owner": None, "encoding": "UTF8", "lc_collate": "C.UTF-8", "lc_ctype": "C.UTF-8",
               "tablespace": "pg_default", "allowconn": True, "connlimit": -1, "comment": None,
               "public_connect": True,
               "parameters": {"work_mem": "64MB", "jit": "off", "search_path": "app, public"}}
    assert sql.database_plan(db, current) == ({}, [])                      # the second apply
    fewer = sql.normalize_database({"name": "app", "parameters": {"work_mem": "1GB"}})
    changes, statements = sql.database_plan(fewer, current)
    assert statements == ['ALTER DATABASE "app" SET "work_mem" = \'1GB\'',
                          'ALTER DATABASE "app" RESET "jit"', 'ALTER DATABASE "app" RESET "search_path"']
    assert changes == {"parameters": {"set": {"work_mem": "1GB"}, "reset": ["jit", "search_path"]}}
    # not given: not managed
    assert sql.database_plan(sql.normalize_database({"name": "app"}), current) == ({}, [])


def test_a_user_and_a_database_share_the_settings_plan():
    """One code path (pigsty_sql._parameters_plan): the same settings give the same SQL but
    for the object."""
    user = sql.normalize_user({"name": "app", "parameters": {"work_mem": "1MB"}, "login": False})
    db = sql.normalize_database({"name": "app", "parameters": {"work_mem": "1MB"}})
    ustmts = sql.user_plan(user, None)[1]
    dstmts = sql.database_plan(db, None)[1]
    assert ustmts[-1].replace("ROLE", "DATABASE") == dstmts[-1]


# ------------------------------------------------------------------ baseline
@pytest.mark.parametrize("name", ["cmdb.sql", "app/schema-v1.sql", "a+b_c.SQL", "x"])
def test_baseline_names_that_stay_in_the_directory(name):
    assert pigsty_baseline.name_problem(name) is None
    assert pigsty_baseline.source(name) == "salt://pgsql/files/baseline/" + name


@pytest.mark.parametrize("name", ["../cmdb.sql", "/etc/passwd", "app/../../x.sql", ".hidden.sql",
                                  "a//b.sql", "a b.sql", "", "cmdb.sql\n", 5, ["cmdb.sql"],
                                  "app/.git/config", "x" * 200])
def test_baseline_names_that_could_leave_it_are_refused(name):
    assert "a SQL file name under the state tree's pgsql/files/baseline/" in \
        pigsty_baseline.name_problem(name)
    with pytest.raises(ValueError):
        pigsty_baseline.source(name)


def test_baseline_file_must_be_in_the_state_tree(tmp_path):
    pillar = with_database(baseline="app.sql")
    roots = {"base": [str(tmp_path)]}
    problems = pigsty_baseline.file_problems(pillar["pigsty"], roots)
    assert problems == ["pigsty:clusters:pg-test:vars:pg_databases[app]:baseline: app.sql is not "
                        "in the state tree (expected the file pgsql/files/baseline/app.sql under "
                        "file_roots %s)" % tmp_path]
    (tmp_path / "pgsql" / "files" / "baseline").mkdir(parents=True)
    (tmp_path / "pgsql" / "files" / "baseline" / "app.sql").write_text("SELECT 1;\n")
    assert pigsty_baseline.file_problems(pillar["pigsty"], roots) == []
    assert pigsty_baseline.file_problems(pillar["pigsty"], {}) == []     # no local roots
    # the repository's state tree, as the sandbox master serves it
    assert pigsty_baseline.in_roots("README.md", {"base": [os.path.join(REPO, "salt")]}) is True


def test_the_runner_validation_checks_the_baseline_files(tmp_path):
    from loader import load_module
    runner = load_module("_runners/pigsty.py", opts={"file_roots": {"base": [str(tmp_path)]}},
                         context={})
    runner._full_inventory = lambda: (with_database(baseline="app.sql"), [])
    ret = runner.validate()
    assert ret["result"] is False
    assert any("pg_databases[app]:baseline: app.sql is not in the state tree" in p
               for p in ret["problems"]), ret


def test_baseline_psql_command_stops_at_the_first_error_in_one_transaction():
    cmd = pigsty_baseline.psql_command("psql", "/var/run/postgresql", 5440, "dbsu", "app")
    assert cmd == ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                   "-h", "/var/run/postgresql", "-p", "5440", "-U", "dbsu", "-d", "app", "-f", "-"]


# ------------------------------------------------------------------ validation and rendering
DB_REFUSED = [
    ({"parameters": ["work_mem=1MB"]}, "parameters: expected a mapping of parameter name"),
    ({"parameters": {"work mem": "1MB"}}, "parameters: expected a mapping of parameter name"),
    ({"parameters": {"work_mem": {"x": 1}}}, "parameters: expected a mapping"),
    ({"baseline": "../cmdb.sql"}, "baseline: expected a SQL file name"),
    ({"baseline": "/srv/cmdb.sql"}, "baseline: expected a SQL file name"),
    ({"baseline": "cmdb.sql", "allowconn": False}, "baseline: conflicts with allowconn: false"),
]


@pytest.mark.parametrize("fields,fragment", DB_REFUSED)
def test_bad_database_parameters_or_baseline_are_refused(fields, fragment):
    problems = problems_of(with_database(**fields))
    hits = [p for p in problems if p.startswith("pigsty:clusters:pg-test:vars:pg_databases[app]: ")]
    assert hits and fragment in hits[0], problems


def test_database_parameters_and_baseline_reach_the_state():
    pillar = with_database(owner="test", parameters={"work_mem": "64MB"}, baseline="cmdb.sql")
    assert problems_of(pillar) == []
    states = yaml.safe_load(render_state("pgsql/user.sls", template_salt(pillar)))
    args = states["pg-database-app"]["pigsty_pg.database_present"]
    assert {"parameters": {"work_mem": "64MB"}} in args and {"baseline": "cmdb.sql"} in args
    default = yaml.safe_load(render_state("pgsql/user.sls", template_salt(default_pillar())))
    assert all("parameters" not in a and "baseline" not in a
               for a in default["pg-database-test"]["pigsty_pg.database_present"])


# ------------------------------------------------------------------ import
def _v1_db_row(result, name="meta"):
    return [r for r in result["rows"] if r["param"] == "pg_databases[%s]" % name][0]


def _v1_db(result, cluster="pg-meta", name="meta"):
    dbs = result["private"][cluster]["pigsty"]["clusters"][cluster]["vars"]["pg_databases"]
    return [d for d in dbs if d["name"] == name][0]


def test_import_maps_the_baseline_when_the_state_tree_has_it(tmp_path):
    doc = imp.load(V1)
    # no file roots known (a unit test): kept, the row says where the file goes
    result = imp.convert(copy.deepcopy(doc))
    assert _v1_db(result)["baseline"] == "cmdb.sql"
    row = _v1_db_row(result)
    assert row["status"] == "changed" and "put Pigsty's files/cmdb.sql in the state tree's " \
        "pgsql/files/baseline/" in row["detail"]
    # the master's state tree lacks it: left out (validation would refuse it), and said so
    roots = {"base": [str(tmp_path)]}
    result = imp.convert(copy.deepcopy(doc), file_roots=roots)
    assert "baseline" not in _v1_db(result)
    assert "baseline cmdb.sql left out: the state tree has no pgsql/files/baseline/cmdb.sql" \
        in _v1_db_row(result)["detail"]
    # it has it: mapped as it is
    (tmp_path / "pgsql" / "files" / "baseline").mkdir(parents=True)
    (tmp_path / "pgsql" / "files" / "baseline" / "cmdb.sql").write_text("SELECT 1;\n")
    result = imp.convert(copy.deepcopy(doc), file_roots=roots)
    assert _v1_db(result)["baseline"] == "cmdb.sql"
    assert "baseline" not in _v1_db_row(result)["detail"]      # (its extensions are changed)
    assert inv.validate(merged(result)) == []
    assert pigsty_baseline.file_problems(merged(result)["pigsty"], roots) == []


def test_import_carries_database_parameters():
    doc = imp.load(V1)
    pg_meta = doc["all"]["children"]["pg-meta"]["vars"]
    pg_meta["pg_databases"][0]["parameters"] = {"work_mem": "32MB", "search_path": "app, public"}
    pg_meta["pg_databases"].append({"name": "bad", "parameters": {"no such": 1}})
    result = imp.convert(doc)
    assert _v1_db(result)["parameters"] == {"work_mem": "32MB", "search_path": "app, public"}
    assert "parameters" not in _v1_db(result, name="bad")
    assert "parameters left out (parameters: expected a mapping of parameter name" in \
        _v1_db_row(result, "bad")["detail"]
    assert inv.validate(merged(result)) == []
