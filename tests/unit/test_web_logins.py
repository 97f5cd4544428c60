"""Validation of the web logins' pillar (HAProxy admin page, portal, Grafana): a missing or
bad value is refused naming the field, never showing a password."""
import pytest

import pigsty_crypt
import pigsty_inventory as inv
from pillar_fixture import default_pillar, meta_pillar


def test_the_repository_pillar_is_valid():
    assert inv.validate(default_pillar()) == []
    assert inv.validate_web_secrets(meta_pillar()) == []


def test_a_cluster_without_its_haproxy_admin_password_is_refused():
    pillar = default_pillar()
    del pillar["pigsty"]["clusters"]["pg-test"]["vars"]["haproxy_admin_password"]
    assert inv.validate(pillar) == ["pigsty:clusters:pg-test:vars:haproxy_admin_password: missing password "
                                    "(expected a non-empty string in the cluster's private pillar file)"]


@pytest.mark.parametrize("name", ["ad min", "admin:x", "", "a" * 65, 42])
def test_a_bad_haproxy_admin_username_is_refused(name):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["haproxy_admin_username"] = name
    assert any(p.startswith("pigsty:clusters:pg-test:vars:haproxy_admin_username: expected a user name")
               for p in inv.validate(pillar))


def test_the_meta_node_needs_the_portal_password_and_grafana_s_when_installed():
    pillar = meta_pillar()
    del pillar["pigsty"]["infra"]["portal_password"]
    del pillar["pigsty"]["infra"]["grafana_admin_password"]
    assert inv.validate_web_secrets(pillar) == [
        "pigsty:infra:portal_password: missing password (expected the portal's login (Nginx basic "
        "authentication) in the meta nodes' private pillar file pillar/dcs.sls)"]
    pillar["pigsty"]["vars"]["grafana_repo"] = "deb https://apt.grafana.com stable main"
    problems = inv.validate_web_secrets(pillar)
    assert len(problems) == 2 and problems[1].startswith("pigsty:infra:grafana_admin_password: missing password")
    pillar = meta_pillar()
    pillar["pigsty"]["infra"]["portal_username"] = "bad name"
    pillar["pigsty"]["infra"]["portal_password"] = "Xyzzy\nPlugh"
    problems = inv.validate_web_secrets(pillar)
    assert [p.split(":")[2] for p in problems] == ["portal_username", "portal_password"]
    assert not any("Xyzzy" in p for p in problems)


def test_crypt_hashes_keep_or_replace():
    first = pigsty_crypt.sha512_crypt("pw 1")
    assert pigsty_crypt.verifies("pw 1", first) and not pigsty_crypt.verifies("pw 2", first)
    assert pigsty_crypt.sha512_crypt("pw 1", first) == first
    assert pigsty_crypt.sha512_crypt("pw 2", first) != first
    assert pigsty_crypt.sha512_crypt("pw 1") != first                 # a random salt each time
    assert pigsty_crypt.verifies("pw 1", "not a hash") is False
    assert pigsty_crypt.find_hash("user admin password %s\n" % first, "user admin password ") == first
    assert pigsty_crypt.find_hash("user other password %s\n" % first, "user admin password ") is None
