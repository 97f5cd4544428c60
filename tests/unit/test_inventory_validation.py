"""Pillar validation: the default inventory is valid, and each kind of bad input is refused
with a message that names the cluster, member and field."""
import pytest

import pigsty_inventory as inv
from pillar_fixture import default_pillar


def problems_of(pillar, private=None):
    return inv.validate(pillar, private)


def one_problem(pillar, *fragments, private=None):
    problems = problems_of(pillar, private)
    matching = [p for p in problems if all(f in p for f in fragments)]
    assert matching, "no problem mentions %s; got %s" % (fragments, problems)
    return matching[0]


def test_default_pillar_is_valid():
    assert problems_of(default_pillar()) == []


def test_check_returns_inventory_or_raises():
    assert "clusters" in inv.check(default_pillar())
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.12"]["pg_seq"] = 1
    with pytest.raises(inv.InventoryError) as err:
        inv.check(pillar)
    assert "pg-test" in str(err.value) and "pg_seq" in str(err.value)


def test_missing_inventory():
    one_problem({}, "pigsty:", "missing")


def test_duplicate_pg_seq_names_cluster_member_and_field():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.12"]["pg_seq"] = 1
    msg = one_problem(pillar, "pigsty:clusters:pg-test:hosts:10.10.10.12:pg_seq", "duplicate")
    assert "10.10.10.11" in msg


def test_no_primary():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.11"]["pg_role"] = "replica"
    one_problem(pillar, "pigsty:clusters:pg-test:hosts", "no primary")


def test_two_primaries():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.12"]["pg_role"] = "primary"
    msg = one_problem(pillar, "pigsty:clusters:pg-test:hosts", "2 primaries")
    assert "10.10.10.11" in msg and "10.10.10.12" in msg


def test_unknown_role():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.13"]["pg_role"] = "master"
    one_problem(pillar, "pg-test:hosts:10.10.10.13:pg_role", "unknown role 'master'",
                "primary, replica, offline, standby")


def test_a_standby_member_needs_synchronous_replication():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.13"]["pg_role"] = "standby"
    one_problem(pillar, "pg-test:hosts:10.10.10.13:pg_role", "standby is a synchronous standby",
                "pg_rpo: 0 or pg_conf: crit")
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_rpo"] = 0
    assert problems_of(pillar) == []


def test_a_delayed_member_is_refused_with_what_to_build_instead():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.13"]["pg_role"] = "delayed"
    one_problem(pillar, "pg-test:hosts:10.10.10.13:pg_role: delayed", "pg_upstream and pg_delay")


def test_member_on_unknown_node():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.14"] = {"pg_seq": 4, "pg_role": "replica"}
    one_problem(pillar, "pigsty:clusters:pg-test:hosts:10.10.10.14", "no node has this address")


def test_node_in_two_clusters():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-meta"]["hosts"]["10.10.10.11"] = {"pg_seq": 2, "pg_role": "replica"}
    one_problem(pillar, "10.10.10.11", "already a member of cluster")


@pytest.mark.parametrize("name", ["PG-Test", "pg_test", "1pg", "pg-", "x" * 70, "pg test"])
def test_bad_cluster_name(name):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"][name] = pillar["pigsty"]["clusters"].pop("pg-test")
    one_problem(pillar, "pigsty:clusters:%s" % name, "bad cluster name")


@pytest.mark.parametrize("name", ["retcode", "comment"])
def test_reserved_cluster_name(name):
    """pigsty_ha.reconcile_all returns {cluster: ...}: salt-run would read these as its own."""
    pillar = default_pillar()
    pillar["pigsty"]["clusters"][name] = pillar["pigsty"]["clusters"].pop("pg-test")
    one_problem(pillar, "pigsty:clusters:%s" % name, "reserved cluster name")


@pytest.mark.parametrize("name", ["Robert'); DROP TABLE x;--", "a b", "1user", "", "UPPER"])
def test_bad_user_name(name):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_users"][0]["name"] = name
    one_problem(pillar, "pigsty:clusters:pg-test:vars:pg_users[0]:name", "bad user name")


def test_bad_database_name():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_databases"][0]["name"] = 'te"st'
    one_problem(pillar, "pg-test:vars:pg_databases[0]:name", "bad database name")


def test_database_owner_must_exist():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_databases"][0]["owner"] = "nobody"
    one_problem(pillar, "pg-test:vars:pg_databases[test]:owner", "not a user of this cluster")


def test_port_clash_between_parameters():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pgbouncer_port"] = 5432
    one_problem(pillar, "pigsty:clusters:pg-test:vars", "port 5432", "pgbouncer_port", "pg_port")


def test_port_clash_with_default_service():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_services"] = [{"name": "standby", "port": 5434}]
    one_problem(pillar, "pg-test:vars", "port 5434", "service standby", "default service replica")


def test_bad_port_value():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_port"] = 70000
    one_problem(pillar, "pg-test:vars:pg_port", "expected a port number")


