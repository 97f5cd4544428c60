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
                      "host replication replicator 10.0.0.0/8 scram-sha-256"):
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
    problems = hba.rule_problems({"user": "+dbrole_readonly", "db": "all", "addr": "intra", "auth": "ssl"},
                                 "pgb", pgbouncer=True)
    assert any("pgb:user:" in p for p in problems) and any("pgb:auth:" in p for p in problems)


def test_pgbouncer_lines_have_no_ident_map():
    out = hba.pgbouncer_lines(conf())
    assert out[0] == "local pgbouncer postgres peer"
    assert "host all postgres 0.0.0.0/0 reject" in out
