"""Issue 14, "make every accepted parameter real": a cluster with Pigsty's non-default
pg_port, pgbouncer_port, pg_dbsu and pg_namespace has them in every file and command
rendered for it (never 5432, 6432, postgres or /service); each parameter taken over from
Pigsty changes what is rendered; what is not built yet is refused with its reason."""
import copy
import os
import re
import types

import pytest
import yaml

import pigsty_defaults as D
import pigsty_etcd
import pigsty_infra
import pigsty_inventory as inv
import pigsty_pgsql as pgsql
import pigsty_pki
from loader import load_module
from pillar_fixture import REPO, default_pillar
from render import render_haproxy_cfg, render_state

CUSTOM = {"pg_port": 5440, "pgbouncer_port": 6440, "pg_dbsu": "dbsu", "pg_namespace": "/pg"}
# what must not appear in a file rendered for the custom cluster (its defaults)
DEFAULT_MARKS = [re.compile(p) for p in (r"\b5432\b", r"\b6432\b", r"/service\b",
                                         r"(?<![-\w])postgres(?![-\w])")]


def pillar_with(**cluster_vars):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"].update(copy.deepcopy(cluster_vars))
    return pillar


def conf_of(minion="node-1", pillar=None, **cluster_vars):
    return inv.instance_config(pillar or pillar_with(**cluster_vars), minion)


def pigsty_module(pillar, minion="node-1"):
    """_modules/pigsty.py and pigsty_install.py on ``minion``, as Salt loads them."""
    salt = {"pgbouncer.forwarding": lambda: None}
    mod = load_module("_modules/pigsty.py", pillar=pillar, opts={"id": minion},
                      grains={"mem_total": 2048}, salt=salt)
    salt["pigsty.config"] = mod.config
    install = load_module("_modules/pigsty_install.py", salt=salt, opts={"id": minion})
    return mod, install


def template_salt(pillar, minion="node-1", role="primary"):
    """The salt functions the pgsql and node states call, from the real modules."""
    mod, install = pigsty_module(pillar, minion)
    salt = {"pigsty.%s" % name: getattr(mod, name) for name in (
        "config", "patroni_config", "dcs_config", "haproxy_services", "pgbouncer", "vip_manager",
        "pgsql_packages", "node", "identity")}
    salt.update({"pigsty_install.dbsu": install.dbsu, "pigsty_install.locales": install.locales,
                 "pigsty_install.patroni_host": install.patroni_host,
                 "config.get": lambda key, default=None: default,
                 "pigsty.patroni_role": lambda: role,
                 "file.dirname": os.path.dirname,
                 "pigsty_pki.request": lambda: {"paths": pigsty_pki.paths(), "group": pigsty_pki.SSL_GROUP},
                 "pigsty_pki.exporter_tls": load_module("_modules/pigsty_pki.py", salt={
                     "config.get": lambda key, default=None: default}).exporter_tls,
                 "pigsty_pg.pgbouncer_userlist": lambda **kw: ['"%s" ""' % mod.config()["pg_dbsu"]]})
    return salt


PGSQL_FILES = ["pgsql/install.sls", "pgsql/patroni.sls", "pgsql/pgbouncer.sls",
               "pgsql/monitor.sls", "pgsql/user.sls", "pgsql/service.sls", "pgsql/vip.sls",
               "pgsql/beacon.sls", "pgsql/remove.sls", "pgsql/files/patroni.yml.jinja",
               "pgsql/files/pgbouncer.ini.jinja", "pgsql/files/pgb_hba.conf.jinja",
               "pgsql/files/userlist.txt.jinja"]


def _defaults_in(text):
    """Lines of ``text`` with a default port, dbsu or namespace (not the database named
    postgres, Debian's postgres group or package names)."""
    bad = []
    for line in text.splitlines():
        clean = re.sub(r"dbname=postgres|name: postgres$|group: postgres|Group=postgres|"
                       r"gid: postgres|postgresql\S*|prometheus-postgres-exporter|"
                       r"postgres exporter|- postgres$|'postgres'|= host=\S+ port=\d+ dbname=\w+|"
                       r"^- (host|local)\w* postgres ",   # HBA lines of the database postgres
                       "", line.strip())
        if clean.startswith("#") or "exporter" in clean and "postgres" in clean:
            continue
        if any(m.search(clean) for m in DEFAULT_MARKS):
            bad.append(line)
    return bad


