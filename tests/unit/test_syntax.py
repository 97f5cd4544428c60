"""pigsty_syntax: every pillar value a configuration file prints is checked for that file's
syntax (hostile values refused, with the pillar path), and passwords are quoted instead."""
import re

import pytest

import pigsty_inventory as inv
import pigsty_syntax as syntax
from pillar_fixture import default_pillar

INJECTED = "roundrobin\n    server evil 6.6.6.6:5432 check"
VPATH = "pigsty:clusters:pg-test:vars"
# Free text that passwords may hold: each reaches only quoted or escaped places.
PASSWORDS = ["with space", "it's", 'dq"uote', "per%cent", "semi;colon", "back\\slash",
             "co:lon", "#hash", "$dollar", "{{ jinja }}", "caf\u00e9 \u00fc", " lead", "trail "]


def with_vars(**values):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"].update(values)
    return pillar


def problems(pillar, private=None):
    return inv.validate(pillar, private)


def service(**fields):
    return with_vars(pg_services=[dict({"name": "standby", "port": 5435}, **fields)])


def test_default_pillar_has_no_syntax_problem():
    assert syntax.validate(default_pillar()["pigsty"]) == []


# ------------------------------------------------------------------ HAProxy services
@pytest.mark.parametrize("field, value", [
    ("balance", INJECTED), ("balance", "roundrobin "), ("balance", "uri"), ("balance", 1),
    ("check", "/primary\n    server evil 6.6.6.6:5432"), ("check", "/primary # x"),
    ("check", "/primary?lag=1;x"), ("check", "/primary?lag=1%0a"), ("check", "primary"),
    ("check", "/etc/passwd"), ("check", "/replica?lag"), ("check", None),
    ("maxconn", "3000\n    server evil 6.6.6.6:5432"), ("maxconn", True), ("maxconn", 0),
    ("maxconn", 10 ** 9), ("maxconn", 3.5),
    ("dest", "pgbouncer\n"), ("dest", "mysql"),
    ("selector", "all\nserver x"), ("selector", "[]"), ("backup", "every"), ("backup", "x y"),
])
def test_hostile_service_field_is_refused(field, value):
    found = [p for p in problems(service(**{field: value}))
             if p.startswith(VPATH + ":pg_services[0]:" + field + ":")]
    assert found, problems(service(**{field: value}))


def test_unknown_service_field_is_refused():
    found = problems(service(options="check inter 1s\n    server evil 6.6.6.6:5432"))
    assert any(p.startswith(VPATH + ":pg_services[0]:options: unknown field") for p in found)


@pytest.mark.parametrize("fields", [
    {"balance": "leastconn", "maxconn": 500, "check": "/replica?lag=10MB", "dest": "postgres",
     "selector": "replica", "backup": "primary"},
    {"check": "/read-only?lag=1048576&tag_key=value", "balance": "static-rr"},
    {"check": "/sync", "selector": "offline", "backup": None},
    {},
])
def test_valid_services_pass(fields):
    assert problems(service(**fields)) == []


def test_injected_line_never_reaches_haproxy_cfg_when_valid():
    """Only validated values reach the template: each service block has one line per
    server, as many as there are members."""
    from test_pgsql_config import conf_of, listen_block, render_haproxy_cfg
    conf = conf_of("node-1", pg_services=[{"name": "standby", "port": 5435, "balance": "leastconn",
                                           "maxconn": 500, "check": "/replica?lag=10MB"}])
    assert syntax.service_problems(conf["pg_services"][0], "x") == []
    block = listen_block(render_haproxy_cfg(conf), "pg-test-standby")
    assert "balance leastconn" in block and "maxconn 500" in block
    assert "uri /replica?lag=10MB" in block
    assert len(re.findall(r"^\s+server ", block, re.M)) == 3


# ------------------------------------------------------------------ vip-manager, Patroni
@pytest.mark.parametrize("key, value", [
    ("pg_vip_interface", "eth1\nip: 6.6.6.6"), ("pg_vip_interface", "eth 1"),
    ("pg_vip_interface", "a" * 16), ("pg_vip_interface", "eth1:0"), ("pg_vip_interface", 1),
    ("pg_namespace", "/service\nfoo: bar"), ("pg_namespace", "service"),
    ("pg_namespace", "/ser vice"), ("pg_namespace", "/service/../x"),
    ("pg_data", "/pg/../etc"), ("pg_data", "pg/data"), ("pg_data", "/pg/data\n"),
    ("pg_data", "/pg/da'ta"), ("pg_data", "/pg/./data"),
])
def test_hostile_node_value_is_refused(key, value):
    found = [p for p in problems(with_vars(**{key: value})) if p.startswith(VPATH + ":" + key)]
    assert found, problems(with_vars(**{key: value}))


