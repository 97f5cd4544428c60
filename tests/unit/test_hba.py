"""HBA rules in Pigsty's model: validation names the field; rendering keeps order, role
filters, and never lets a pillar rule lock out the admin or replication paths."""
import pytest

import pigsty_hba as hba
import pigsty_inventory as inv
from pillar_fixture import default_pillar


def conf(minion="node-1", **cluster_vars):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"].update(cluster_vars)
    return inv.instance_config(pillar, minion)


def test_a_deny_all_rule_cannot_lock_out_admin_and_replication():
    lockout = [{"user": "all", "db": "all", "addr": "world", "auth": "deny", "order": 1, "title": "deny everything"}]
    rendered = [l for l in hba.lines(hba.default_postgres_rules(conf()) + lockout, conf()) if not l.startswith("#")]
    deny_at = rendered.index("host all all 0.0.0.0/0 reject")
    for protected in ("local all postgres peer map=pigsty",
                      "host replication replicator 127.0.0.1/32 scram-sha-256",
                      "hostssl replication replicator 10.0.0.0/8 scram-sha-256"):   # pg_ssl_required (sandbox)
        assert rendered.index(protected) < deny_at


def test_user_rules_sorted_by_order_after_protected_ones():
    rules = [{"user": "b", "db": "all", "addr": "intra", "auth": "pwd", "order": 900, "title": "b"},
             {"user": "a", "db": "all", "addr": "10.20.0.0/16", "auth": "ssl", "order": 50, "title": "a"}]
    out = [l for l in hba.lines(rules, conf()) if not l.startswith("#")]
    assert out == ["hostssl all a 10.20.0.0/16 scram-sha-256", "host all b 10.0.0.0/8 scram-sha-256",
                   "host all b 172.16.0.0/12 scram-sha-256", "host all b 192.168.0.0/16 scram-sha-256"]


@pytest.mark.parametrize("role,on_primary,on_replica", [("primary", True, False), ("replica", False, True),
                                                        ("common", True, True)])
def test_role_filter(role, on_primary, on_replica):
    rule = [{"user": "x", "db": "all", "addr": "intra", "auth": "pwd", "role": role}]
    assert bool(hba.lines(rule, conf("node-1"))) is on_primary
    assert bool(hba.lines(rule, conf("node-2"))) is on_replica


@pytest.mark.parametrize("rule,fragment", [
    ({"user": "x", "db": "all", "addr": "intra", "auth": "md4"}, "[0]:auth: unknown method 'md4'"),
    ({"user": "x'; drop", "db": "all", "addr": "intra", "auth": "pwd"}, "[0]:user:"),
    ({"user": "x", "db": "all", "addr": "10.0.0.300/8", "auth": "pwd"}, "[0]:addr:"),
    ({"user": "x", "db": "all", "addr": "10.0.0.1", "auth": "pwd"}, "[0]:addr:"),
    ({"user": "x", "db": "all", "addr": "intra", "auth": "ident"}, "[0]:auth: ident (peer) works on the local socket only"),
    ({"user": "x", "db": "all", "addr": "intra", "auth": "pwd", "role": "leader"}, "[0]:role: unknown role 'leader'"),
    ({"user": "x", "db": "all", "addr": "intra", "auth": "pwd", "order": "1"}, "[0]:order: expected an integer"),
    ({"user": "x", "db": "all", "addr": "intra", "auth": "pwd", "comment": "c"}, "[0]:comment: unknown field"),
    ({"user": "x", "db": "all", "auth": "pwd"}, "[0]:addr: missing"),
])
def test_bad_rules_are_refused_naming_the_field(rule, fragment):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_hba_rules"] = [rule]
    problems = inv.validate(pillar)
    assert any("pigsty:clusters:pg-test:vars:pg_hba_rules" + fragment in p for p in problems), problems


def test_pgbouncer_rules_have_their_own_limits():
    problems = hba.rule_problems({"user": "+dbrole_readonly", "db": "all", "addr": "intra", "auth": "cert"},
                                 "pgb", pgbouncer=True)
    assert any("pgb:user:" in p for p in problems) and any("pgb:auth:" in p for p in problems)
    # pgbouncer has client TLS: ssl (hostssl + SCRAM) is one of its methods
    assert hba.rule_problems({"user": "app", "db": "all", "addr": "intra", "auth": "ssl"}, "pgb", pgbouncer=True) == []


def test_pgbouncer_lines_have_no_ident_map():
    out = hba.pgbouncer_lines(conf())
    assert out[0] == "local pgbouncer postgres peer"
    assert "host all postgres 0.0.0.0/0 reject" in out


# ------------------------------------------------------------------ SSL (issue 12)
def _ssl_conf(required, minion="node-1"):
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["pg_ssl_required"] = required
    return inv.instance_config(pillar, minion)


def _remote_lines(lines):
    return [l for l in lines if l.startswith(("host ", "hostssl ")) and not
            any(n in l for n in ("127.0.0.1/32", "::1/128"))]


def test_the_admin_always_needs_ssl_remotely():
    lines = [l for l in hba.postgres_lines(_ssl_conf(False)) if " dbuser_dba " in l]
    assert lines and all(l.startswith("hostssl ") and l.endswith("scram-sha-256") for l in lines), lines
    pgb = [l for l in hba.pgbouncer_lines(_ssl_conf(False)) if " dbuser_dba " in l]
    assert pgb and all(l.startswith("hostssl ") for l in pgb), pgb


def test_without_pg_ssl_required_business_may_use_plain_host_rules():
    lines = hba.postgres_lines(_ssl_conf(False))
    assert "host all +dbrole_readonly 10.0.0.0/8 scram-sha-256" in lines
    assert "host replication replicator 10.0.0.0/8 scram-sha-256" in lines


def test_pg_ssl_required_makes_every_remote_password_rule_hostssl():
    for lines in (hba.postgres_lines(_ssl_conf(True, "node-3")), hba.pgbouncer_lines(_ssl_conf(True, "node-3"))):
        remote = _remote_lines(lines)
        password = [l for l in remote if l.endswith("scram-sha-256")]
        assert password and all(l.startswith("hostssl ") for l in password), password
        assert not [l for l in remote if l.startswith("host ") and not l.endswith("reject")]
    lines = hba.postgres_lines(_ssl_conf(True, "node-3"))
    assert "hostssl all +dbrole_readonly 10.0.0.0/8 scram-sha-256" in lines
    assert "hostssl all +dbrole_offline 10.0.0.0/8 scram-sha-256" in lines          # node-3: offline
    assert "hostssl replication replicator 10.0.0.0/8 scram-sha-256" in lines
    # loopback and the local socket need none: nothing crosses a network
    assert "host all +dbrole_readonly 127.0.0.1/32 scram-sha-256" in lines
    assert "local all +dbrole_readonly scram-sha-256" in lines


def test_pg_ssl_required_must_be_a_boolean():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_ssl_required"] = "yes"
    assert "pigsty:clusters:pg-test:vars:pg_ssl_required: expected true or false, got 'yes'" in inv.validate(pillar)


def test_postgres_gets_the_node_certificate():
    import pigsty_pgsql
    params = pigsty_pgsql.patroni_config(_ssl_conf(False), 4096)["postgresql"]["parameters"]
    assert (params["ssl"], params["ssl_cert_file"], params["ssl_key_file"], params["ssl_ca_file"]) == (
        "on", "/etc/pki/pigsty/node.crt", "/etc/pki/pigsty/node.key", "/etc/pki/pigsty/ca.crt")
