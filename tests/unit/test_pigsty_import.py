"""Import of Pigsty inventories (issue 14): Pigsty v1.5.1's own inventory and a v2-shaped one
become our pillar with no validation problem; every parameter met has a row (mapped,
changed, not supported, skipped); secrets land only in the private files; test=True writes
nothing; bad input is refused, with the field named, before anything is written."""
import copy
import os
import stat

import pytest
import yaml

import pigsty_import as imp
import pigsty_import_catalog as catalog
import pigsty_import_rules as rules
import pigsty_inventory as inv
from loader import load_module
from pillar_fixture import REPO, merge

DATA = os.path.join(REPO, "tests", "data")
V1 = os.path.join(DATA, "pigsty-v1.5.1.yml")
V1_EXAMPLE = os.path.join(DATA, "pigsty-v1.5.1-example-pg-test.yml")
V2 = os.path.join(DATA, "pigsty-v2-shape.yml")


def convert(path, **kwargs):
    return imp.convert(imp.load(path), **kwargs)


def merged(result):
    pillar = copy.deepcopy(result["public"])
    for private in result["private"].values():
        pillar = merge(pillar, private)
    return pillar


def rows_by_key(result):
    out = {}
    for r in result["rows"]:
        out.setdefault((r["scope"], r["param"]), []).append(r)
    return out


def one_row(result, scope, param):
    rows = rows_by_key(result).get((scope, param))
    assert rows, "no row for %s %s; rows: %s" % (scope, param, sorted(rows_by_key(result))[:40])
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture(scope="module")
def v1():
    return convert(V1)


@pytest.fixture(scope="module")
def v2():
    return convert(V2)


@pytest.fixture
def runner(tmp_path):
    root = tmp_path / "pillar"
    root.mkdir()
    mod = load_module("_runners/pigsty.py", opts={"pillar_roots": {"base": [str(root)]}}, context={})
    mod.root = root
    return mod


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("path", [V1, V2])
def test_the_result_passes_our_validation(path):
    result = convert(path)
    assert inv.validate(merged(result)) == []
    # and each minion's view: the public part plus its own cluster's private part
    for cluster, private in result["private"].items():
        assert inv.validate(merge(result["public"], private), private={cluster}) == []


def test_the_written_files_pass_our_validation(runner):
    out = runner.import_(path=V1)
    assert out["result"] is True, out
    pillar = yaml.safe_load((runner.root / "pigsty.sls").read_text())
    for name in ("pg-meta", "pg-test"):
        pillar = merge(pillar, yaml.safe_load((runner.root / "clusters" / ("%s.sls" % name)).read_text()))
    assert inv.validate(pillar) == []
    assert sorted(pillar["pigsty"]["clusters"]) == ["pg-meta", "pg-test"]


def test_a_lone_cluster_file_needs_a_meta_node():
    with pytest.raises(imp.Refused) as err:
        convert(V1_EXAMPLE)
    assert err.value.field == "all.children.meta" and "meta=IP" in str(err.value)
    result = convert(V1_EXAMPLE, meta="10.10.10.10")
    assert inv.validate(merged(result)) == []
    assert one_row(result, "nodes", "10.10.10.11")["detail"].startswith("minion id pg-test-1")
    # no system password in that file: generated, and said so
    row = one_row(result, "pg-test", "pg_admin_password")
    assert row["status"] == "changed" and "generated" in row["detail"]


