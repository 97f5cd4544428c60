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


# ------------------------------------------------------------------ node_tune, node_packages, node_admin_*
import subprocess  # noqa: E402  (the node part of this file)

import pigsty_import_node  # noqa: E402
import pigsty_infra  # noqa: E402
import pigsty_node_admin  # noqa: E402
import pigsty_node_tune  # noqa: E402


def _keypair(tmp_path, kind, bits=None):
    path = tmp_path / ("id_" + kind)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "op@example", "-f", str(path)]
                   + (["-b", str(bits)] if bits else []), check=True)
    line = (tmp_path / ("id_%s.pub" % kind)).read_text().strip()
    fp = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path) + ".pub"],
                        check=True, capture_output=True, text=True).stdout.split()[1]
    return line, fp


@pytest.mark.parametrize("kind,bits", [("ed25519", None), ("rsa", 2048), ("ecdsa", 256)])
def test_real_public_keys_are_accepted_and_fingerprinted_as_ssh_keygen_does(tmp_path, kind, bits):
    line, fp = _keypair(tmp_path, kind, bits)
    assert pigsty_node_admin.key_problem(line) is None
    assert pigsty_import_node.fingerprint(line) == fp


ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2Bq3dI0pE2yQ8CkOY3a1yH1t8pQ2w3B0aY6m1Y5x8 "
           "op@example")
NODE = [
    # (cluster vars, rendered file, check)
    ({"node_tune": "oltp"}, "node/tune.sls",
     lambda t: 'sysctl.present:\n    - name: vm.swappiness\n    - value: "1"' in t
     and 'name: vm.dirty_ratio\n    - value: "10"' in t),
    ({"node_tune": "olap"}, "node/tune.sls", lambda t: 'name: vm.dirty_ratio\n    - value: "40"' in t),
    ({"node_tune": "crit"}, "node/tune.sls",
     lambda t: 'name: vm.dirty_expire_centisecs\n    - value: "1000"' in t),
    ({"node_tune": "tiny"}, "node/tune.sls",
     lambda t: 'name: vm.swappiness\n    - value: "10"' in t and "vm.dirty_ratio" not in t),
    ({"node_tune": "oltp", "node_sysctl_params": {"vm.swappiness": 5}}, "node/tune.sls",
     lambda t: 'name: vm.swappiness\n    - value: "5"' in t and "vm.dirty_ratio" in t),
    ({"node_packages": ["htop", "sysstat"]}, "node/packages.sls",
     lambda t: 'pkg.installed:\n    - pkgs: ["htop", "sysstat"]' in t),
    ({"node_admin_enabled": True}, "node/admin.sls",
     lambda t: "user.present:\n    - name: dba\n    - uid: 88\n    - gid: 88" in t
     and "- check_cmd: /usr/sbin/visudo -c -f" in t and "dba ALL=(ALL:ALL) NOPASSWD: ALL" in t),
    ({"node_admin_enabled": True, "node_admin_uid": 1200, "node_admin_username": "ops"}, "node/admin.sls",
     lambda t: "- name: ops\n    - uid: 1200" in t and "- name: /home/ops/.ssh/authorized_keys" in t
     and "ops ALL=(ALL:ALL) NOPASSWD: ALL" in t),
    ({"node_admin_enabled": True, "node_admin_pk_list": [ED25519]}, "node/admin.sls",
     lambda t: ED25519 in t),
]


@pytest.mark.parametrize("cvars,what,check", NODE, ids=lambda x: x if isinstance(x, str) else None)
def test_each_node_parameter_changes_what_is_rendered(cvars, what, check):
    pillar = pillar_with(**cvars)
    assert problems_of(pillar) == []
    text = render_state(what, template_salt(pillar))
    assert check(text), text
    assert isinstance(yaml.safe_load(text), dict)
    assert not check(render_state(what, template_salt(default_pillar()))), cvars


def test_the_node_defaults_change_nothing_on_a_node():
    salt = template_salt(default_pillar())
    assert "test.succeed_without_changes" in render_state("node/tune.sls", salt)
    assert "test.succeed_without_changes" in render_state("node/packages.sls", salt)
    admin = yaml.safe_load(render_state("node/admin.sls", salt))
    assert admin == {"node-admin-sudoers": {"file.absent": [{"name": "/etc/sudoers.d/pigsty-admin"}]}}
    init = render_state("node/init.sls", salt)
    assert "- node.packages" in init and "- node.admin" in init


