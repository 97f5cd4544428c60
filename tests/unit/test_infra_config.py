"""The infra role's data: local repository, Nginx portal and virtual hosts, Grafana, chrony,
the node role's infra clients, and validation of the infra parameters."""
import pytest

import pigsty_defaults as D
import pigsty_infra as infra
import pigsty_inventory as inv
from pillar_fixture import default_pillar


def inventory(**gvars):
    pillar = default_pillar()
    pillar["pigsty"]["vars"].update(gvars)
    return inv.inventory(pillar)


def problems(**gvars):
    pillar = default_pillar()
    pillar["pigsty"]["vars"].update(gvars)
    return inv.validate(pillar)


def test_repo_packages_are_what_db_nodes_and_the_dcs_install():
    pkgs = infra.repo_packages(inventory())
    assert pkgs == sorted(pkgs)
    assert {"postgresql-15", "patroni", "pgbouncer", "haproxy", "vip-manager", "python3-etcd",
            "python3-psycopg2", "prometheus-node-exporter", "prometheus-postgres-exporter",
            "etcd-server", "etcd-client", "chrony"} <= set(pkgs)
    conf = inv.instance_config(default_pillar(), "node-1")
    assert set(infra.pgsql_packages(conf)) <= set(pkgs)     # pgsql.install's own list


def test_repo_extra_packages_and_source_line():
    inv_ = inventory(repo_packages_extra=["pgbackrest"])
    assert "pgbackrest" in infra.repo_packages(inv_)
    repo = infra.repo(inv_)
    assert repo["url"] == "https://10.10.10.10/pigsty"         # apt checks it with the CA
    assert repo["source"] == "deb [trusted=yes] https://10.10.10.10/pigsty ./"
    assert repo["ca"] == "/etc/pki/pigsty/ca.crt"
    assert repo["dir"] == "/www/pigsty"
    assert infra.repo(inventory(nginx_ssl_port=8443))["url"] == "https://10.10.10.10:8443/pigsty"
    assert infra.repo(inventory(nginx_port=8080))["url"] == "https://10.10.10.10/pigsty"


def test_nginx_vhosts_and_haproxy_pages_of_every_member():
    ngx = infra.nginx(inventory())
    proxies = {p["domain"]: p for p in ngx["proxies"]}
    assert proxies["p.pigsty"]["upstream"] == "127.0.0.1:9090" and proxies["p.pigsty"]["enabled"]
    assert proxies["a.pigsty"]["upstream"] == "127.0.0.1:9093"
    assert proxies["g.pigsty"]["enabled"] is False and "Grafana skipped" in proxies["g.pigsty"]["reason"]
    assert ngx["haproxy_domain"] == "h.pigsty"
    assert {h["ins"]: h["upstream"] for h in ngx["haproxy"]} == {
        "pg-meta-1": "10.10.10.10:9101", "pg-test-1": "10.10.10.11:9101",
        "pg-test-2": "10.10.10.12:9101", "pg-test-3": "10.10.10.13:9101"}
    # HTTPS to each HAProxy, verified for the node's name (a DNS name in its certificate)
    assert {h["ins"]: h["ssl_name"] for h in ngx["haproxy"]} == {
        "pg-meta-1": "meta", "pg-test-1": "node-1", "pg-test-2": "node-2", "pg-test-3": "node-3"}
    # the portal over HTTPS with the meta node's certificate; plain HTTP for the repository
    assert (ngx["port"], ngx["ssl_port"], ngx["https_suffix"]) == (80, 443, "")
    assert (ngx["cert"], ngx["key"], ngx["ca"]) == (
        "/etc/pki/pigsty/node.crt", "/etc/pki/pigsty/node.key", "/etc/pki/pigsty/ca.crt")
    assert infra.nginx(inventory(nginx_ssl_port=8443))["https_suffix"] == ":8443"
    # the live portal: each member's Patroni (GET /cluster) over HTTPS for the node's name,
    # Alertmanager on loopback, the runner's live directory
    assert {p["ins"]: (p["upstream"], p["ssl_name"]) for p in ngx["patroni"]} == {
        "pg-meta-1": ("10.10.10.10:8008", "meta"), "pg-test-1": ("10.10.10.11:8008", "node-1"),
        "pg-test-2": ("10.10.10.12:8008", "node-2"), "pg-test-3": ("10.10.10.13:8008", "node-3")}
    assert {p["upstream"] for p in infra.nginx(inventory(patroni_port=8018))["patroni"]} == {
        "10.10.10.10:8018", "10.10.10.11:8018", "10.10.10.12:8018", "10.10.10.13:8018"}
    assert (ngx["alertmanager"], ngx["live_dir"]) == ("127.0.0.1:9093", "/var/lib/pigsty/live")
    clusters = {c["name"]: c for c in ngx["clusters"]}
    assert clusters["pg-test"]["vip"] == "10.10.10.3"
    assert [m["role"] for m in clusters["pg-test"]["members"]] == ["primary", "replica", "replica"]
    assert {s["name"] for s in ngx["services"]} == {"prometheus", "alertmanager", "grafana", "haproxy"}


