"""etcd with TLS and one user per cluster: what the configuration files get, what the
validation refuses (naming the field, never showing a password), and the meta node's
pillar (pillar/dcs_clusters.sls copies each cluster's etcd password and nothing else)."""
import os

import pytest

import pigsty_etcd
import pigsty_inventory as inv
import pigsty_monitor as mon
import pigsty_pgsql as pgsql
from pillar_fixture import REPO, default_pillar, meta_pillar

CA = "/etc/pki/pigsty/ca.crt"


def conf_of(minion, pillar=None):
    return inv.instance_config(pillar or default_pillar(), minion)


CERT = {"cert": "/etc/pki/pigsty/node.crt", "key": "/etc/pki/pigsty/node.key"}


def test_patroni_reaches_etcd_over_https_with_the_node_certificate_and_no_password():
    """etcd takes a request without a password as the user named like the certificate's CN
    (the node's user, holding its cluster's role): no bcrypt per request."""
    for minion in ("node-2", "meta"):
        etcd = pgsql.patroni_config(conf_of(minion), 4096)["etcd"]
        # every etcd member of the sandbox (dcs_servers: meta, node-1, node-2)
        assert etcd == dict(CERT, hosts=["10.10.10.10:2379", "10.10.10.11:2379", "10.10.10.12:2379"],
                            protocol="https", cacert=CA)
        # no etcd password anywhere in Patroni's file (the REST API's own login stays)
        text = str(pgsql.patroni_config(conf_of(minion), 4096))
        assert "Sandbox.Etcd" not in text


def test_vip_manager_reaches_etcd_over_https_with_the_node_certificate():
    vip = pgsql.vip_manager_config(conf_of("node-1"))
    assert vip["dcs-endpoints"] == "https://10.10.10.10:2379,https://10.10.10.11:2379,https://10.10.10.12:2379"
    assert (vip["etcd-ca-file"], vip["etcd-cert-file"], vip["etcd-key-file"]) == (CA, CERT["cert"], CERT["key"])
    assert "etcd-user" not in vip and "etcd-password" not in vip


def test_without_etcd_auth_tls_and_the_certificate_stay():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["etcd_auth"] = False
    del pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_etcd_password"]
    assert inv.validate(pillar) == []
    etcd = pgsql.patroni_config(conf_of("node-1", pillar), 4096)["etcd"]
    assert etcd == dict(CERT, hosts=["10.10.10.10:2379", "10.10.10.11:2379", "10.10.10.12:2379"],
                        protocol="https", cacert=CA)
    vip = pgsql.vip_manager_config(conf_of("node-1", pillar))
    assert "etcd-user" not in vip and "etcd-password" not in vip and vip["etcd-ca-file"] == CA


def test_a_cluster_without_its_etcd_password_is_refused_naming_the_field():
    pillar = default_pillar()
    del pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_etcd_password"]
    problems = inv.validate(pillar)
    assert problems == ["pigsty:clusters:pg-test:vars:pg_etcd_password: missing password (etcd_auth is on: "
                        "expected the cluster's etcd password, a non-empty string, in the cluster's "
                        "private pillar file)"]


@pytest.mark.parametrize("where,key,value,fragment", [
    ("vars", "etcd_auth", "yes", "pigsty:vars:etcd_auth: expected true or false"),
    ("vars", "pg_etcd_password", "Shared.Secret",
     "pigsty:vars:pg_etcd_password: passwords belong in the cluster's private pillar file"),
    ("cluster", "pg_etcd_password", "Xyzzy\nPlugh",
     "pigsty:clusters:pg-test:vars:pg_etcd_password: the password contains a control character"),
    ("cluster", "pg_etcd_password", 42, "pigsty:clusters:pg-test:vars:pg_etcd_password: missing password"),
    ("cluster", "etcd_auth", False, "pigsty:clusters:pg-test:vars:etcd_auth: an infra parameter is global"),
])
def test_bad_etcd_settings(where, key, value, fragment):
    pillar = default_pillar()
    target = pillar["pigsty"]["vars"] if where == "vars" else pillar["pigsty"]["clusters"]["pg-test"]["vars"]
    target[key] = value
    problems = inv.validate(pillar)
    assert any(fragment in p for p in problems), problems
    assert not any("Shared.Secret" in p or "Xyzzy" in p for p in problems)