def test_node_parameters_of_a_cluster_apply_to_its_members_only():
    pillar = pillar_with(node_tune="crit", node_packages=["htop"], node_admin_enabled=True)
    pillar["pigsty"]["vars"]["node_packages"] = ["tmux"]
    assert problems_of(pillar) == []
    member, meta = (pigsty_infra.node(pillar["pigsty"], m) for m in ("node-1", "meta"))
    assert member["packages"] == ["htop"] and meta["packages"] == ["tmux"]
    assert member["sysctl"] == pigsty_node_tune.PROFILES["crit"] and meta["sysctl"] == {}
    assert member["admin"]["enabled"] is True and meta["admin"]["enabled"] is False
    # the local repository carries what every node installs, and sudo for the admin
    pkgs = pigsty_infra.repo_packages(pillar["pigsty"])
    assert {"htop", "tmux", "sudo"} <= set(pkgs)
    assert "sudo" not in pigsty_infra.repo_packages(default_pillar()["pigsty"])


NODE_REFUSED = [
    ({"node_tune": "fast"}, "node_tune", "expected one of none, oltp, olap, crit, tiny"),
    ({"node_tune": True}, "node_tune", "expected one of"),
    ({"node_packages": "htop"}, "node_packages", "expected a list of Debian package names"),
    ({"node_packages": ["htop", "Bad Name"]}, "node_packages[1]", "expected a Debian package name"),
    ({"node_packages": ["htop; rm -rf /"]}, "node_packages[0]", "expected a Debian package name"),
    ({"node_admin_enabled": "yes"}, "node_admin_enabled", "expected true or false"),
    ({"node_admin_uid": 0}, "node_admin_uid", "expected a uid (and gid) 1-65533"),
    ({"node_admin_uid": 65534}, "node_admin_uid", "not root's 0 or nobody's 65534"),
    ({"node_admin_uid": "88"}, "node_admin_uid", "expected a uid"),
    ({"node_admin_username": "Admin User"}, "node_admin_username", "expected a user name"),
    ({"node_admin_enabled": True, "node_admin_username": "root"}, "node_admin_username",
     "an account of the system"),
    ({"node_admin_enabled": True, "node_admin_username": "postgres"}, "node_admin_username",
     "an account of the system"),
    ({"node_admin_enabled": True, "pg_dbsu": "dbsu", "node_admin_username": "dbsu"},
     "node_admin_username", "(pg_dbsu)"),
    ({"node_admin_enabled": True, "pg_dbsu": "dba"}, "node_admin_username",
     "dba is an account of the system or of the database"),
    ({"node_admin_pk_list": ED25519}, "node_admin_pk_list", "expected a list of OpenSSH public key lines"),
    ({"node_admin_pk_list": ["ssh-rsa AAAA"]}, "node_admin_pk_list[0]", "an OpenSSH public key line"),
    ({"node_admin_pk_list": [ED25519.replace("ssh-ed25519", "ssh-rsa", 1)]}, "node_admin_pk_list[0]",
     "an OpenSSH public key line"),                       # the type disagrees with the key
    ({"node_admin_pk_list": [ED25519 + "\nssh-ed25519 AAAA x"]}, "node_admin_pk_list[0]", "one line"),
    ({"node_admin_pk_list": ['from="10.0.0.1" ' + ED25519]}, "node_admin_pk_list[0]", "no options"),
    ({"node_admin_ssh_exchange": True}, "node_admin_ssh_exchange",
     "expected false, got True: Salt reaches every node through its minion"),
    ({"node_admin_pk_current": True}, "node_admin_pk_current",
     "expected false, got True: Salt has no operator's ssh key to copy"),
    ({"node_admin_pk_current": "no"}, "node_admin_pk_current", "expected false"),
]


@pytest.mark.parametrize("cvars,field,fragment", NODE_REFUSED, ids=lambda x: x if isinstance(x, str) else None)
def test_a_bad_node_value_is_refused_naming_the_parameter(cvars, field, fragment):
    problems = problems_of(pillar_with(**cvars))
    hits = [p for p in problems if p.startswith("pigsty:clusters:pg-test:vars:%s: " % field)]
    assert hits and fragment in hits[0], problems


def test_an_admin_name_that_is_not_used_is_not_refused():
    """Disabled (our default), node_admin_username names no account: a dbsu called dba (or
    an admin called root) is fine until the admin is enabled."""
    assert problems_of(pillar_with(pg_dbsu="dba")) == []
    assert problems_of(pillar_with(node_admin_username="root")) == []


def test_node_values_are_checked_in_pigsty_vars_too():
    pillar = default_pillar()
    pillar["pigsty"]["vars"].update(node_tune="turbo", node_admin_ssh_exchange=True,
                                    node_packages=[1])
    problems = problems_of(pillar)
    for field in ("node_tune", "node_admin_ssh_exchange", "node_packages[0]"):
        assert any(p.startswith("pigsty:vars:%s: " % field) for p in problems), (field, problems)
    pillar = default_pillar()
    pillar["pigsty"]["vars"].update(node_admin_ssh_exchange=False, node_admin_pk_current=False)
    assert problems_of(pillar) == []          # Pigsty's names, with our value: accepted