def test_grafana_only_with_a_package_source():
    assert infra.grafana(inventory())["enabled"] is False
    gf = infra.grafana(inventory(grafana_package_url="http://10.10.10.1/grafana.deb"))
    assert gf["enabled"] and gf["reason"] is None
    ngx = infra.nginx(inventory(grafana_repo="deb [trusted=yes] http://10.10.10.1/grafana stable main"))
    assert [p for p in ngx["proxies"] if p["name"] == "grafana"][0]["enabled"] is True


def test_chrony_server_on_meta_clients_elsewhere():
    meta = infra.chrony(inventory(), "meta")
    assert meta["meta"] and meta["allow"] == ["10.10.10.0/24"] and meta["local_stratum"] == 10
    assert meta["no_clock_control"] is True          # the sandbox pillar: chronyd -x
    node = infra.chrony(inventory(), "node-1")
    assert node["sources"] == ["server 10.10.10.10 iburst"] and node["allow"] == []
    assert infra.chrony(inventory(ntp_upstream=["pool pool.ntp.org iburst"]), "meta")["sources"] == [
        "pool pool.ntp.org iburst"]
    assert infra.chrony(inventory(node_ntp_enabled=False), "node-1")["enabled"] is False
    assert infra.chrony(inventory(node_ntp_enabled=False), "meta")["enabled"] is True


def test_node_repo_local_never_on_meta():
    assert infra.node(inventory(node_repo_local=True), "meta")["repo_local"] is False
    assert infra.node(inventory(node_repo_local=True), "node-2")["repo_local"] is True
    assert infra.node(inventory(node_repo_local=False), "node-2")["repo_local"] is False
    assert infra.node(inventory(), "node-2")["nameservers"] == ["10.10.10.10"]


def test_every_infra_parameter_has_one_default():
    assert D.INFRA_PARAMS <= set(D.DEFAULTS)
    assert D.DEFAULTS["node_repo_local"] is False and D.DEFAULTS["alert_sink_enabled"] is False


def test_default_inventory_is_valid():
    assert problems() == []


@pytest.mark.parametrize("gvars,expected", [
    ({"prometheus_retention": "two weeks"},
     "pigsty:vars:prometheus_retention: expected a Prometheus duration"),
    ({"prometheus_scrape_timeout": "20s"},
     "pigsty:vars:prometheus_scrape_timeout: 20s is longer than prometheus_scrape_interval"),
    ({"prometheus_alert_for": "soon"}, "pigsty:vars:prometheus_alert_for: expected a duration"),
    ({"alertmanager_route": {"receiver": "pager"}},
     "pigsty:vars:alertmanager_route:receiver: 'pager' is not one of alertmanager_receivers (sink)"),
    ({"grafana_repo": "deb x y", "grafana_package_url": "http://x/g.deb"},
     "pigsty:vars:grafana_package_url: give grafana_repo or grafana_package_url, not both"),
    ({"node_repo_local": "yes"}, "pigsty:vars:node_repo_local: expected true or false"),
    ({"dns_records": ["pigsty.local"]}, "pigsty:vars:dns_records[0]: expected \"ADDRESS NAME"),
    ({"ntp_allow": ["10.10.10.0/33"]}, "pigsty:vars:ntp_allow[0]: expected a network"),
    ({"repo_packages_extra": ["foo; rm -rf /"]}, "pigsty:vars:repo_packages_extra[0]: expected a Debian package name"),
    ({"infra_portal": {"prometheus": {"domain": "bad domain"}}},
     "pigsty:vars:infra_portal:prometheus:domain: expected a host name"),
    ({"node_dns_method": "add"}, "pigsty:vars:node_dns_method: expected overwrite or none"),
    ({"alert_sink_port": 70000}, "pigsty:vars:alert_sink_port: expected a port number"),
    ({"log_port": 0}, "pigsty:vars:log_port: expected a port number"),
    ({"log_collect": "on"}, "pigsty:vars:log_collect: expected true or false"),
    ({"log_retention_size": "lots"}, "pigsty:vars:log_retention_size: expected a size"),
    ({"log_retention_time": "15"}, "pigsty:vars:log_retention_time: expected a duration"),
])
def test_bad_infra_parameters_are_named(gvars, expected):
    found = problems(**gvars)
    assert any(expected in p for p in found), found


def test_infra_parameters_are_global_only():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["prometheus_retention"] = "30d"
    found = inv.validate(pillar)
    assert any("pigsty:clusters:pg-test:vars:prometheus_retention: an infra parameter is global"
               in p for p in found), found


def test_the_https_port_is_a_port_and_not_the_http_one():
    assert problems() == []
    assert any("nginx_ssl_port" in p for p in problems(nginx_ssl_port="443x"))
    assert any("nginx_ssl_port: must differ from nginx_port" in p
               for p in problems(nginx_ssl_port=80))