def test_the_meta_node_needs_the_root_password_and_every_cluster_password():
    assert inv.validate_dcs_secrets(meta_pillar()) == []
    secrets = inv.dcs_secrets(meta_pillar())
    assert secrets == {"root_password": "Sandbox.Etcd.Root",
                       "users": {"pg-meta": "Sandbox.Etcd.meta", "pg-test": "Sandbox.Etcd.test"}}
    pillar = meta_pillar()
    pillar["pigsty"]["dcs"]["etcd_root_password"] = ""
    del pillar["pigsty"]["dcs"]["etcd_users"]["pg-test"]
    problems = inv.validate_dcs_secrets(pillar)
    assert [p.split(":", 3)[:3] for p in problems] == [["pigsty", "dcs", "etcd_root_password"],
                                                      ["pigsty", "dcs", "etcd_users"]]
    assert "pigsty:dcs:etcd_users:pg-test: missing on the meta node" in problems[1]
    assert inv.validate_dcs_secrets(pillar, clusters=False) == problems[:1]
    pillar["pigsty"]["vars"]["dcs_type"] = "consul"
    assert inv.validate_dcs_secrets(pillar) == []           # not our etcd: nothing needed


def test_prometheus_scrapes_etcd_over_https_with_the_ca_and_the_meta_node_certificate():
    pillar = default_pillar()
    groups = {g["labels"]["job"]: g for g in mon.infra_targets(inv.inventory(pillar))}
    assert groups["etcd"]["labels"]["__scheme__"] == "https"
    assert "__scheme__" not in groups["prometheus"]["labels"]
    infra = [j for j in mon.prometheus_config(inv.inventory(pillar))["scrape_configs"] if j["job_name"] == "infra"]
    assert infra[0]["tls_config"] == {"ca_file": CA, "cert_file": CERT["cert"], "key_file": CERT["key"]}


def test_role_paths_cover_the_cluster_prefix_only():
    assert pigsty_etcd.prefix("/service", "pg-test") == "/service/pg-test"
    assert pigsty_etcd.prefix("/service/", "pg-test") == "/service/pg-test"
    assert pigsty_etcd.prefix("/", "pg-test") == "/pg-test"
    # "/service/pg-test*" would also match pg-test2's keys: the directory and what is under it
    assert pigsty_etcd.role_paths("/service", "pg-test") == ["/service/pg-test", "/service/pg-test/*"]


def test_meta_pillar_gets_only_the_etcd_passwords_of_the_clusters(tmp_path):
    """Salt's own pillar compiler, offline: the meta node's pillar carries each cluster's
    etcd password (copied by pillar/dcs_clusters.sls) and the root password, and no other
    secret of pg-test; node-1 (pg-test) gets neither the root password nor pg-meta's."""
    salt_pillar = pytest.importorskip("salt.pillar")
    from salt_master import master_opts
    opts = master_opts(tmp_path, [os.path.join(REPO, "pillar")])
    opts["file_client"] = "local"
    meta = salt_pillar.Pillar(opts, {"id": "meta"}, "meta", "base").compile_pillar()
    assert not meta.get("_errors"), meta.get("_errors")
    assert meta["pigsty"]["dcs"] == {"etcd_root_password": "Sandbox.Etcd.Root",
                                     "etcd_users": {"pg-meta": "Sandbox.Etcd.meta", "pg-test": "Sandbox.Etcd.test"}}
    assert "pg_admin_password" not in meta["pigsty"]["clusters"]["pg-test"].get("vars", {})
    node = salt_pillar.Pillar(opts, {"id": "node-1"}, "node-1", "base").compile_pillar()
    assert not node.get("_errors"), node.get("_errors")
    assert "dcs" not in node["pigsty"]
    assert node["pigsty"]["clusters"]["pg-test"]["vars"]["pg_etcd_password"] == "Sandbox.Etcd.test"
    assert "pg_etcd_password" not in node["pigsty"]["clusters"]["pg-meta"].get("vars", {})


@pytest.mark.parametrize("test_mode", [True, False])
def test_the_auth_state_without_its_certificate_is_refused_naming_the_file(tmp_path, test_mode):
    from loader import load_module
    mod = load_module("_states/pigsty_etcd.py", pillar=meta_pillar(), opts={"test": test_mode})
    missing = str(tmp_path / "node.crt")
    # a readable CA (the system's bundle), no certificate: nothing is asked of etcd
    ret = mod.auth(name="https://127.0.0.1:2379", ca_file="/etc/ssl/certs/ca-certificates.crt",
                   cert_file=missing, key_file=str(tmp_path / "node.key"))
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"].startswith("refused before any change") and "cert_file %s" % missing in ret["comment"]
    assert "No such file" in ret["comment"]
