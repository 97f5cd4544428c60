"""Monitoring on the meta node: Prometheus targets (one file per cluster, labels, live roles),
config, rules, Alertmanager config, and the dashboards' expressions."""
import importlib.util
import json
import os
import re

import pytest
import yaml

import pigsty_inventory as inv
import pigsty_monitor as mon
from pillar_fixture import REPO, default_pillar

# Metric names the sandbox's Prometheus holds with the Debian 12 exporters (node_exporter
# 1.5, postgres_exporter 0.11 + salt/pgsql/files/pg_exporter_queries.yml, the role's
# pgbouncer exporter, HAProxy 2.6, Patroni 3.0.2, etcd 3.4); read from its
# /api/v1/label/__name__/values. Rules and dashboards may use these only.
EXPORTED = {
    "up", "etcd_server_has_leader", "etcd_server_is_leader",
    "haproxy_backend_active_servers", "haproxy_backend_backup_servers",
    "haproxy_backend_bytes_in_total", "haproxy_backend_current_sessions",
    "haproxy_backend_sessions_total", "haproxy_backend_status", "haproxy_server_status",
    "haproxy_server_current_sessions", "haproxy_process_nbthread",
    "node_boot_time_seconds", "node_cpu_seconds_total", "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes", "node_load1", "node_load15", "node_load5",
    "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
    "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
    "node_time_seconds", "node_uname_info", "node_timex_offset_seconds",
    "patroni_dcs_last_seen", "patroni_master", "patroni_primary", "patroni_pending_restart",
    "patroni_postgres_running", "patroni_postgres_timeline", "patroni_postmaster_start_time",
    "patroni_replica", "patroni_xlog_location", "patroni_xlog_replayed_location",
    "patroni_xlog_received_location",
    "pg_database_size_bytes", "pg_database_xid_age", "pg_locks_count",
    "pg_settings_max_connections", "pg_stat_activity_count",
    "pg_stat_bgwriter_checkpoints_req_total", "pg_stat_bgwriter_checkpoints_timed_total",
    "pg_stat_database_blks_hit", "pg_stat_database_blks_read",
    "pg_stat_database_tup_deleted", "pg_stat_database_tup_fetched",
    "pg_stat_database_tup_inserted", "pg_stat_database_tup_updated",
    "pg_stat_database_xact_commit", "pg_stat_database_xact_rollback",
    "pg_stat_replication_pg_wal_lsn_diff", "pg_postmaster_start_time_seconds",
    "pg_replication_lag", "pg_up",
    "pgbouncer_pools_cl_active", "pgbouncer_pools_cl_waiting", "pgbouncer_pools_sv_active",
    "pgbouncer_pools_sv_idle", "pgbouncer_stats_total_xact_count", "pgbouncer_up",
}
METRIC_RE = re.compile(r"\b((?:pg|node|pgbouncer|haproxy|patroni|etcd)_[A-Za-z0-9_]+|up)\b")