# ------------------------------------------------------------------ non-default port, dbsu, namespace
@pytest.fixture(scope="module")
def custom():
    pillar = pillar_with(**CUSTOM)
    assert inv.validate(pillar) == []
    return pillar


@pytest.mark.parametrize("relpath", PGSQL_FILES)
def test_every_rendered_pgsql_file_uses_the_custom_port_dbsu_and_namespace(custom, relpath):
    text = render_state(relpath, template_salt(custom))
    assert _defaults_in(text) == [], relpath
    if relpath.endswith(".sls"):
        assert isinstance(yaml.safe_load(text), dict), relpath     # a state file Salt can read


def test_the_custom_values_are_where_they_belong(custom):
    salt = template_salt(custom)
    patroni = render_state("pgsql/files/patroni.yml.jinja", salt)
    assert "namespace: /pg\n" in patroni
    assert "listen: '*:5440'" in patroni and "connect_address: 10.10.10.11:5440" in patroni
    assert "username: dbsu" in patroni and "pgpass: /var/lib/pgsql/.pgpass.patroni" in patroni
    assert "port: 5440" in patroni
    pgb = render_state("pgsql/files/pgbouncer.ini.jinja", salt)
    assert "listen_port = 6440" in pgb and "admin_users = dbsu," in pgb and "stats_users = dbsu," in pgb
    assert "port=5440" in salt["pigsty.pgbouncer"]()["database_file"]
    hba = render_state("pgsql/files/pgb_hba.conf.jinja", salt)
    assert re.search(r"^local\s+pgbouncer\s+dbsu\s+peer", hba, re.M), hba
    sls = render_state("pgsql/pgbouncer.sls", salt)
    assert "- port: 6440" in sls and "user: dbsu" in sls and "user: postgres" not in sls
    assert "user: dbsu" in render_state("pgsql/patroni.sls", salt)
    monitor = render_state("pgsql/monitor.sls", salt)
    assert "*:5440:*:dbuser_monitor:" in monitor and "port=5440 user=dbuser_monitor" in monitor
    assert "User=dbsu" in monitor and "--port 6440 --user dbsu" in monitor
    install = render_state("pgsql/install.sls", salt)
    assert "name: dbsu" in install and "home: /var/lib/pgsql" in install
    assert install.count("User=dbsu") == 2       # patroni's and pgbouncer's units
    vip = salt["pigsty.vip_manager"]()
    assert vip["trigger-key"] == "/pg/pg-test/leader"
    cfg = render_haproxy_cfg(salt["pigsty.config"]())
    servers = re.findall(r"server \S+ [\d.]+:(\d+)", cfg)
    assert servers and set(servers) == {"5440", "6440"}


def test_the_default_dbsu_needs_no_user_and_no_unit_override():
    text = render_state("pgsql/install.sls", template_salt(default_pillar()))
    assert "user.present" not in text and "pigsty-dbsu.conf" not in text
    patroni = render_state("pgsql/files/patroni.yml.jinja", template_salt(default_pillar()))
    assert "pgpass: /var/lib/postgresql/.pgpass.patroni" in patroni


def test_a_replica_waits_for_the_leader_on_the_custom_patroni_port(custom):
    text = render_state("pgsql/patroni.sls", template_salt(custom, "node-2"))
    assert "patroni.leader_present" in text and _defaults_in(text) == []


def test_removing_the_cluster_forgets_its_keys_under_its_namespace(custom):
    mod = load_module("_runners/pigsty.py", opts={})
    mod._full_inventory = lambda: (custom, [])
    info = mod.cluster("pg-test")
    assert info["dcs_key"] == "/pg/pg-test" and info["dcs_type"] == "etcd"
    runners = {"pigsty.cluster": lambda *a, **k: info,
               "pigsty.removal_plan": lambda *a, **k: {"result": True, "whole_cluster": True,
                                                     "minions": ["node-3", "node-2", "node-1"]}}
    salt = {"saltutil.runner": lambda name, arg=None, kwarg=None: runners[name](*(arg or []), **(kwarg or {}))}
    text = render_state("orch/pgsql_remove.sls", salt, pillar={"pg_cluster": "pg-test"})
    # the meta node's pigsty_dcs.forget deletes pigsty_etcd.prefix(pg_namespace, cluster)
    assert "- name: pigsty_dcs.forget\n    - tgt: meta\n    - arg:\n      - pg-test" in text
    assert "/service" not in text
    assert pigsty_etcd.prefix(custom["pigsty"]["clusters"]["pg-test"]["vars"]["pg_namespace"], "pg-test") \
        == info["dcs_key"] == "/pg/pg-test"