# ------------------------------------------------------------------ the mapping table
V1_EXPECTED = [
    # (scope, param, status, fragment of the detail)
    ("inventory", "shape", "mapped", "v1"),
    ("nodes", "10.10.10.10", "changed", "pg-meta-1"),
    ("nodes", "10.10.10.13", "changed", "pg-test-3"),
    ("pg-meta host 10.10.10.10", "pg_seq", "mapped", "pg-meta-1"),
    ("pg-test host 10.10.10.13", "pg_offline_query", "mapped", "true"),
    ("all.vars", "pg_version", "changed", "14 -> 15"),
    ("pg-meta", "pg_version", "changed", "Debian 12"),
    ("all.vars", "pg_conf", "changed", "tiny.yml -> tiny"),
    ("all.vars", "pg_namespace", "mapped", "/pg"),
    ("all.vars", "pg_dbsu", "mapped", "postgres"),
    ("all.vars", "haproxy_exporter_port", "changed", "haproxy_admin_port"),
    ("all.vars", "pg_dcs_type", "changed", "consul -> etcd"),
    ("all.vars", "dcs_servers", "mapped", "meta-1: 10.10.10.10"),
    ("all.vars", "node_dns_method", "changed", "add -> none"),
    ("all.vars", "node_repo_method", "changed", "node_repo_local"),
    ("all.vars", "prometheus_options", "changed", "prometheus_retention"),
    ("all.vars", "nginx_upstream", "changed", "infra_portal"),
    ("all.vars", "patroni_watchdog_mode", "mapped", "automatic: Patroni uses /dev/watchdog"),
    ("pg-meta", "patroni_watchdog_mode", "mapped", "off: Patroni runs without a watchdog"),
    ("all.vars", "pg_listen", "mapped", "0.0.0.0"),
    ("all.vars", "pg_checksum", "mapped", "false"),
    ("all.vars", "pg_lc_ctype", "mapped", "en_US.UTF8"),
    ("pg-meta", "pg_lc_ctype", "mapped", "en_US.UTF8"),
    ("all.vars", "pg_locale", "mapped", "C"),
    ("all.vars", "pg_encoding", "mapped", "UTF8"),
    ("all.vars", "pgbouncer_poolmode", "mapped", "transaction"),
    ("all.vars", "pg_weight", "mapped", "100"),
    ("all.vars", "pg_default_schemas", "mapped", "monitor"),
    ("all.vars", "pg_default_extensions", "changed", "left out pg_qualstats, pg_repack"),
    ("all.vars", "node_timezone", "mapped", "Asia/Hong_Kong"),
    ("all.vars", "pg_default_privileges", "mapped", "same as ours"),
    ("pg-meta", "vip_mode", "changed", "pg_vip_enabled"),
    ("pg-meta", "vip_address", "changed", "10.10.10.2/8"),
    ("pg-test", "vip_interface", "changed", "eth1"),
    ("pg-meta (from all.vars)", "pg_admin_password", "changed", "private file"),
    ("pg-meta", "pg_users[dbuser_meta]", "changed", "md5 hash"),
    ("pg-meta", "pg_users[dbuser_view]", "changed", "SCRAM"),
    ("pg-test (from all.vars)", "pg_default_roles[dbuser_stats]", "changed", "added to pg_users"),
    ("pg-test (from all.vars)", "pg_default_roles[dbrole_readonly]", "mapped", "built-in"),
    ("pg-meta", "pg_databases[meta]", "changed", "baseline"),
    ("pg-meta", "pg_databases[grafana]", "mapped", "private file"),
    ("pg-test (from all.vars)", "pg_hba_rules[0] 'allow meta node password access'", "changed", "md5 -> scram"),
    ("pg-test (from all.vars)", "pg_hba_rules[3] 'allow local read/write (local production user via pgbouncer)'",
     "mapped", "built-in"),
    ("pg-meta", "pg_hba_rules_extra[0] 'allow grafana bytebase kong intranet access'", "changed",
     "dbuser_kong kong 10.0.0.0/8 pwd"),
    ("pg-test (from all.vars)", "pg_services[primary]", "mapped", "built-in"),
    ("pg-test (from all.vars)", "pg_services[replica]", "changed", "members differ"),
    ("pg-test", "pg_services_extra[standby]", "changed", "5435"),
    ("all.vars", "pg_libs", "changed", "left out timescaledb"),
    ("all.vars", "pg_extensions", "unsupported", "EL package names"),
    ("all.vars", "node_tune", "changed", "tiny: our profile of the same name, kernel parameters"),
    ("pg-meta", "node_tune", "changed", "not a tuned profile"),
    ("all.vars", "node_packages", "mapped", "empty"),
    ("all.vars", "node_admin_enabled", "mapped", "true"),
    ("all.vars", "node_admin_uid", "mapped", "88"),
    ("all.vars", "node_admin_username", "mapped", "dba"),
    ("all.vars", "node_admin_ssh_exchange", "unsupported", "no ssh keys are exchanged among the nodes"),
    ("all.vars", "node_admin_pk_current", "unsupported", "no operator's ssh key"),
    ("all.vars", "node_admin_pk_list", "changed", "Pigsty's Vagrant sandbox key, published with Pigsty"),
    ("pg-meta", "node_crontab", "unsupported", "Pigsty's own scripts (/pg/bin)"),
    ("all.vars", "node_crontab", "mapped", "empty"),
    ("all.vars", "node_crontab_overwrite", "mapped", "true"),
    ("all.vars", "pgbouncer_max_db_conn", "mapped", "100"),
    ("all.vars", "grafana_admin_password", "unsupported", "not shown"),
    ("group meta", "ansible_group_priority", "unsupported", "Ansible"),
    ("group meta", "meta_node", "mapped", "meta"),
    ("all.vars", "redis_mode", "skipped", "Redis"),
    ("all.vars", "loki_retention", "changed", "15d -> log_retention_time: 15d"),
    ("all.vars", "loki_endpoint", "changed", "-> https://10.10.10.10:19532"),
    ("all.vars", "loki_enabled", "mapped", "same as the value of group meta (true)"),
    ("group meta", "loki_enabled", "changed", "Loki -> systemd-journal-remote on the first meta node (pg-meta-1)"),
    ("all.vars", "promtail_enabled", "changed", "Promtail -> systemd-journal-upload on every node"),
    ("all.vars", "loki_data_dir", "unsupported", "/var/log/journal/remote"),
    ("all.vars", "promtail_positions", "unsupported", "/var/lib/systemd/journal-upload/state"),
    ("all.vars", "promtail_port", "unsupported", "listens on no port"),
    ("all.vars", "promtail_clean", "mapped", "same as ours"),
    ("group redis-test", "(group)", "skipped", "Redis (2 hosts)"),
    ("group redis-common", "(group)", "skipped", "Redis"),
]


@pytest.mark.parametrize("scope,param,status,fragment", V1_EXPECTED)
def test_v1_mapping_table(v1, scope, param, status, fragment):
    row = one_row(v1, scope, param)
    assert row["status"] == status, row
    assert fragment in row["detail"], row


def test_v1_counts_and_summary(v1):
    counts = v1["counts"]
    assert v1["shape"] == "v1"
    assert sum(counts.values()) == len(v1["rows"])
    assert counts["mapped"] >= 130 and counts["changed"] >= 60 and counts["unsupported"] >= 80
    assert counts["skipped"] >= 20
    assert v1["summary"].startswith("2 cluster(s), 4 node(s); %d rows (parameters and their entries): "
                                    "%d mapped" % (len(v1["rows"]), counts["mapped"]))


def _all_keys(doc):
    """(scope prefix, key) of every parameter of an inventory: global, group and host vars."""
    out = [("all.vars", k) for k in doc["all"].get("vars") or {}]
    for name, group in doc["all"]["children"].items():
        out += [(name, k) for k in (group.get("vars") or {})]
        for host, hv in (group.get("hosts") or {}).items():
            out += [("%s host %s" % (name, host), k) for k in (hv or {})]
    return out


@pytest.mark.parametrize("path", [V1, V2])
def test_nothing_is_dropped_silently(path):
    """Every parameter met has a row (in a skipped group, the group's row stands for them)."""
    result = convert(path)
    params = {(r["scope"], r["param"]) for r in result["rows"]}
    skipped_groups = {r["scope"][len("group "):] for r in result["rows"] if r["param"] == "(group)"}
    missing = []
    for scope, key in _all_keys(imp.load(path)):
        group = scope.split(" host ")[0]
        if group in skipped_groups or scope == "all.vars" and key in ("pg_users", "pg_databases"):
            continue
        if not any(p == key and (s == scope or s.startswith(scope.split(" ")[0] + " ")
                                 or s.startswith("group " + group) or s.endswith("(from all.vars)")
                                 or s.startswith(group + " (from"))
                   for s, p in params):
            missing.append((scope, key))
    assert missing == []
    assert all(r["status"] in imp.STATUSES for r in result["rows"])


