"""DNS records of meta's dnsmasq: nodes, instances, clusters, <cluster>-primary, infra."""
import pytest

import pigsty_dns as dns
import pigsty_inventory as inv
from pillar_fixture import default_pillar


def recs(pillar=None, primaries=None):
    return dns.records(inv.inventory(pillar or default_pillar()), primaries)


def lookup(records, name):
    return sorted(ip for n, ip in records if n == name)


def test_nodes_instances_clusters_and_infra_names():
    r = recs()
    assert lookup(r, "meta") == ["10.10.10.10"]
    assert lookup(r, "node-2") == ["10.10.10.12"]
    assert lookup(r, "pg-test-2") == ["10.10.10.12"]
    assert lookup(r, "pg-meta-1") == ["10.10.10.10"]
    assert lookup(r, "pg-test") == ["10.10.10.3"]          # the cluster's VIP
    assert lookup(r, "pg-meta") == ["10.10.10.2"]
    assert lookup(r, "pg-test-primary") == ["10.10.10.11"]  # pillar's primary
    for name in ("pigsty", "p.pigsty", "a.pigsty", "g.pigsty", "h.pigsty"):
        assert lookup(r, name) == ["10.10.10.10"], name
    assert r == sorted(r)


def test_primaries_override_moves_only_the_primary_name():
    r = recs(primaries={"pg-test": "pg-test-2"})
    assert lookup(r, "pg-test-primary") == ["10.10.10.12"]
    assert lookup(r, "pg-test") == ["10.10.10.3"]
    assert lookup(r, "pg-meta-primary") == ["10.10.10.10"]


def test_cluster_without_vip_resolves_to_its_primary():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_vip_enabled"] = False
    assert lookup(recs(pillar), "pg-test") == ["10.10.10.11"]
    assert lookup(recs(pillar, {"pg-test": "pg-test-3"}), "pg-test") == ["10.10.10.13"]


def test_bad_primaries_are_errors_naming_them():
    with pytest.raises(ValueError) as err:
        recs(primaries={"pg-nope": "x"})
    assert "pg-nope" in str(err.value)
    with pytest.raises(ValueError) as err:
        recs(primaries={"pg-test": "pg-meta-1"})
    assert "primaries:pg-test" in str(err.value) and "pg-meta-1" in str(err.value)


def test_extra_records_and_portal_domains_from_pillar():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["dns_records"] = ["10.10.10.10 api.pigsty wiki.pigsty"]
    pillar["pigsty"]["vars"]["infra_portal"] = {"home": {"domain": "home.lan"}}
    r = recs(pillar)
    assert lookup(r, "api.pigsty") == lookup(r, "wiki.pigsty") == ["10.10.10.10"]
    assert lookup(r, "home.lan") == ["10.10.10.10"] and lookup(r, "p.pigsty") == []


def test_hosts_file_lines():
    text = dns.hosts_file(recs())
    lines = [l for l in text.splitlines() if not l.startswith("#")]
    assert "10.10.10.3 pg-test" in lines and "10.10.10.11 pg-test-primary" in lines
    assert text.endswith("\n") and text.startswith("# Managed by Salt")
    assert dns.hosts_file(recs()) == text