# ------------------------------------------------------------------ the execution modules
def test_pgbouncer_console_runs_as_the_dbsu_on_pgbouncer_port(custom, monkeypatch):
    mod, _install = pigsty_module(custom)
    pgb = load_module("_modules/pgbouncer.py", salt={"pigsty.config": mod.config,
                                                     "config.option": lambda k, d=None: d})
    seen = {}

    def run(cmd, **kwargs):
        seen["cmd"] = cmd
        return types.SimpleNamespace(returncode=0, stdout="", stderr="")
    monkeypatch.setattr(pgb.subprocess, "run", run)
    monkeypatch.setattr(pgb.pwd, "getpwnam", lambda name: seen.setdefault("user", name) and
                        types.SimpleNamespace(pw_uid=1, pw_gid=1, pw_dir="/x"))
    pgb.reload()
    cmd = seen["cmd"]
    assert cmd[cmd.index("-p") + 1] == "6440" and cmd[cmd.index("-U") + 1] == "dbsu"
    assert seen["user"] == "dbsu"


def test_pgbouncer_console_on_a_node_without_an_instance_uses_its_options(monkeypatch):
    pgb = load_module("_modules/pgbouncer.py", salt={
        "pigsty.config": lambda: None,
        "config.option": lambda k, d=None: {"pgbouncer.port": 6500}.get(k, d)})
    seen = {}
    monkeypatch.setattr(pgb.subprocess, "run", lambda cmd, **kw: seen.setdefault("cmd", cmd) and
                        types.SimpleNamespace(returncode=0, stdout="", stderr=""))
    monkeypatch.setattr(pgb.pwd, "getpwnam", lambda name: types.SimpleNamespace(pw_uid=1, pw_gid=1, pw_dir="/x"))
    pgb.reload()
    assert seen["cmd"][seen["cmd"].index("-p") + 1] == "6500"
    assert seen["cmd"][seen["cmd"].index("-U") + 1] == D.DEFAULTS["pg_dbsu"]


def test_pigsty_pg_connects_as_the_dbsu_on_pg_port(custom, monkeypatch):
    mod, _install = pigsty_module(custom)
    pg = load_module("_modules/pigsty_pg.py", salt={"pigsty.config": mod.config,
                                                    "config.option": lambda k, d=None: d})
    seen = {}

    class Stop(Exception):
        pass

    def connect(**params):
        seen.update(params)
        raise Stop()
    other = type("OtherError", (Exception,), {})      # Stop is no psycopg2.Error: no retry
    monkeypatch.setattr(pg, "psycopg2", types.SimpleNamespace(connect=connect, Error=other), raising=False)
    with pytest.raises(Stop):
        with pg._connect({}):
            pass
    assert seen["port"] == 5440 and seen["user"] == "dbsu" and seen["dbname"] == "postgres"


def test_patroni_module_asks_the_custom_patroni_port(monkeypatch):
    pillar = pillar_with(patroni_port=8010)
    mod, _install = pigsty_module(pillar)
    pat = load_module("_modules/patroni.py", salt={"pigsty.config": mod.config,
                                                   "config.option": lambda k, d=None: d})
    assert pat._port(None) == 8010 and pat._port(9000) == 9000


# ------------------------------------------------------------------ each parameter, rendered
def _patroni(conf):
    return pgsql.patroni_config(conf, 2048)


def _haproxy(conf):
    return render_haproxy_cfg(conf)


def _pgbouncer_ini(conf, pillar):
    return render_state("pgsql/files/pgbouncer.ini.jinja", template_salt(pillar))