def metric_names(expr):
    """Metric names in a PromQL expression (strings and label matchers removed)."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    return set(METRIC_RE.findall(expr))


@pytest.fixture()
def pillar():
    return default_pillar()


def test_one_group_per_instance_and_exporter_with_all_labels(pillar):
    groups = mon.cluster_targets(inv.inventory(pillar), "pg-test")
    assert len(groups) == 3 * 5
    for g in groups:
        assert set(g["labels"]) == {"cls", "ins", "ip", "job", "role"}
        assert g["labels"]["cls"] == "pg-test"
    by = {(g["labels"]["ins"], g["labels"]["job"]): g for g in groups}
    assert by[("pg-test-2", "node")]["targets"] == ["10.10.10.12:9100"]
    assert by[("pg-test-2", "pgsql")]["targets"] == ["10.10.10.12:9630"]
    assert by[("pg-test-2", "pgbouncer")]["targets"] == ["10.10.10.12:9631"]
    assert by[("pg-test-2", "haproxy")]["targets"] == ["10.10.10.12:9101"]
    assert by[("pg-test-2", "patroni")]["targets"] == ["10.10.10.12:8008"]
    assert by[("pg-test-1", "pgsql")]["labels"] == {
        "cls": "pg-test", "ins": "pg-test-1", "ip": "10.10.10.11", "job": "pgsql", "role": "primary"}
    assert by[("pg-test-3", "node")]["labels"]["role"] == "replica"


def test_live_roles_override_pillar_roles_for_named_instances_only(pillar):
    groups = mon.cluster_targets(inv.inventory(pillar), "pg-test",
                                 roles={"pg-test-1": "replica", "pg-test-2": "primary"})
    roles = {g["labels"]["ins"]: g["labels"]["role"] for g in groups}
    assert roles == {"pg-test-1": "replica", "pg-test-2": "primary", "pg-test-3": "replica"}


def test_unknown_instance_or_cluster_is_an_error_naming_it(pillar):
    with pytest.raises(ValueError) as err:
        mon.cluster_targets(inv.inventory(pillar), "pg-test", roles={"pg-test-9": "primary"})
    assert "pg-test-9" in str(err.value) and "pg-test-1" in str(err.value)
    with pytest.raises(ValueError) as err:
        mon.cluster_targets(inv.inventory(pillar), "pg-nope")
    assert "pigsty:clusters:pg-nope" in str(err.value)


def test_cluster_ports_follow_cluster_vars(pillar):
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_exporter_port"] = 9700
    groups = mon.cluster_targets(inv.inventory(pillar), "pg-test")
    assert {g["targets"][0] for g in groups if g["labels"]["job"] == "pgsql"} == {
        "10.10.10.11:9700", "10.10.10.12:9700", "10.10.10.13:9700"}


def test_one_file_per_cluster_plus_infra_and_it_is_valid_file_sd(pillar):
    files = mon.target_files(inv.inventory(pillar), roles={"pg-test-2": "primary"})
    assert sorted(files) == ["/etc/prometheus/targets/infra/infra.json",
                             "/etc/prometheus/targets/pgsql/pg-meta.json",
                             "/etc/prometheus/targets/pgsql/pg-test.json"]
    # file_sd's JSON: a list of target groups (json.loads, as Prometheus reads a .json file)
    test = json.loads(files["/etc/prometheus/targets/pgsql/pg-test.json"])
    assert test == mon.cluster_targets(inv.inventory(pillar), "pg-test", {"pg-test-2": "primary"})
    assert all(set(g) == {"targets", "labels"} and isinstance(g["targets"], list) for g in test)
    # one target group per line, so a diff of a role change shows the groups that changed
    assert files["/etc/prometheus/targets/pgsql/pg-test.json"].count("\n") == len(test) + 2
    meta = json.loads(files["/etc/prometheus/targets/pgsql/pg-meta.json"])
    assert {g["labels"]["ins"] for g in meta} == {"pg-meta-1"}
    infra = {g["labels"]["job"]: g for g in json.loads(files["/etc/prometheus/targets/infra/infra.json"])}
    assert infra["prometheus"]["targets"] == ["10.10.10.10:9090"]
    assert infra["alertmanager"]["targets"] == ["10.10.10.10:9093"]
    assert infra["etcd"]["targets"] == ["10.10.10.10:2379"]
    assert infra["etcd"]["labels"]["cls"] == "etcd"
    # the same bytes every time (Salt and a runner write identical files)
    assert mon.target_files(inv.inventory(pillar), roles={"pg-test-2": "primary"}) == files
    # and the same targets whether the inventory comes indexed or not
    assert mon.target_files(inv.index(inv.inventory(pillar)), roles={"pg-test-2": "primary"}) == files


def test_targets_file_of_no_groups_is_an_empty_list():
    assert json.loads(mon.targets_file([], "nothing")) == []


def test_prometheus_config_from_pillar(pillar):
    pillar["pigsty"]["vars"].update(prometheus_scrape_interval="15s", prometheus_scrape_timeout="5s")
    cfg = mon.prometheus_config(inv.inventory(pillar))
    assert cfg["global"]["scrape_interval"] == "15s" and cfg["global"]["scrape_timeout"] == "5s"
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.10.10.10:9093"]
    files = [f for job in cfg["scrape_configs"] for sd in job["file_sd_configs"] for f in sd["files"]]
    assert files == ["/etc/prometheus/targets/pgsql/*.json", "/etc/prometheus/targets/infra/*.json"]


REQUIRED_ALERTS = {"PostgresDown", "PgbouncerDown", "PatroniDown", "PostgresReplicationBreak",
                   "PostgresReplicationLag", "PostgresRestart", "PostgresXidWarpAround",
                   "PostgresConnUsageHigh", "NodeDown", "NodeCpuHigh", "NodeFsSpaceFull",
                   "NodeMemHigh", "NodeTimeDrift", "HaproxyDown", "EtcdServerDown", "EtcdNoLeader"}


def test_core_alerts_with_their_own_for_unless_pillar_overrides(pillar):
    pillar["pigsty"]["vars"].pop("prometheus_alert_for", None)
    alerts = {r["alert"]: r for g in mon.rules(inv.inventory(pillar))["groups"]
              for r in g["rules"] if "alert" in r}
    assert REQUIRED_ALERTS <= set(alerts)
    assert alerts["PgbouncerDown"]["for"] == "1m" and alerts["NodeCpuHigh"]["for"] == "5m"
    assert all(a["labels"]["severity"] in ("CRIT", "WARN", "INFO") for a in alerts.values())
    pillar["pigsty"]["vars"]["prometheus_alert_for"] = "10s"
    alerts = [r for g in mon.rules(inv.inventory(pillar))["groups"] for r in g["rules"] if "alert" in r]
    assert {a["for"] for a in alerts} == {"10s"}


def test_rules_use_only_exported_metrics(pillar):
    for group in mon.rules(inv.inventory(pillar))["groups"]:
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - EXPORTED
            assert not unknown, (rule.get("alert") or rule.get("record"), unknown)


def test_every_alert_has_a_promtool_unit_test():
    with open(os.path.join(REPO, "tests", "promtool", "pigsty_rules_test.yml")) as fh:
        doc = yaml.safe_load(fh)
    tested = {t["alertname"] for case in doc["tests"] for t in case.get("alert_rule_test", [])}
    assert {a[0] for a in mon.ALERTS} <= tested


def test_alertmanager_route_and_receivers_come_from_pillar(pillar):
    cfg = mon.alertmanager_config(inv.inventory(pillar))
    assert cfg["route"]["receiver"] == "sink"
    assert cfg["receivers"][0]["webhook_configs"][0]["url"] == "http://10.10.10.10:9095/alerts"
    pillar["pigsty"]["vars"].pop("alertmanager_route")
    pillar["pigsty"]["vars"].pop("alertmanager_receivers")
    cfg = mon.alertmanager_config(inv.inventory(pillar))
    assert cfg["route"]["receiver"] == "default" and cfg["receivers"] == [{"name": "default"}]


# ------------------------------------------------------------------ dashboards
def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_dashboards", os.path.join(REPO, "scripts", "gen_dashboards.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_are_what_the_generator_writes():
    for name, text in _generator().render().items():
        with open(os.path.join(mon.DASHBOARD_DIR, name)) as fh:
            assert fh.read() == text, "%s is stale: run python3 scripts/gen_dashboards.py" % name


def test_the_five_dashboards_exist_with_unique_uids():
    docs = {}
    for name in sorted(os.listdir(mon.DASHBOARD_DIR)):
        with open(os.path.join(mon.DASHBOARD_DIR, name)) as fh:
            docs[name] = json.load(fh)
    assert {d["title"] for d in docs.values()} >= {"PGSQL Cluster", "PGSQL Instance", "Node",
                                                   "HAProxy Service", "Patroni HA"}
    uids = [d["uid"] for d in docs.values()]
    assert len(uids) == len(set(uids))
    for doc in docs.values():
        assert all(p.get("targets") for p in doc["panels"]), doc["title"]


def test_dashboard_exprs_are_listed_substituted_and_use_exported_metrics():
    exprs = mon.dashboard_exprs()
    assert len(exprs) > 40
    files = {e[0] for e in exprs}
    assert files == {"pgsql-cluster.json", "pgsql-instance.json", "node.json", "haproxy.json",
                     "patroni.json"}
    for name, title, raw, expr in exprs:
        assert "$" not in expr, (name, title, expr)
        unknown = metric_names(raw) - EXPORTED
        unknown = {m for m in unknown if ":" not in m}
        assert not unknown, (name, title, unknown)
    sample = [e for e in exprs if e[1] == "Connections" and e[0] == "pgsql-cluster.json"][0]
    assert sample[3] == 'sum by (ins) (pg_stat_activity_count{cls="pg-test"})'
    other = mon.dashboard_exprs(variables={"cls": "pg-meta"})
    assert 'sum by (ins) (pg_stat_activity_count{cls="pg-meta"})' in [e[3] for e in other]


def test_substitute_refuses_an_unknown_variable():
    with pytest.raises(KeyError) as err:
        mon.substitute('up{x="$nope"}')
    assert "$nope" in str(err.value)