# ------------------------------------------------------------------ node import
def test_import_of_node_parameters():
    doc = imp.load(V1)
    gvars = doc["all"]["vars"]
    gvars["node_packages"] = ["htop,sysstat", "tmux", "perl-ExtUtils*"]
    gvars["node_admin_pk_list"].append(ED25519)
    gvars["node_admin_uid"] = 1200
    doc["all"]["children"]["pg-test"]["vars"]["node_tune"] = "crit"
    result = imp.convert(doc)
    out = result["public"]["pigsty"]["vars"]
    assert out["node_packages"] == ["htop", "sysstat", "tmux"]
    assert out["node_admin_enabled"] is True and out["node_admin_uid"] == 1200
    assert out["node_admin_pk_list"] == [ED25519]            # not Pigsty's published key
    assert out["node_tune"] == "tiny"
    assert result["public"]["pigsty"]["clusters"]["pg-test"]["vars"]["node_tune"] == "crit"
    assert "node_admin_ssh_exchange" not in out and "node_admin_pk_current" not in out
    rows = {(r["scope"], r["param"]): r for r in result["rows"]}
    assert "left out perl-ExtUtils*" in rows[("all.vars", "node_packages")]["detail"]
    assert rows[("all.vars", "node_admin_pk_list")]["status"] == "changed"
    assert inv.validate(merged(result)) == []
    # Pigsty's names with our values map as they are
    gvars.update(node_admin_ssh_exchange=False, node_admin_pk_current=False, node_tune="none")
    rows = {(r["scope"], r["param"]): r for r in imp.convert(doc)["rows"]}
    for key in ("node_admin_ssh_exchange", "node_admin_pk_current", "node_tune"):
        assert rows[("all.vars", key)]["status"] == "mapped", rows[("all.vars", key)]


def test_import_statuses_agree():
    assert (pigsty_import_node.MAPPED, pigsty_import_node.CHANGED, pigsty_import_node.UNSUPPORTED) \
        == (imp.MAPPED, imp.CHANGED, imp.UNSUPPORTED)


# ------------------------------------------------------------------ TLS parameters on import
import pigsty_import_tls  # noqa: E402

TLS_ROWS = [
    # (param, Pigsty's value, status, fragment of the row)
    ("pg_ssl_enabled", True, "mapped", "ours always runs PostgreSQL with ssl = on"),
    ("pg_ssl_enabled", False, "changed", "false -> on: ours always offers SSL"),
    ("pgbouncer_sslmode", "prefer", "mapped", "same as ours"),
    ("pgbouncer_sslmode", "disable", "changed", "disable -> prefer"),
    ("pgbouncer_sslmode", "require", "unsupported", "set pg_ssl_required: true"),
    ("pgbouncer_sslmode", "verify-full", "unsupported", "asks for no client certificate"),
    ("pgbouncer_sslmode", "maybe", "unsupported", "expected one of disable, allow, prefer"),
    ("ca_method", "create", "mapped", "ours creates the Pigsty CA on its first run"),
    ("ca_method", "recreate", "unsupported", "never recreates an existing CA"),
    ("ca_method", "copy", "unsupported", "does not take an existing CA"),
    ("ca_subject", "/CN=root-ca", "unsupported", "CN=Pigsty CA"),
    ("ca_homedir", "/ca", "unsupported", "/etc/pki/pigsty/ca/ca.key"),
    ("ca_cert", "ca.crt", "mapped", "/etc/pki/pigsty/ca.crt on every node"),
    ("ca_cert", "root.pem", "unsupported", "the CA certificate is ca.crt"),
    ("ca_key", "ca.key", "mapped", "/etc/pki/pigsty/ca/ca.key on the CA server"),
    ("cert_validity", "7300d", "unsupported", "valid 365 days and node.pki renews them 30 days"),
]


@pytest.mark.parametrize("param,value,status,fragment", TLS_ROWS)
def test_tls_parameters_map_to_ours_or_say_why_not(param, value, status, fragment):
    doc = imp.load(V1)
    doc["all"]["vars"][param] = value
    result = imp.convert(doc)
    row = [r for r in result["rows"] if r["scope"] == "all.vars" and r["param"] == param][0]
    assert row["status"] == status and fragment in row["detail"], row
    assert "not implemented" not in row["detail"]
    assert param not in result["public"]["pigsty"]["vars"]       # ours is fixed: nothing written
    assert inv.validate(merged(result)) == []


def test_no_catalog_row_says_tls_is_missing():
    import pigsty_import_catalog as C
    texts = list(C.REASONS.values()) + [r for _p, r in C.UNSUPPORTED_PREFIXES] + \
        [ours for _v, ours in C.SAME_AS_OURS.values()]
    assert not [t for t in texts if t and ("TLS is not implemented" in t or "issue 14" in t)]
    assert (pigsty_import_tls.MAPPED, pigsty_import_tls.CHANGED, pigsty_import_tls.UNSUPPORTED) \
        == (imp.MAPPED, imp.CHANGED, imp.UNSUPPORTED)
