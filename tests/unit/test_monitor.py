"""Monitoring on the meta node: Prometheus targets (one file per cluster, labels, live roles),
config, rules, Alertmanager config, and the dashboards' expressions."""
import glob
import json
import os

import pytest
import yaml

import pigsty_inventory as inv
import pigsty_monitor as mon
from pillar_fixture import REPO, default_pillar

from exported_metrics import EXPORTED
import promql


def metric_names(expr):
    """Metric names of an expression, less recording rules (their inputs are checked)."""
    return {m for m in promql.metric_names(expr) if ":" not in m}


@pytest.fixture()
def pillar():
    return default_pillar()


def test_one_group_per_instance_and_exporter_with_all_labels(pillar):
    groups = mon.cluster_targets(inv.inventory(pillar), "pg-test")
    assert len(groups) == 3 * 5
    for g in groups:
        # every target is HTTPS: the scrape jobs say so (scheme), the targets carry no __scheme__
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
    groups = json.loads(files["/etc/prometheus/targets/infra/infra.json"])
    infra = {g["labels"]["job"]: g for g in groups if g["labels"]["job"] != "etcd"}
    # Prometheus and Alertmanager listen on loopback only: each Prometheus scrapes its own
    assert infra["prometheus"]["targets"] == ["127.0.0.1:9090"]
    assert infra["alertmanager"]["targets"] == ["127.0.0.1:9093"]
    assert infra["prometheus"]["labels"]["ins"] == "meta" and infra["prometheus"]["labels"]["ip"] == "10.10.10.10"
    # every etcd member (the sandbox's dcs_servers), named as dcs_servers names it
    etcd = [g for g in groups if g["labels"]["job"] == "etcd"]
    assert [(g["targets"], g["labels"]["ins"], g["labels"]["cls"]) for g in etcd] == [
        (["10.10.10.10:2379"], "meta", "etcd"), (["10.10.10.11:2379"], "node-1", "etcd"),
        (["10.10.10.12:2379"], "node-2", "etcd")]
    # the same bytes every time (Salt and a runner write identical files)
    assert mon.target_files(inv.inventory(pillar), roles={"pg-test-2": "primary"}) == files
    # and the same targets whether the inventory comes indexed or not
    assert mon.target_files(inv.index(inv.inventory(pillar)), roles={"pg-test-2": "primary"}) == files


def test_with_several_meta_nodes_each_prometheus_scrapes_its_own_pair_and_every_etcd(pillar):
    pillar["pigsty"]["nodes"]["meta-2"] = {"ip": "10.10.10.20", "meta": True}
    pillar["pigsty"]["vars"]["dcs_servers"] = {}          # etcd on every meta node
    index = inv.inventory(pillar)
    for me, ip in (("meta", "10.10.10.10"), ("meta-2", "10.10.10.20")):
        groups = mon.infra_targets(index, me)
        local = [(g["labels"]["job"], g["labels"]["ins"], g["targets"][0]) for g in groups
                 if g["labels"]["job"] != "etcd"]
        pair = [("prometheus", me, "127.0.0.1:9090"), ("alertmanager", me, "127.0.0.1:9093")]
        # the backup metrics are on the repository host only: the first meta node
        backup = [("backup", me, "127.0.0.1:9854")] if me == "meta" else []
        assert local == pair + backup
        assert sorted(g["targets"][0] for g in groups if g["labels"]["job"] == "etcd") == [
            "10.10.10.10:2379", "10.10.10.20:2379"]
    # a node that is not a meta node runs no Prometheus: etcd only
    assert {g["labels"]["job"] for g in mon.infra_targets(index, "node-1")} == {"etcd"}


def test_alertmanagers_of_several_meta_nodes_gossip_over_mutual_tls_and_one_alone_does_not(pillar):
    alone = mon.alertmanager_cluster(inv.inventory(pillar), "meta")
    assert alone["args"] == ["--cluster.listen-address="] and alone["tls"] is None and alone["peers"] == []
    pillar["pigsty"]["nodes"]["meta-2"] = {"ip": "10.10.10.9", "meta": True}
    pillar["pigsty"]["nodes"]["meta-3"] = {"ip": "10.10.10.8", "meta": True}
    index = inv.inventory(pillar)
    first = mon.alertmanager_cluster(index, "meta", pki_dir="/p")
    assert first["args"] == ["--cluster.listen-address=10.10.10.10:9094", "--cluster.advertise-address=10.10.10.10:9094",
                             "--cluster.peer=10.10.10.9:9094", "--cluster.peer=10.10.10.8:9094",
                             "--cluster.tls-config=" + first["tls_path"]]
    assert first["tls"]["tls_server_config"] == {"cert_file": "/p/node.crt", "key_file": "/p/node.key",
                                                  "client_ca_file": "/p/ca.crt",
                                                  "client_auth_type": "RequireAndVerifyClientCert"}
    assert first["tls"]["tls_client_config"] == {"cert_file": "/p/node.crt", "key_file": "/p/node.key",
                                                  "ca_file": "/p/ca.crt"}
    second = mon.alertmanager_cluster(index, "meta-2")
    assert second["args"][0] == "--cluster.listen-address=10.10.10.9:9094"
    assert second["peers"] == ["10.10.10.10", "10.10.10.8"]
    # a database node runs no Alertmanager: no gossip
    assert mon.alertmanager_cluster(index, "node-1")["tls"] is None