PARAMS = [
    # (cluster vars, what is rendered, check)
    ({"pg_encoding": "SQL_ASCII"}, "patroni", lambda p: {"encoding": "SQL_ASCII"} in p["bootstrap"]["initdb"]),
    ({"pg_locale": "en_US.UTF-8"}, "patroni", lambda p: {"locale": "en_US.UTF-8"} in p["bootstrap"]["initdb"]),
    ({"pg_lc_collate": "C"}, "patroni", lambda p: {"lc-collate": "C"} in p["bootstrap"]["initdb"]),
    ({"pg_lc_ctype": "en_US.UTF8"}, "patroni", lambda p: {"lc-ctype": "en_US.UTF8"} in p["bootstrap"]["initdb"]),
    ({"pg_checksum": False}, "patroni", lambda p: "data-checksums" not in p["bootstrap"]["initdb"]),
    ({"pg_libs": "pg_stat_statements, auto_explain"}, "patroni",
     lambda p: p["postgresql"]["parameters"]["shared_preload_libraries"] == "pg_stat_statements, auto_explain"),
    ({"pgbouncer_poolmode": "session"}, "pgbouncer.ini", lambda t: "\npool_mode = session\n" in t),
    ({"pgbouncer_max_db_conn": 100}, "pgbouncer.ini", lambda t: "\nmax_db_connections = 100\n" in t),
    ({"pg_weight": 50}, "haproxy.cfg", lambda t: len(re.findall(r"server pg-test-\d \S+ .* weight 50$", t, re.M)) >= 12),
    ({"pg_extensions": ["postgresql-15-postgis-3"]}, "packages", lambda p: "postgresql-15-postgis-3" in p),
    ({"pg_lc_ctype": "en_US.UTF8"}, "packages", lambda p: "locales" in p),
    ({"pg_lc_ctype": "en_US.UTF8"}, "install.sls",
     lambda t: "locale.present:\n    - name: en_US.UTF-8" in t),
    ({"pg_default_schemas": ["monitor"], "pg_default_extensions": [{"name": "pgstattuple", "schema": "monitor"}]},
     "user.sls", lambda t: t.count('- schemas: ["monitor"]') == 2 and
     t.count('- extensions: [{"name": "pgstattuple", "schema": "monitor"}]') == 2),
    ({"pg_default_privileges": D.DEFAULTS["pg_default_privileges"] + ["GRANT USAGE ON TYPES TO dbrole_readonly"]},
     "user.sls", lambda t: t.count("GRANT USAGE ON TYPES TO dbrole_readonly") == 2),
    ({"node_timezone": "Asia/Hong_Kong"}, "node/tune.sls",
     lambda t: "timezone.system:\n    - name: Asia/Hong_Kong" in t),
    ({"node_sysctl_params": {"vm.swappiness": 10}}, "node/tune.sls",
     lambda t: 'sysctl.present:\n    - name: vm.swappiness\n    - value: "10"' in t),
]


def rendered(what, pillar):
    conf = conf_of(pillar=pillar)
    salt = template_salt(pillar)
    return {
        "patroni": lambda: _patroni(conf),
        "pgbouncer.ini": lambda: _pgbouncer_ini(conf, pillar),
        "haproxy.cfg": lambda: _haproxy(conf),
        "packages": lambda: salt["pigsty.pgsql_packages"](),
        "install.sls": lambda: render_state("pgsql/install.sls", salt),
        "user.sls": lambda: render_state("pgsql/user.sls", salt),
        "node/tune.sls": lambda: render_state("node/tune.sls", salt),
    }[what]()


@pytest.mark.parametrize("cvars,what,check", PARAMS, ids=lambda x: x if isinstance(x, str) else None)
def test_each_parameter_changes_what_is_rendered(cvars, what, check):
    pillar = pillar_with(**cvars)
    assert inv.validate(pillar) == []
    out = rendered(what, pillar)
    assert check(out), (cvars, what)
    if what.endswith(".sls"):
        assert isinstance(yaml.safe_load(out), dict)
    assert not check(rendered(what, default_pillar())), "the default already passes: %s" % cvars