def test_valid_node_values_pass():
    assert problems(with_vars(pg_vip_interface="enp0s3.100", pg_namespace="/service/",
                              pg_data="/data/pg-15_main")) == []


def test_global_value_is_checked_where_a_cluster_uses_it():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["pg_vip_interface"] = "eth1\nip: 6.6.6.6"
    found = [p for p in problems(pillar) if p.endswith("got 'eth1\\nip: 6.6.6.6'")]
    assert {p.split(":vars:")[0] for p in found} == {"pigsty:clusters:pg-meta",
                                                      "pigsty:clusters:pg-test"}


# ------------------------------------------------------------------ passwords
@pytest.mark.parametrize("password", PASSWORDS)
def test_printable_passwords_are_accepted(password):
    assert problems(with_vars(pg_monitor_password=password, pg_admin_password=password,
                              pg_replication_password=password)) == []


@pytest.mark.parametrize("password", ["new\nline", "car\rriage", "nul\x00", "tab\tbed", "del\x7f"])
@pytest.mark.parametrize("key", ["pg_monitor_password", "pg_admin_password",
                                 "pg_replication_password", "patroni_password"])
def test_password_with_a_control_character_is_refused_without_showing_it(key, password):
    found = [p for p in problems(with_vars(**{key: password})) if p.startswith(VPATH + ":" + key)]
    assert found and "control character" in found[0]
    assert all(password not in p and repr(password) not in p for p in found)


def test_private_part_is_checked_only_where_asked():
    pillar = with_vars(pg_monitor_password="new\nline")
    assert problems(pillar, private={"pg-meta"}) == []
    assert problems(pillar, private={"pg-test"})


def _parse_pgpass(line):
    """A pgpass line as libpq splits it: unescaped ':' separates, '\\x' stands for x."""
    fields, current, chars = [], "", iter(line)
    for ch in chars:
        if ch == "\\":
            current += next(chars)
        elif ch == ":" and len(fields) < 4:
            fields.append(current)
            current = ""
        else:
            current += ch
    return fields + [current]


@pytest.mark.parametrize("password", PASSWORDS + ["a:b:c\\:d", "\\", ":"])
def test_pgpass_line_round_trips(password):
    line = syntax.pgpass_line("dbuser_monitor", password, port=5432)
    assert "\n" not in line
    assert _parse_pgpass(line) == ["*", "5432", "*", "dbuser_monitor", password]


@pytest.mark.parametrize("password", ["new\nline", "x\r", "\x00"])
def test_pgpass_line_refuses_control_characters_without_showing_them(password):
    with pytest.raises(ValueError) as err:
        syntax.pgpass_line("dbuser_monitor", password)
    assert password not in str(err.value)


# ------------------------------------------------------------------ pgbouncer, users, databases
def _users(*extra):
    return with_vars(pg_users=[dict({"name": "test", "password": "Sandbox.Test",
                                     "pgbouncer": True}, **e) for e in extra])


@pytest.mark.parametrize("field, value", [
    ("pool_mode", "transaction\nadmin_users = evil"), ("pool_mode", "txn"),
    ("pool_connlimit", "10; x"), ("pool_connlimit", -2), ("pool_connlimit", True),
    ("pgbouncer", "yes"),
])
def test_hostile_pgbouncer_user_field_is_refused(field, value):
    path = VPATH + ":pg_users[test]:" + field + ":"
    assert any(p.startswith(path) for p in problems(_users({field: value})))


def test_pool_fields_pass():
    assert problems(_users({"pool_mode": "session", "pool_connlimit": 50})) == []


def test_user_and_database_specs_are_checked_before_anything_changes():
    pillar = _users({"connlimit": "many", "colour": "red", "password": "p w'%;"})
    found = [p for p in problems(pillar) if p.startswith(VPATH + ":pg_users[test]: ")]
    assert len(found) == 1
    assert "connlimit: expected" in found[0] and "colour: unknown field" in found[0]
    assert "p w'%;" not in found[0]
    pillar = with_vars(pg_databases=[{"name": "test", "owner": "test", "pgbouncer": "yes",
                                      "encoding": "UTF8\n"}])
    found = [p for p in problems(pillar) if p.startswith(VPATH + ":pg_databases[test]: ")]
    assert len(found) == 1 and "pgbouncer: expected" in found[0] and "encoding" in found[0]


def test_malformed_structures_are_left_to_the_inventory_checks():
    for pillar in (with_vars(pg_services="nope"), with_vars(pg_services=["nope"]),
                   with_vars(pg_users=[{"name": "Bad Name"}, "x"]), with_vars(pg_databases=5)):
        assert syntax.validate(pillar["pigsty"]) == []
    assert syntax.validate({"clusters": "x"}) == [] and syntax.validate({}) == []