# ------------------------------------------------------------------ secrets
def _secret_values(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _secret_values(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _secret_values(v, key)
    elif isinstance(node, str) and catalog.SECRET_NAME_RE.search(key) and node:
        yield node


def _public_values(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from _public_values(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _public_values(v, key)
    elif not catalog.SECRET_NAME_RE.search(key):
        yield str(node)


@pytest.mark.parametrize("path", [V1, V2, V1_EXAMPLE])
def test_secrets_only_in_the_private_files(path):
    doc = imp.load(path)
    result = imp.convert(doc, meta="10.10.10.10")
    files = imp.render_files(result)
    public = files["pigsty.sls"][0]
    table = "\n".join(imp.table_lines(result["rows"]))
    # a value that the inventory also uses in the open (e.g. "pigsty") is not a secret
    open_values = set(_public_values(doc))
    secrets = {s for s in _secret_values(doc) if s not in open_values}
    private = merged(result)
    generated = {v for c in private["pigsty"]["clusters"].values() for k, v in c["vars"].items()
                 if k.endswith("_password")}
    generated |= {u["password"] for c in private["pigsty"]["clusters"].values()
                  for u in c["vars"].get("pg_users", []) if "password" in u}
    carried = (secrets | generated) - open_values
    assert len(carried) >= 3
    for value in carried:
        assert value not in public, "a secret is in the public file"
        assert value not in table, "a secret is in the table"
    assert not any(k.endswith("_password") for k in result["public"]["pigsty"]["vars"])
    for cluster in result["public"]["pigsty"]["clusters"].values():
        assert not any("password" in k or k in ("pg_users", "pg_databases", "pg_hba_rules", "pgb_hba_rules")
                       for k in cluster["vars"])


def test_private_files_hold_the_carried_secrets(v1):
    files = imp.render_files(v1)
    meta = files[os.path.join("clusters", "pg-meta.sls")][0]
    test = files[os.path.join("clusters", "pg-test.sls")][0]
    for value in ("DBUser.DBA", "DBUser.Monitor", "DBUser.Replicator", "DBUser.Stats"):
        assert value in meta and value in test
    for value in ("DBUser.Viewer", "DBUser.Grafana", "DBUser.Bytebase", "DBUser.Kong"):
        assert value in meta and value not in test
    # an md5 hash cannot become SCRAM: replaced by a generated password, never kept
    assert "md5d3d10d8cad606308bdb180148bf663e1" not in meta
    assert files[os.path.join("clusters", "pg-meta.sls")][1] == 0o600
    assert files["pigsty.sls"][1] == 0o644


# ------------------------------------------------------------------ the v2 shape
V2_EXPECTED = [
    ("inventory", "shape", "mapped", "v2"),
    ("nodes", "10.20.0.10", "mapped", "admin-1"),
    ("nodes", "10.20.0.11", "mapped", "db-a"),
    ("nodes", "10.20.0.12", "changed", "pg-test-2"),
    ("group etcd", "hosts", "mapped", "meta nodes"),
    ("pg-meta", "pg_vip_address", "mapped", "10.20.0.2/24"),
    ("pg-test", "pg_rto", "changed", "norm"),
    ("pg-test", "pg_rpo", "mapped", "0"),
    ("all.vars", "pg_version", "changed", "16 -> 15"),
    ("all.vars", "infra_portal", "changed", "blackbox, loki"),
    ("pg-test", "pg_admin_password", "mapped", "private file"),
    ("pg-test (from all.vars)", "pg_monitor_password", "changed", "moved"),
    ("pg-meta", "pg_users[dbuser_app]", "changed", "SCRAM-SHA-256 verifier"),
    ("pg-meta", "pg_users[dbuser_report]", "mapped", "private file"),
    ("pg-meta", "pg_users[dbuser_nopass]", "changed", "generated"),
    ("pg-test", "pg_users[test]", "changed", "expire_at left out"),
    ("pg-meta", "pg_databases[app]", "changed", "postgis, vector left out"),
    # PostgreSQL has SSL (the node certificate): a hostssl rule maps as it is
    ("pg-meta", "pg_hba_rules[0] 'application over TLS'", "mapped", "dbuser_app app world ssl"),
    ("all.vars", "dns_records", "changed", "${admin_ip} -> 10.20.0.10"),
    ("pg-meta", "pg_users[dbuser_num]", "changed", "SCRAM"),
    ("pg-meta", "pg_hba_rules[1] 'reports from the BI subnet'", "changed", "md5 -> scram"),
    # our built-in admin rules require SSL: a plain password rule for the admin is kept
    ("pg-meta", "pg_hba_rules[2] 'admin from the admin node'", "changed", "dbuser_dba all 10.20.0.10/32 pwd"),
    ("pg-meta", "pg_hba_rules[3] 'members of the cluster'", "changed", "10.20.0.10/32"),
    ("pg-meta", "pg_hba_rules[5] 'a bad address'", "unsupported", "somewhere"),
    ("pg-meta (from all.vars)", "pg_default_hba_rules[0] 'dbsu access via local os user ident'", "mapped", "built-in"),
    ("pg-meta (from all.vars)", "pg_default_hba_rules[4] 'an auth method we do not have'", "unsupported", "radius"),
    ("pg-meta", "pgb_hba_rules[0] 'app through pgbouncer'", "changed", "intranet -> intra"),
    ("pg-meta (from all.vars)", "pg_default_services[primary]", "changed", "dest default -> pgbouncer"),
    ("pg-meta (from all.vars)", "pg_default_services[offline]", "changed", "members differ: primary: Pigsty not a server, ours backup"),
    ("pg-meta", "pg_services[standby]", "changed", "replica / all"),
    ("pg-meta", "pg_services[reporting]", "mapped", "5440 -> postgres"),
    ("pg-meta", "pg_services[weird]", "unsupported", "6543"),
    ("pg-test host 10.20.0.12", "pg_weight", "mapped", "50 (HAProxy server weight)"),
    ("pg-test host 10.20.0.13", "pg_upstream", "unsupported", "a cascaded replica"),
    ("pg-test (from all.vars)", "patroni_password", "changed", "moved to the cluster's private file"),
    ("all.vars", "pgbackrest_method", "unsupported", "expected one of meta"),
    ("group minio", "(group)", "skipped", "MinIO"),
    ("group pg-citus", "(group)", "skipped", "1 host"),
    ("group redis-ms", "(group)", "skipped", "Redis"),
]


@pytest.mark.parametrize("scope,param,status,fragment", V2_EXPECTED)
def test_v2_mapping_table(v2, scope, param, status, fragment):
    row = one_row(v2, scope, param)
    assert row["status"] == status, row
    assert fragment in row["detail"], row


def test_v2_result(v2):
    public = v2["public"]["pigsty"]
    assert public["nodes"]["admin-1"] == {"ip": "10.20.0.10", "meta": True}
    assert public["clusters"]["pg-test"]["hosts"]["10.20.0.13"] == {"pg_seq": 3, "pg_role": "offline"}
    assert public["clusters"]["pg-test"]["vars"]["pg_rto_plan"] == "norm"
    services = {s["name"]: s for s in public["clusters"]["pg-meta"]["vars"]["pg_services"]}
    assert services["standby"]["selector"] == "replica" and services["standby"]["backup"] == "all"
    assert "weird" not in services
    private = v2["private"]["pg-meta"]["pigsty"]["clusters"]["pg-meta"]["vars"]
    assert {r["addr"] for r in private["pg_hba_rules"]} == {"world", "10.30.0.0/16", "10.20.0.10/32",
                                                            "10.40.0.5/32"}
    assert private["pg_databases"][0]["extensions"] == [{"name": "pg_trgm", "schema": "public"}]
    assert {u["name"]: u.get("password") for u in private["pg_users"]}["dbuser_num"] == "20240101"
    assert public["vars"]["dns_records"] == ["10.20.0.10 i.pigsty"]


# ------------------------------------------------------------------ pieces
@pytest.mark.parametrize("sel,backup,expected", [
    ("[]", None, ("all", None)),
    ("[? pg_role == `primary`]", None, ("primary", None)),
    ("[? pg_role == `offline` || pg_offline_query ]", "[? pg_role == `replica` && !pg_offline_query]",
     ("offline", "replica")),
    ("[]", "[? pg_role == `primary` || pg_role == `offline` ]", ("replica", "all")),
])
def test_selectors_translate_exactly(sel, backup, expected):
    assert rules.translate_selectors(sel, backup)[:2] == expected


def test_a_selector_we_cannot_express_is_refused():
    with pytest.raises(rules.SelectorError):
        rules.translate_selectors("[? pg_seq == `2`]", None)
    with pytest.raises(rules.SelectorError):
        rules.translate_selectors("pg_role", None)


@pytest.mark.parametrize("line,expected", [
    ("host all all 10.0.0.0/8 md5", [{"user": "all", "db": "all", "addr": "10.0.0.0/8", "auth": "pwd"}]),
    ("local all +dbrole_readonly md5", [{"user": "+dbrole_readonly", "db": "all", "addr": "local", "auth": "pwd"}]),
    ("hostssl app u1,u2 192.168.1.0 255.255.255.0 scram-sha-256",
     [{"user": "u1", "db": "app", "addr": "192.168.1.0/24", "auth": "ssl"},
      {"user": "u2", "db": "app", "addr": "192.168.1.0/24", "auth": "ssl"}]),
    ("host all all all reject", [{"user": "all", "db": "all", "addr": "world", "auth": "deny"}]),
])
def test_v1_hba_lines(line, expected):
    assert rules.parse_hba_line(line)[0] == expected


@pytest.mark.parametrize("line", ["host all all samenet md5", "host all all 10.0.0.0/8 ldap",
                                  "hostnossl all all 10.0.0.0/8 md5", "host all @admins 10.0.0.0/8 md5",
                                  "host all all 10.0.0.0/8 md5 clientcert=verify-full"])
def test_v1_hba_lines_we_cannot_translate(line):
    with pytest.raises(ValueError):
        rules.parse_hba_line(line)


def _tiny(**cluster_vars):
    return {"all": {"children": {
        "meta": {"hosts": {"10.1.0.10": {}}},
        "pg-x": {"hosts": {"10.1.0.11": {"pg_seq": 1, "pg_role": "primary"},
                           "10.1.0.12": {"pg_seq": 2, "pg_role": "replica"}},
                 "vars": dict({"pg_cluster": "pg-x"}, **cluster_vars)}},
        "vars": {"pg_admin_password": "A.1", "pg_monitor_password": "M.1",
                 "pg_replication_password": "R.1"}}}


def test_what_validation_refuses_is_left_out_with_its_message():
    result = imp.convert(_tiny(vip_mode="l2", vip_address="192.168.9.9", vip_cidrmask=24,
                               pg_port=5433, pg_dbsu="Postgres"))
    assert inv.validate(merged(result)) == []
    cvars = result["public"]["pigsty"]["clusters"]["pg-x"]["vars"]
    assert "pg_vip_address" not in cvars and "pg_port" not in cvars and "pg_dbsu" not in cvars
    row = one_row(result, "pg-x", "vip_address")
    assert row["status"] == "unsupported" and "outside the VIP's network" in row["detail"]
    assert one_row(result, "pg-x", "pg_port")["status"] == "unsupported"
    assert "safe identifier" in one_row(result, "pg-x", "pg_dbsu")["detail"]


def test_v1_crontab_listen_and_watchdog_are_written_as_pigsty_set_them(v1):
    """Pigsty v1.5.1's values of node_crontab(_overwrite), pg_listen and
    patroni_watchdog_mode land in our pillar (the row tests above: their detail)."""
    gvars = v1["public"]["pigsty"]["vars"]
    assert gvars["pg_listen"] == "0.0.0.0"
    assert gvars["patroni_watchdog_mode"] == "automatic"
    assert gvars["node_crontab_overwrite"] is True
    meta = v1["public"]["pigsty"]["clusters"]["pg-meta"]["vars"]
    assert meta["patroni_watchdog_mode"] == "off"         # YAML's unquoted off (false)
    assert "node_crontab" not in meta                     # its one line runs /pg/bin/pg-backup


def test_crontab_listen_and_watchdog_of_a_cluster_and_a_member():
    doc = _tiny(node_crontab=["*/5 * * * * root /usr/local/bin/check-disk",
                              "0 25 * * * root /bin/true",          # no hour 25
                              "0 1 * * * postgres /pg/bin/pg-backup"],
                node_crontab_overwrite=False, pg_listen="${ip},${lo}",
                patroni_watchdog_mode="require")
    doc["all"]["children"]["pg-x"]["hosts"]["10.1.0.12"]["pg_listen"] = "10.1.0.12"
    doc["all"]["children"]["pg-x"]["hosts"]["10.1.0.11"]["pg_listen"] = "10.9.9.9"  # not its own
    result = imp.convert(doc)
    assert inv.validate(merged(result)) == []
    cls = result["public"]["pigsty"]["clusters"]["pg-x"]
    assert cls["vars"]["node_crontab"] == ["*/5 * * * * root /usr/local/bin/check-disk"]
    assert cls["vars"]["node_crontab_overwrite"] is False
    assert cls["vars"]["pg_listen"] == "${ip},${lo}"
    assert cls["vars"]["patroni_watchdog_mode"] == "required"
    assert cls["hosts"]["10.1.0.12"]["pg_listen"] == "10.1.0.12"
    assert "pg_listen" not in cls["hosts"]["10.1.0.11"]
    row = one_row(result, "pg-x", "node_crontab")
    assert row["status"] == "changed"
    assert "node_crontab[1]: hour field '25'" in row["detail"] and "/pg/bin" in row["detail"]
    assert one_row(result, "pg-x", "patroni_watchdog_mode")["detail"].startswith("require -> required")
    row = one_row(result, "pg-x host 10.1.0.11", "pg_listen")
    assert row["status"] == "unsupported" and "10.9.9.9 is not this member's address" in row["detail"]
    assert one_row(result, "pg-x host 10.1.0.12", "pg_listen")["status"] == "mapped"


def test_standby_role_of_an_asynchronous_cluster_becomes_a_replica():
    doc = _tiny()
    doc["all"]["children"]["pg-x"]["hosts"]["10.1.0.12"]["pg_role"] = "standby"
    result = imp.convert(doc)
    assert result["public"]["pigsty"]["clusters"]["pg-x"]["hosts"]["10.1.0.12"]["pg_role"] == "replica"
    assert "standby -> replica: the cluster replicates asynchronously" in one_row(
        result, "pg-x host 10.1.0.12", "pg_role")["detail"]


def test_standby_role_of_a_synchronous_cluster_stays_a_synchronous_standby():
    doc = _tiny()
    doc["all"]["children"]["pg-x"]["hosts"]["10.1.0.12"]["pg_role"] = "standby"
    doc["all"]["children"]["pg-x"]["vars"]["pg_conf"] = "crit.yml"
    result = imp.convert(doc)
    assert result["public"]["pigsty"]["clusters"]["pg-x"]["hosts"]["10.1.0.12"]["pg_role"] == "standby"
    assert one_row(result, "pg-x host 10.1.0.12", "pg_role")["status"] == "mapped"


def test_delayed_role_becomes_a_replica_and_says_what_to_build():
    doc = _tiny()
    doc["all"]["children"]["pg-x"]["hosts"]["10.1.0.12"]["pg_role"] = "delayed"
    result = imp.convert(doc)
    assert result["public"]["pigsty"]["clusters"]["pg-x"]["hosts"]["10.1.0.12"]["pg_role"] == "replica"
    assert "pg_upstream and pg_delay" in one_row(result, "pg-x host 10.1.0.12", "pg_role")["detail"]


# ------------------------------------------------------------------ refusals
def _bad(mutate):
    doc = _tiny()
    mutate(doc)
    return doc


BAD = [
    ("no clusters", lambda d: d["all"]["children"].pop("pg-x"), "all.children", "no PostgreSQL cluster"),
    ("no primary", lambda d: d["all"]["children"]["pg-x"]["hosts"]["10.1.0.11"].update(pg_role="replica"),
     "all.children.pg-x.hosts", "no primary"),
    ("two primaries", lambda d: d["all"]["children"]["pg-x"]["hosts"]["10.1.0.12"].update(pg_role="primary"),
     "all.children.pg-x.hosts", "2 primaries"),
    ("duplicate pg_seq", lambda d: d["all"]["children"]["pg-x"]["hosts"]["10.1.0.12"].update(pg_seq=1),
     "all.children.pg-x.hosts.10.1.0.12.pg_seq", "duplicate pg_seq 1"),
    ("missing pg_seq", lambda d: d["all"]["children"]["pg-x"]["hosts"]["10.1.0.12"].pop("pg_seq"),
     "all.children.pg-x.hosts.10.1.0.12.pg_seq", "non-negative integer"),
    ("bad role", lambda d: d["all"]["children"]["pg-x"]["hosts"]["10.1.0.12"].update(pg_role="boss"),
     "all.children.pg-x.hosts.10.1.0.12.pg_role", "unknown role 'boss'"),
    ("bad cluster name", lambda d: d["all"]["children"]["pg-x"]["vars"].update(pg_cluster="PG_X"),
     "all.children.pg-x.vars.pg_cluster", "not a cluster name"),
    ("host not an address", lambda d: d["all"]["children"]["pg-x"]["hosts"].update(
        {"db-9": {"pg_seq": 9, "pg_role": "replica"}}), "all.children.pg-x.hosts.db-9", "IPv4"),
    ("no meta group", lambda d: d["all"]["children"].pop("meta"), "all.children.meta", "meta=IP"),
    ("a node in two clusters", lambda d: d["all"]["children"].update(
        {"pg-y": {"hosts": {"10.1.0.12": {"pg_seq": 1, "pg_role": "primary"}}, "vars": {"pg_cluster": "pg-y"}}}),
     "all.children.pg-y.hosts.10.1.0.12", "already a member of cluster pg-x"),
    ("vars not a mapping", lambda d: d["all"].update(vars=["x"]), "all.vars", "mapping"),
]


@pytest.mark.parametrize("name,mutate,field,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_inventories_are_refused_naming_the_field(name, mutate, field, fragment):
    with pytest.raises(imp.Refused) as err:
        imp.convert(_bad(mutate))
    assert err.value.field == field
    assert fragment in str(err.value)


@pytest.mark.parametrize("name,mutate,field,fragment", BAD[:4], ids=[b[0] for b in BAD[:4]])
def test_the_runner_refuses_before_writing(runner, tmp_path, name, mutate, field, fragment):
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(_bad(mutate)))
    out = runner.import_(path=str(path))
    assert out["result"] is False and runner.__context__["retcode"] == 1
    assert field in out["comment"] and fragment in out["comment"] and "nothing written" in out["comment"]
    assert list(runner.root.iterdir()) == []


@pytest.mark.parametrize("content,fragment", [
    (None, "no such file"),
    ("all: [unclosed\n", "is not YAML (line"),
    ("- just\n- a list\n", "not a Pigsty inventory"),
])
def test_unreadable_input_is_refused(runner, tmp_path, content, fragment):
    path = tmp_path / "inv.yml"
    if content is not None:
        path.write_text(content)
    out = runner.import_(path=str(path))
    assert out["result"] is False
    assert out["comment"].startswith("refused, nothing written: path: ") and fragment in out["comment"]
    assert list(runner.root.iterdir()) == []


# ------------------------------------------------------------------ the runner's writes
def test_test_mode_writes_nothing(runner):
    out = runner.import_(path=V1, test=True)
    assert out["result"] is None
    assert "test=True: nothing written" in out["summary"]
    assert list(runner.root.iterdir()) == []
    assert any(line.startswith("changed") and "pg_version" in line for line in out["parameters"])
    assert sorted(os.path.relpath(p, str(runner.root)) for p in out["files"]) == [
        "clusters/pg-meta.sls", "clusters/pg-test.sls", "pigsty.sls", "top.sls"]


def test_writes_the_pillar_root_with_private_files_0600(runner):
    out = runner.import_(path=V1)
    assert out["result"] is True and "wrote 4 files" in out["summary"]
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(runner.root / "clusters" / "pg-meta.sls") == 0o600
    assert mode(runner.root / "clusters" / "pg-test.sls") == 0o600
    assert mode(runner.root / "pigsty.sls") == 0o644
    # the top file is the repository's, which targets each private file to its members
    assert (runner.root / "top.sls").read_text() == open(os.path.join(REPO, "pillar", "top.sls")).read()
    leftovers = [p for p in runner.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_existing_files_are_kept_unless_forced(runner):
    (runner.root / "pigsty.sls").write_text("# mine\n")
    out = runner.import_(path=V1)
    assert out["result"] is False and "force=True" in out["comment"] and "pigsty.sls" in out["comment"]
    assert (runner.root / "pigsty.sls").read_text() == "# mine\n"
    assert not (runner.root / "clusters").exists()
    out = runner.import_(path=V1, test=True)
    assert out["result"] is None and (runner.root / "pigsty.sls").read_text() == "# mine\n"
    out = runner.import_(path=V1, force=True)
    assert out["result"] is True and "overwritten: 1" in out["summary"]
    assert "pg-meta-1" in (runner.root / "pigsty.sls").read_text()


def test_out_directory(runner, tmp_path):
    target = tmp_path / "elsewhere"
    out = runner.import_(path=V2, out=str(target))
    assert out["result"] is True
    assert (target / "pigsty.sls").exists() and (target / "clusters" / "pg-test.sls").exists()
    assert list(runner.root.iterdir()) == []


def test_parent_groups_host_names_and_repeated_groups():
    """Ansible shapes real inventories use: a parent group whose vars reach its children, a
    group listed again under a parent, hosts keyed by name with ansible_host."""
    doc = _tiny()
    groups = doc["all"]["children"]
    groups["meta"] = {"hosts": {"admin": {"ansible_host": "10.1.0.10"}}}
    groups["pgsql"] = {"vars": {"pg_conf": "olap.yml"}, "children": {"pg-x": None}}
    groups["pg-x"]["hosts"] = {"db1": {"ansible_host": "10.1.0.11", "pg_seq": 1, "pg_role": "primary"},
                               "10.1.0.12": {"pg_seq": 2, "pg_role": "replica"}}
    result = imp.convert(doc)
    assert inv.validate(merged(result)) == []
    public = result["public"]["pigsty"]
    assert public["nodes"] == {"admin": {"ip": "10.1.0.10", "meta": True}, "db1": {"ip": "10.1.0.11"},
                               "pg-x-2": {"ip": "10.1.0.12"}}
    assert sorted(public["clusters"]["pg-x"]["hosts"]) == ["10.1.0.11", "10.1.0.12"]
    assert public["clusters"]["pg-x"]["vars"]["pg_conf"] == "olap"
    assert one_row(result, "pg-x (from a parent group)", "pg_conf")["status"] == "changed"
    assert "a parent of pg-x" in one_row(result, "group pgsql", "(group)")["detail"]


ODD_VALUES = [None, 1, -1, "x", "", [], {}, ["a"], {"a": 1}, True, 3.5, "10.10.10.300", [{"name": 1}],
              [None], "UPPER-Case", {"name": "x"}]


@pytest.mark.parametrize("path", [V1, V2])
def test_malformed_values_are_reported_never_a_crash(path):
    """Any value replaced by one of the wrong kind (or removed): the import either refuses
    with Refused, or gives a result that passes validation."""
    import random
    rnd = random.Random(14)
    doc = imp.load(path)

    def paths(node, p=()):
        if p:
            yield p
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            yield from paths(v, p + (k,))

    every = list(paths(doc))
    for _case in range(80):
        d = copy.deepcopy(doc)
        for _ in range(rnd.randint(1, 3)):
            p = rnd.choice(every)
            try:
                node = d
                for k in p[:-1]:
                    node = node[k]
                if rnd.random() < 0.3:
                    del node[p[-1]]
                else:
                    node[p[-1]] = copy.deepcopy(rnd.choice(ODD_VALUES))
            except (KeyError, IndexError, TypeError):
                continue
        try:
            result = imp.convert(d, meta="10.10.10.10")
        except imp.Refused:
            continue
        assert inv.validate(merged(result)) == []
        imp.render_files(result)


def test_written_files_read_back_through_jinja_and_yaml():
    """Salt renders pillar files with Jinja, then YAML: every value reads back as imported,
    including a password that holds Jinja's markers."""
    import jinja2
    doc = _tiny()
    doc["all"]["vars"]["pg_admin_password"] = "p{{w}}{%d%}#"
    doc["all"]["children"]["pg-x"]["vars"]["pg_users"] = [{"name": "u1", "password": "it's: {# x #} 'q' \"d\""}]
    result = imp.convert(doc)
    for rel, (text, _mode) in imp.render_files(result).items():
        loaded = yaml.safe_load(jinja2.Template(text, keep_trailing_newline=True).render())
        expected = result["public"] if rel == "pigsty.sls" else result["private"][rel[len("clusters/"):-4]]
        assert loaded == expected
    for path in (V1, V2):
        result = convert(path)
        for rel, (text, _mode) in imp.render_files(result).items():
            assert "{% raw %}" not in text
            expected = result["public"] if rel == "pigsty.sls" else result["private"][rel[len("clusters/"):-4]]
            assert yaml.safe_load(jinja2.Template(text).render()) == expected


# ------------------------------------------------------------------ logs (Loki, Promtail; v4: VictoriaLogs, Vector)
META_ID = "node-10-1-0-10"    # _tiny's meta node (no nodename): the first, so the logs' sink


def _logs_inventory(gvars, mvars, cvars, meta="meta"):
    doc = _tiny(**cvars)
    groups = doc["all"]["children"]
    groups[meta] = dict(groups.pop("meta"), vars=dict(mvars))
    doc["all"]["vars"].update(gvars)
    return doc


LOG_ROWS = [
    # (id, all.vars, meta group vars, pg-x vars, (scope, param, status, fragment of the detail),
    #  what pigsty:vars gets: {param: value, or None: not written})
    ("loki on", {"loki_enabled": True}, {}, {},
     ("all.vars", "loki_enabled", "changed", "true -> log_collect: true: Loki -> systemd-journal-remote "
      "on the first meta node (%s)" % META_ID), {"log_collect": True}),
    ("loki off", {"loki_enabled": False}, {}, {},
     ("all.vars", "loki_enabled", "changed", "false -> log_collect: false: no logs are collected"),
     {"log_collect": False}),
    ("promtail on", {"promtail_enabled": True}, {}, {},
     ("all.vars", "promtail_enabled", "changed", "Promtail -> systemd-journal-upload on every node"),
     {"log_collect": True}),
    ("loki on, promtail off", {"loki_enabled": True, "promtail_enabled": False}, {}, {},
     ("all.vars", "loki_enabled", "changed", "true, but promtail_enabled is false -> log_collect: false"),
     {"log_collect": False}),
    ("the meta group's loki_enabled wins", {"loki_enabled": True}, {"loki_enabled": False}, {},
     ("all.vars", "loki_enabled", "mapped", "not used: it is the value of group meta (false)"),
     {"log_collect": False}),
    ("... and is carried over", {"loki_enabled": True}, {"loki_enabled": False}, {},
     ("group meta", "loki_enabled", "changed", "false -> log_collect: false"), {"log_collect": False}),
    ("promtail off on a cluster only", {}, {}, {"promtail_enabled": False},
     ("pg-x", "promtail_enabled", "unsupported", "one switch for every node, global (log_collect: "
      "true): these nodes send their journal too"), {"log_collect": None}),
    ("promtail on a cluster, as ours", {"promtail_enabled": True}, {}, {"promtail_enabled": True},
     ("pg-x", "promtail_enabled", "mapped", "same as ours for these nodes"), {"log_collect": True}),
    ("a switch that is not a bool", {"loki_enabled": "yes"}, {}, {},
     ("all.vars", "loki_enabled", "unsupported", "expected true or false"), {"log_collect": None}),
    ("retention", {"loki_retention": "15d"}, {}, {},
     ("all.vars", "loki_retention", "changed", "15d -> log_retention_time: 15d; journalctl's vacuum"),
     {"log_retention_time": "15d"}),
    ("retention in weeks", {"loki_retention": "2w"}, {}, {},
     ("all.vars", "loki_retention", "changed", "log_retention_time: 2w"), {"log_retention_time": "2w"}),
    ("retention of a year", {"loki_retention": "1y"}, {}, {},
     ("all.vars", "loki_retention", "changed", "1y -> log_retention_time: 365d (a year is 365 days in Loki)"),
     {"log_retention_time": "365d"}),
    ("retention in two units", {"loki_retention": "1d12h"}, {}, {},
     ("all.vars", "loki_retention", "changed", "1d12h -> log_retention_time: 36h (log_retention_time takes one unit)"), {"log_retention_time": "36h"}),
    ("retention forever", {"loki_retention": "forever"}, {}, {},
     ("all.vars", "loki_retention", "unsupported", "forever: not a duration (expected a duration such "
      "as 15d, 336h or 2w); log_retention_time keeps its default (15d)"), {"log_retention_time": None}),
    ("retention off", {"loki_retention": "0s"}, {}, {},
     ("all.vars", "loki_retention", "unsupported", "kept for ever"), {"log_retention_time": None}),
    ("retention without a unit", {"loki_retention": 15}, {}, {},
     ("all.vars", "loki_retention", "unsupported", "expected a duration"), {"log_retention_time": None}),
    ("retention on the meta group wins", {"loki_retention": "15d"}, {"loki_retention": "30d"}, {},
     ("all.vars", "loki_retention", "mapped", "not used: it is the value of group meta (30d)"),
     {"log_retention_time": "30d"}),
    ("retention on a cluster", {"loki_retention": "15d"}, {}, {"loki_retention": "7d"},
     ("pg-x", "loki_retention", "unsupported", "global in ours (the logs are kept on the first meta node); the value in force applies (all.vars: 15d)"), {"log_retention_time": "15d"}),
    ("our own log_retention_time wins", {"loki_retention": "30d", "log_retention_time": "20d"}, {}, {},
     ("all.vars", "loki_retention", "unsupported", "the inventory sets our log_retention_time"),
     {"log_retention_time": "20d"}),
    ("v1 data directory", {"loki_data_dir": "/data/loki"}, {}, {},
     ("all.vars", "loki_data_dir", "unsupported", "/var/log/journal/remote"), {}),
    ("v2 data directory", {"loki_data": "/data/loki"}, {}, {},
     ("all.vars", "loki_data", "unsupported", "/var/log/journal/remote"), {}),
    ("loki_clean off", {"loki_clean": False}, {}, {},
     ("all.vars", "loki_clean", "mapped", "never wiped"), {}),
    ("loki_clean on", {"loki_clean": True}, {}, {},
     ("all.vars", "loki_clean", "unsupported", "never wipes the collected logs"), {}),
    ("promtail_clean on", {"promtail_clean": True}, {}, {},
     ("all.vars", "promtail_clean", "unsupported", "never sends its journal again"), {}),
    ("loki_options", {"loki_options": "-config.file=/etc/loki.yml"}, {}, {},
     ("all.vars", "loki_options", "unsupported", "Loki's command line"), {}),
    ("promtail_options", {"promtail_options": "-config.file=/etc/promtail.yml"}, {}, {},
     ("all.vars", "promtail_options", "unsupported", "configured by node.logs"), {}),
    ("promtail_port", {"promtail_port": 9080}, {}, {},
     ("all.vars", "promtail_port", "unsupported", "listens on no port"), {}),
    ("promtail_positions", {"promtail_positions": "/var/log/positions.yaml"}, {}, {},
     ("all.vars", "promtail_positions", "unsupported", "/var/lib/systemd/journal-upload/state"), {}),
    ("loki_endpoint on meta", {"loki_endpoint": "http://10.1.0.10:3100/loki/api/v1/push"}, {}, {},
     ("all.vars", "loki_endpoint", "changed", "-> https://10.1.0.10:19532: systemd-journal-upload"), {}),
    ("loki_endpoint with log_port", {"loki_endpoint": "http://${admin_ip}:3100/loki/api/v1/push",
                                     "admin_ip": "10.1.0.10", "log_port": 19600}, {}, {},
     ("all.vars", "loki_endpoint", "changed", "-> https://10.1.0.10:19600"), {"log_port": 19600}),
    ("an external Loki", {"loki_endpoint": "http://10.9.9.9:3100/loki/api/v1/push"}, {}, {},
     ("all.vars", "loki_endpoint", "unsupported", "not a meta node"), {}),
    ("loki_endpoint not a URL", {"loki_endpoint": "nowhere"}, {}, {},
     ("all.vars", "loki_endpoint", "unsupported", "expected Loki's push URL"), {}),
    ("another loki_ parameter", {"loki_port": 3100}, {}, {},
     ("all.vars", "loki_port", "unsupported", "Loki's own setting"), {}),
    # v4: VictoriaLogs on the infra nodes, Vector on every node
    ("v4 vector on", {"vector_enabled": True}, {}, {},
     ("all.vars", "vector_enabled", "changed", "Vector -> systemd-journal-upload on every node"),
     {"log_collect": True}),
    ("v4 vlogs off on infra", {}, {"vlogs_enabled": False}, {},
     ("group infra", "vlogs_enabled", "changed", "false -> log_collect: false"), {"log_collect": False}),
    ("v4 vlogs_options", {"vlogs_options": "-retentionPeriod=15d -retention.maxDiskSpaceUsageBytes=50GiB "
                                           "-insert.maxLineSizeBytes=1MB"}, {}, {},
     ("all.vars", "vlogs_options", "changed", "-retentionPeriod=15d -> log_retention_time: 15d; "
      "-retention.maxDiskSpaceUsageBytes=50GiB -> log_retention_size: 50G; left out "
      "-insert.maxLineSizeBytes=1MB"), {"log_retention_time": "15d", "log_retention_size": "50G"}),
    ("v4 vlogs_options in months", {"vlogs_options": "-retentionPeriod=12"}, {}, {},
     ("all.vars", "vlogs_options", "changed", "-retentionPeriod=12 -> log_retention_time: 372d (12 months of 31 days"), {"log_retention_time": "372d"}),
    ("v4 vlogs_options without retention", {"vlogs_options": "-search.maxQueryDuration=120s"}, {}, {},
     ("all.vars", "vlogs_options", "unsupported", "nothing carried over"), {"log_retention_time": None}),
    ("v4 vlogs_options bad", {"vlogs_options": "-retentionPeriod=forever -retention.maxDiskSpaceUsageBytes=0"},
     {}, {}, ("all.vars", "vlogs_options", "unsupported", "-retentionPeriod=forever not carried over: not a duration"),
     {"log_retention_time": None, "log_retention_size": None}),
    ("v4 vector_read_from beginning", {"vector_read_from": "beginning"}, {}, {},
     ("all.vars", "vector_read_from", "mapped", "same as ours"), {}),
    ("v4 vector_read_from end", {"vector_read_from": "end"}, {}, {},
     ("all.vars", "vector_read_from", "unsupported", "there is no 'end'"), {}),
    ("v4 vector_log_endpoint infra", {"vector_log_endpoint": ["infra"]}, {}, {},
     ("all.vars", "vector_log_endpoint", "changed", "-> https://10.1.0.10:19532"), {}),
    ("v4 vector_log_endpoint elsewhere", {"vector_log_endpoint": ["logs"]}, {}, {},
     ("all.vars", "vector_log_endpoint", "unsupported", "logs is not a meta (infra) group"), {}),
    ("v4 vector_data", {"vector_data": "/data/vector"}, {}, {},
     ("all.vars", "vector_data", "unsupported", "journal-upload/state"), {}),
    ("v4 vector_port", {"vector_port": 9598}, {}, {},
     ("all.vars", "vector_port", "unsupported", "listens on no port"), {}),
    ("v4 vlogs_port", {"vlogs_port": 9428}, {}, {},
     ("all.vars", "vlogs_port", "unsupported", "log_port"), {}),
]


@pytest.mark.parametrize("name,gvars,mvars,cvars,row,written", LOG_ROWS, ids=[c[0] for c in LOG_ROWS])
def test_log_parameters(name, gvars, mvars, cvars, row, written):
    """Pigsty's log parameters: a row each, saying what changed; what is written validates."""
    meta = "infra" if name.startswith("v4") else "meta"
    result = imp.convert(_logs_inventory(gvars, mvars, cvars, meta=meta))
    scope, param, status, fragment = row
    got = one_row(result, scope, param)
    assert got["status"] == status, got
    assert fragment in got["detail"], got
    gout = result["public"]["pigsty"]["vars"]
    for key, value in written.items():
        assert gout.get(key) == value, (key, gout)
    assert not {k for k in gout if k.startswith("log_")} - set(written) - set(gvars)
    assert inv.validate(merged(result)) == []


@pytest.mark.parametrize("value,expected", [
    ("15d", ("15d", None)), ("336h", ("336h", None)), ("30m", ("30m", None)), ("2w", ("2w", None)),
    ("1y", ("365d", "a year is 365 days in Loki")), ("1d12h", ("36h", "log_retention_time takes one unit")), ("90s", ("90s", None)),
    ("1h30m", ("90m", "log_retention_time takes one unit")), ("1m30s", ("90s", "log_retention_time takes one unit")),
])
def test_loki_retention_becomes_a_journalctl_duration(value, expected):
    import pigsty_import_logs as logs
    import pigsty_logs
    assert logs.retention_time(value) == expected
    assert pigsty_logs.TIME_RE.fullmatch(expected[0])


@pytest.mark.parametrize("value,fragment", [
    ("forever", "not a duration"), ("0s", "kept for ever"), ("0", "not a duration"), ("", "expected"),
    (15, "expected"), (None, "expected"), (True, "expected"), ("500ms", "whole number of seconds"),
    ("15 d", "not a duration"), ("-1d", "not a duration"),
])
def test_loki_retention_without_an_equivalent(value, fragment):
    import pigsty_import_logs as logs
    with pytest.raises(ValueError) as err:
        logs.retention_time(value)
    assert fragment in str(err.value)


@pytest.mark.parametrize("value,expected", [
    ("50GiB", "50G"), ("512MiB", "512M"), ("1TiB", "1T"), ("1GB", "1000000000"), ("50GB", "48828125K"),
    ("1048576", "1M"), ("1000", "1000"),
])
def test_victorialogs_size_becomes_a_journalctl_size(value, expected):
    import pigsty_import_logs as logs
    import pigsty_logs
    assert logs.vm_retention_size(value) == expected
    assert pigsty_logs.SIZE_RE.fullmatch(expected)


def test_log_statuses_are_the_importers():
    import pigsty_import_logs as logs
    assert (logs.MAPPED, logs.CHANGED, logs.UNSUPPORTED) == (imp.MAPPED, imp.CHANGED, imp.UNSUPPORTED)


def test_v1_logs_are_written_as_pigsty_set_them(v1):
    gvars = v1["public"]["pigsty"]["vars"]
    assert gvars["log_collect"] is True and gvars["log_retention_time"] == "15d"
    assert "log_retention_size" not in gvars and "log_port" not in gvars