def test_vip_outside_members_network():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_vip_address"] = "10.10.20.3/24"
    one_problem(pillar, "pigsty:clusters:pg-test:vars:pg_vip_address", "outside the VIP's network")


def test_vip_equal_to_node_address():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_vip_address"] = "10.10.10.12/24"
    one_problem(pillar, "pg-test:vars:pg_vip_address", "address of node node-2")


def test_vip_shared_by_two_clusters():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_vip_address"] = "10.10.10.2/24"
    one_problem(pillar, "pg_vip_address", "also the VIP of cluster")


@pytest.mark.parametrize("value", ["10.10.10.3", "10.10.10.300/24", "vip"])
def test_vip_malformed(value):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_vip_address"] = value
    one_problem(pillar, "pg-test:vars:pg_vip_address", "expected ADDRESS/PREFIX")


def test_vip_enabled_without_address():
    pillar = default_pillar()
    del pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_vip_address"]
    one_problem(pillar, "pg-test:vars:pg_vip_address", "no address")


@pytest.mark.parametrize("secret", ["pg_admin_password", "pg_replication_password", "pg_monitor_password",
                                    "patroni_password"])
def test_missing_system_password(secret):
    pillar = default_pillar()
    del pillar["pigsty"]["clusters"]["pg-test"]["vars"][secret]
    msg = one_problem(pillar, "pigsty:clusters:pg-test:vars:%s" % secret, "missing password")
    assert "Sandbox." not in msg


def test_patroni_password_in_the_global_vars_is_refused():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["patroni_password"] = "Everyone.Reads.This"
    msg = one_problem(pillar, "pigsty:vars:patroni_password", "private pillar file")
    assert "Everyone.Reads.This" not in msg


@pytest.mark.parametrize("username", ["", "a:b", "x y", 7])
def test_a_patroni_username_basic_auth_cannot_carry_is_refused(username):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["patroni_username"] = username
    one_problem(pillar, "pigsty:clusters:pg-test:vars:patroni_username", "expected letters")


def test_missing_user_password():
    pillar = default_pillar()
    del pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_users"][0]["password"]
    one_problem(pillar, "pg-test:vars:pg_users[test]:password", "missing password")


def test_nologin_role_needs_no_password():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_users"].append({"name": "role_x", "login": False})
    assert problems_of(pillar) == []


def test_password_in_global_vars_refused():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["pg_admin_password"] = "shared"
    msg = one_problem(pillar, "pigsty:vars:pg_admin_password", "private pillar file")
    assert "shared" not in msg


def test_unknown_fields_refused():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_vip_adress"] = "10.10.10.3/24"
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.12"]["pg_rol"] = "replica"
    pillar["pigsty"]["nodes"]["node-1"]["addr"] = "x"
    one_problem(pillar, "pg-test:vars:pg_vip_adress", "unknown parameter")
    one_problem(pillar, "pg-test:hosts:10.10.10.12:pg_rol", "unknown field")
    one_problem(pillar, "pigsty:nodes:node-1:addr", "unknown field")


def test_nodes_checks():
    pillar = default_pillar()
    pillar["pigsty"]["nodes"]["node-3"]["ip"] = "10.10.10.12"
    pillar["pigsty"]["nodes"]["meta"]["meta"] = False
    one_problem(pillar, "pigsty:nodes:node-3:ip", "also the address of node node-2")
    one_problem(pillar, "pigsty:nodes", "no meta node")


@pytest.mark.parametrize("key,value,fragment", [
    ("pg_rto_plan", "turbo", "unknown HA timing plan 'turbo'"),
    ("pg_conf", "web", "unknown tuning profile 'web'"),
    ("pg_rpo", -1, "non-negative number of bytes"),
    ("pg_version", 16, "expected 15"),
])
def test_bad_ha_and_tuning_parameters(key, value, fragment):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"][key] = value
    one_problem(pillar, "pg-test:vars:%s" % key, fragment)


def test_cluster_key_and_pg_cluster_must_agree():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_cluster"] = "pg-prod"
    one_problem(pillar, "pg-test:vars:pg_cluster", "differs")


def test_minion_view_checks_only_its_own_private_part():
    # a pg-test member receives pg-test's private file only: pg-meta's passwords are absent
    pillar = default_pillar(clusters={"pg-test"})
    assert problems_of(pillar, private={"pg-test"}) == []
    assert any("pg-meta" in p and "missing password" in p for p in problems_of(pillar))


def test_every_problem_is_reported_at_once():
    pillar = default_pillar()
    hosts = pillar["pigsty"]["clusters"]["pg-test"]["hosts"]
    hosts["10.10.10.12"]["pg_seq"] = 1
    hosts["10.10.10.13"]["pg_role"] = "boss"
    with pytest.raises(inv.InventoryError) as err:
        inv.check(pillar)
    assert len(err.value.problems) == 2