def test_the_defaults_render_as_before():
    """No change for a cluster that sets none of them (the running sandbox keeps its files)."""
    conf = conf_of(pillar=default_pillar())
    patroni = _patroni(conf)
    assert patroni["bootstrap"]["initdb"] == [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"]
    assert patroni["postgresql"]["parameters"]["shared_preload_libraries"] == "pg_stat_statements"
    ini = _pgbouncer_ini(conf, default_pillar())
    assert "pool_mode = transaction" in ini and "max_db_connections" not in ini
    assert not re.search(r"^\s+server .* weight", _haproxy(conf), re.M)
    # Pigsty's spellings of an encoding are PostgreSQL's name in initdb
    assert {"encoding": "UTF8"} in _patroni(conf_of(pg_encoding="utf-8"))["bootstrap"]["initdb"]
    assert "test.succeed_without_changes" in render_state("node/tune.sls", template_salt(default_pillar()))


def test_per_user_pool_options_go_to_pgbouncers_users_section():
    pillar = default_pillar()
    users = pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_users"]
    users.append({"name": "dbuser_pool", "password": "Pool.Secret", "pgbouncer": True,
                  "pool_mode": "session", "pool_connlimit": 10})
    users.append({"name": "dbuser_nopool", "password": "No.Pool", "pool_mode": "statement"})
    assert inv.validate(pillar) == []
    ini = _pgbouncer_ini(None, pillar)
    assert ini.rstrip().endswith("\n[users]\ndbuser_pool = pool_mode=session max_user_connections=10"), ini
    assert "dbuser_nopool" not in ini          # not a pgbouncer user: no pool of its own
    assert "[users]" not in _pgbouncer_ini(None, default_pillar())
    # and the import keeps them (Pigsty v2's pool_mode of a user)
    import pigsty_import as imp
    result = imp.convert(imp.load(os.path.join(REPO, "tests", "data", "pigsty-v2-shape.yml")))
    app = [u for u in result["private"]["pg-meta"]["pigsty"]["clusters"]["pg-meta"]["vars"]["pg_users"]
           if u["name"] == "dbuser_app"]
    assert app and app[0]["pool_mode"] == "session"


def test_a_database_with_state_absent_is_dropped_before_its_leaving_owner():
    """state: absent of a database was accepted and then ignored by pgsql.user."""
    pillar = default_pillar()
    cvars = pillar["pigsty"]["clusters"]["pg-test"]["vars"]
    cvars["pg_users"].append({"name": "dbuser_old", "state": "absent"})
    cvars["pg_databases"].append({"name": "old", "owner": "dbuser_old", "state": "absent"})
    assert inv.validate(pillar) == []
    states = yaml.safe_load(render_state("pgsql/user.sls", template_salt(pillar)))
    drop = states["pg-database-old"]["pigsty_pg.database_absent"]
    assert {"name": "old"} in drop
    assert {"require_in": [{"pigsty_pg": "pg-user-dbuser_old"}]} in drop
    assert "pigsty_pg.user_absent" in states["pg-user-dbuser_old"]
    assert "old" not in [d["name"] for d in pgsql.pgbouncer_databases(conf_of(pillar=pillar))]
    state = load_module("_states/pigsty_pg.py", opts={"test": False}, salt={
        "pigsty_pg.db_ensure": lambda name, test, **spec: {"changes": {"database": "dropped"},
                                                            "comment": "%s %s" % (name, spec)}})
    ret = state.database_absent("old")
    assert ret["result"] is True and "'state': 'absent'" in ret["comment"]


def test_a_member_weight_wins_over_the_cluster_weight():
    pillar = pillar_with(pg_weight=80)
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.12"]["pg_weight"] = 0
    assert inv.validate(pillar) == []
    cfg = _haproxy(conf_of(pillar=pillar))
    assert re.search(r"server pg-test-2 10\.10\.10\.12:\d+ .* weight 0$", cfg, re.M)
    assert re.search(r"server pg-test-1 10\.10\.10\.11:\d+ .* weight 80$", cfg, re.M)


def test_node_tuning_of_a_cluster_applies_to_its_members_only():
    pillar = pillar_with(node_timezone="Asia/Hong_Kong")
    pillar["pigsty"]["vars"]["node_timezone"] = "UTC"
    assert inv.validate(pillar) == []
    assert pigsty_infra.node(pillar["pigsty"], "node-1")["timezone"] == "Asia/Hong_Kong"
    assert pigsty_infra.node(pillar["pigsty"], "meta")["timezone"] == "UTC"


def test_the_local_repository_carries_the_extension_packages():
    pillar = pillar_with(pg_extensions=["postgresql-15-postgis-3"], pg_locale="en_US.UTF-8")
    pkgs = pigsty_infra.repo_packages(pillar["pigsty"])
    assert "postgresql-15-postgis-3" in pkgs and "locales" in pkgs


# ------------------------------------------------------------------ refusals
REFUSED = [
    ({"pg_encoding": "KLINGON"}, "pg_encoding", "server encoding"),
    ({"pg_locale": "en US"}, "pg_locale", "locale name"),
    ({"pg_encoding": "LATIN1"}, "pg_encoding", "does not match pg_lc_collate C.UTF-8"),
    ({"pg_encoding": "UTF8", "pg_lc_ctype": "de_DE.ISO-8859-1"}, "pg_encoding", "does not match pg_lc_ctype"),
    ({"pg_checksum": "yes"}, "pg_checksum", "true or false"),
    ({"pg_libs": "auto_explain"}, "pg_libs", "must include pg_stat_statements"),
    ({"pg_libs": ["pg_stat_statements"]}, "pg_libs", "separated by commas"),
    ({"pg_libs": "pg_stat_statements; DROP"}, "pg_libs", "separated by commas"),
    ({"pg_extensions": "postgis"}, "pg_extensions", "list of Debian package names"),
    ({"pg_extensions": ["pg_repack_15"]}, "pg_extensions[0]", "Debian package name"),
    ({"pg_default_schemas": ["Bad Schema"]}, "pg_default_schemas", "schemas"),
    ({"pg_default_extensions": [{"schema": "x"}]}, "pg_default_extensions", "extensions"),
    ({"pgbouncer_poolmode": "txn"}, "pgbouncer_poolmode", "session, transaction, statement"),
    ({"pg_default_privileges": ["GRANT ALL ON TABLES TO dbrole_readonly"]}, "pg_default_privileges",
     "GRANT PRIVILEGE[, ...] ON KIND TO ROLE"),
    ({"pg_default_privileges": ["GRANT EXECUTE ON TABLES TO dbrole_readonly"]}, "pg_default_privileges",
     "[0]"),
    ({"pg_default_privileges": ["GRANT SELECT ON TABLES TO dbrole_nobody"]}, "pg_default_privileges",
     "dbrole_nobody is not a role of this cluster"),
    ({"pgbouncer_max_db_conn": -1}, "pgbouncer_max_db_conn", "0: no limit"),
    ({"pg_weight": 300}, "pg_weight", "0-256"),
    ({"node_timezone": "../etc"}, "node_timezone", "time zone name"),
    ({"node_sysctl_params": ["vm.swappiness=1"]}, "node_sysctl_params", "mapping"),
    ({"node_sysctl_params": {"vm.swappiness": "1\nkernel.x = 2"}}, "node_sysctl_params:vm.swappiness", "a number or a word"),
    ({"node_sysctl_params": {"rm -rf": 1}}, "node_sysctl_params", "not a kernel parameter"),
    ({"pg_upstream": "10.10.10.11"}, "pg_upstream", "an instance parameter"),
    ({"pg_delay": "1h"}, "pg_delay", "a delay applies to a standby cluster only"),
    ({"pg_delay": "1 week"}, "pg_delay", "a PostgreSQL duration such as"),
]


@pytest.mark.parametrize("cvars,field,fragment", REFUSED, ids=lambda x: x if isinstance(x, str) else None)
def test_a_bad_or_unsupported_value_is_refused_naming_the_parameter(cvars, field, fragment):
    problems = inv.validate(pillar_with(**cvars))
    hits = [p for p in problems if "pigsty:clusters:pg-test:vars:%s" % field in p]
    assert hits and fragment in hits[0], problems


@pytest.mark.parametrize("key,value,fragment", [
    ("pg_upstream", "10.10.10.11", "cascaded replicas are not built"),
    ("pg_delay", "1h", "a delay applies to a standby cluster's leader only"),
])
def test_upstream_and_delay_on_a_replica_are_refused_with_the_reason(key, value, fragment):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.13"][key] = value
    problems = inv.validate(pillar)
    assert any("pigsty:clusters:pg-test:hosts:10.10.10.13:%s:" % key in p and fragment in p
               for p in problems), problems


def test_global_values_are_checked_in_pigsty_vars():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["pgbouncer_poolmode"] = "txn"
    pillar["pigsty"]["vars"]["pg_delay"] = "5 minutes"
    problems = inv.validate(pillar)
    assert any(p.startswith("pigsty:vars:pgbouncer_poolmode:") for p in problems), problems
    assert any(p.startswith("pigsty:vars:pg_delay: expected an integer of seconds") for p in problems), problems


def test_a_global_delay_is_the_standby_clusters_default_and_refuses_nothing_else():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["pg_delay"] = "1h"
    assert inv.validate(pillar) == []


# ------------------------------------------------------------------ every accepted parameter is used
CONSUMERS = ["_utils", "_modules", "_states", "_runners", "_beacons", "salt", "reactor"]
# parameters a pillar template hands on under another key (their reader is named here)
PILLAR_CONSUMERS = {"pg_etcd_password": "pillar/dcs_clusters.sls"}   # -> pigsty:dcs:etcd_users


def test_every_accepted_parameter_is_read_somewhere():
    """Each parameter validation accepts (DEFAULTS) is read by code or a state beyond the
    defaults and the validation themselves (else it would be accepted and ignored)."""
    skip = {"pigsty_defaults.py", "pigsty_inventory.py", "pigsty_syntax.py", "pigsty_import.py",
            "pigsty_import_catalog.py", "pigsty_import_rules.py"}
    texts = []
    for top in CONSUMERS:
        for root, _dirs, files in os.walk(os.path.join(REPO, top)):
            if os.path.islink(root):
                continue
            for name in files:
                if name in skip or not name.endswith((".py", ".sls", ".jinja")):
                    continue
                with open(os.path.join(root, name), encoding="utf-8") as fh:
                    texts.append(fh.read())
    for key, path in PILLAR_CONSUMERS.items():
        with open(os.path.join(REPO, path), encoding="utf-8") as fh:
            assert re.search(r"\b%s\b" % re.escape(key), fh.read()), (key, path)
    text = "\n".join(texts)
    unused = [k for k in D.DEFAULTS if k not in PILLAR_CONSUMERS
              and not re.search(r"\b%s\b" % re.escape(k), text)]
    assert unused == []


@pytest.mark.parametrize("cvars", [
    {"pg_encoding": "LATIN1", "pg_locale": "C", "pg_lc_collate": "C", "pg_lc_ctype": "C"},
    {"pg_encoding": "SQL_ASCII"},
    {"pg_encoding": "UTF8", "pg_lc_ctype": "en_US.utf8", "pg_lc_collate": "en_US.UTF-8"},
    {"pg_encoding": "LATIN1", "pg_locale": "de_DE.ISO-8859-1", "pg_lc_collate": "de_DE.ISO-8859-1",
     "pg_lc_ctype": "C"},
])
def test_encodings_that_go_with_the_locales_are_accepted(cvars):
    assert inv.validate(pillar_with(**cvars)) == []


def test_default_privileges_lines_and_their_import():
    import pigsty_sql
    assert pigsty_sql.parse_default_privileges(["GRANT INSERT, UPDATE ON TABLES TO app_rw"]) == \
        [("app_rw", "TABLES", "INSERT"), ("app_rw", "TABLES", "UPDATE")]
    assert pigsty_sql.default_privileges_sql("dbuser_dba", (), [("app_rw", "TABLES", "INSERT")]) == \
        ['ALTER DEFAULT PRIVILEGES FOR ROLE "dbuser_dba" GRANT INSERT ON TABLES TO "app_rw"']
    # a grantee that is one of the cluster's users is a role of the cluster
    pillar = pillar_with(pg_default_privileges=["GRANT SELECT ON TABLES TO dbuser_meta"])
    users = pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_users"]
    users.append({"name": "dbuser_meta", "password": "Meta.Secret", "login": False})
    assert inv.validate(pillar) == []
    # Pigsty v1.5.1's own lines equal ours: mapped, nothing written; others are carried over
    import pigsty_import as imp
    doc = imp.load(os.path.join(REPO, "tests", "data", "pigsty-v1.5.1.yml"))
    result = imp.convert(doc)
    row = [r for r in result["rows"] if r["param"] == "pg_default_privileges"][0]
    assert row["status"] == "mapped" and "same as ours" in row["detail"]
    doc["all"]["vars"]["pg_default_privileges"] = ["GRANT SELECT ON TABLES TO dbrole_readonly"]
    result = imp.convert(doc)
    assert result["public"]["pigsty"]["vars"]["pg_default_privileges"] == \
        ["GRANT SELECT ON TABLES TO dbrole_readonly"]