def test_targets_file_of_no_groups_is_an_empty_list():
    assert json.loads(mon.targets_file([], "nothing")) == []


def test_prometheus_config_from_pillar(pillar):
    pillar["pigsty"]["vars"].update(prometheus_scrape_interval="15s", prometheus_scrape_timeout="5s")
    cfg = mon.prometheus_config(inv.inventory(pillar))
    assert cfg["global"]["scrape_interval"] == "15s" and cfg["global"]["scrape_timeout"] == "5s"
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    files = [f for job in cfg["scrape_configs"] for sd in job["file_sd_configs"] for f in sd["files"]]
    assert files == ["/etc/prometheus/targets/pgsql/*.json", "/etc/prometheus/targets/pgsql/*.json",
                     "/etc/prometheus/targets/infra/*.json", "/etc/prometheus/targets/infra/*.json"]
    jobs = {job["job_name"]: job for job in cfg["scrape_configs"]}
    # the backup metrics' target is the infra file's, scraped by its own job that keeps the
    # series' cls (each names its cluster; the target's cls is "infra")
    assert jobs["infra"]["relabel_configs"] == [{"source_labels": ["job"], "regex": "backup", "action": "drop"}]
    assert jobs["backup"]["relabel_configs"] == [{"source_labels": ["job"], "regex": "backup", "action": "keep"}]
    assert jobs["backup"]["honor_labels"] is True and jobs["pgsql"].get("honor_labels") is None
    # Patroni's targets are scraped by their own job, over HTTPS verified against the CA
    assert jobs["pgsql"]["relabel_configs"] == [{"source_labels": ["job"], "regex": "patroni", "action": "drop"}]
    assert jobs["patroni"]["relabel_configs"] == [{"source_labels": ["job"], "regex": "patroni", "action": "keep"}]
    assert jobs["patroni"]["scheme"] == "https"
    assert jobs["patroni"]["tls_config"] == {"ca_file": "/etc/pki/pigsty/ca.crt"}
    assert "scheme" not in jobs["infra"]      # etcd's targets say https, loopback ones not
    # every exporter of a database node is HTTPS, verified against the CA, and the exporters
    # ask for the meta node's certificate (the same the infra job shows etcd)
    node_cert = {"ca_file": "/etc/pki/pigsty/ca.crt", "cert_file": "/etc/pki/pigsty/node.crt",
                 "key_file": "/etc/pki/pigsty/node.key"}
    assert jobs["pgsql"]["scheme"] == "https"
    assert jobs["pgsql"]["tls_config"] == node_cert and jobs["infra"]["tls_config"] == node_cert
    # no server_name: Prometheus checks the target's address, which the node certificate names
    assert "server_name" not in jobs["pgsql"]["tls_config"]
    # the YAML Prometheus reads has no aliases (one dict used twice would be dumped as one)
    assert "&id" not in mon.dump(cfg) and "*id" not in mon.dump(cfg)


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
    tested = set()
    for path in glob.glob(os.path.join(REPO, "tests", "promtool", "*_test.yml")):
        with open(path) as fh:
            doc = yaml.safe_load(fh)
        tested |= {t["alertname"] for case in doc["tests"] for t in case.get("alert_rule_test", [])
                   if t.get("exp_alerts")}
    assert {a[0] for a in mon.ALERTS} <= tested, sorted({a[0] for a in mon.ALERTS} - tested)


def test_metric_names_of_an_expression():
    assert promql.metric_names(
        'sum by (cls) (rate(pg_stat_database_xact_commit{role="primary",x=~"a|b"}[5m])) '
        'or on() label_replace(vector(0), "severity", "none", "", "")') == {"pg_stat_database_xact_commit"}
    assert promql.metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[1m]))) "
        "/ node:ins:cpu_usage and on (ins) up == bool 0 offset 5m") == {
        "etcd_disk_wal_fsync_duration_seconds_bucket", "node:ins:cpu_usage", "up"}


def test_alertmanager_route_and_receivers_come_from_pillar(pillar):
    cfg = mon.alertmanager_config(inv.inventory(pillar))
    assert cfg["route"]["receiver"] == "sink"
    assert cfg["receivers"][0]["webhook_configs"][0]["url"] == "http://127.0.0.1:9095/alerts"
    pillar["pigsty"]["vars"].pop("alertmanager_route")
    pillar["pigsty"]["vars"].pop("alertmanager_receivers")
    cfg = mon.alertmanager_config(inv.inventory(pillar))
    assert cfg["route"]["receiver"] == "default" and cfg["receivers"] == [{"name": "default"}]
