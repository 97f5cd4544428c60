"""Patroni's REST API settings (_utils/pigsty_patroni_rest.py): HTTPS with the node
certificate, the cluster's login for unsafe methods, the allow-list; and the rendered
config.yml carries them."""
import yaml

import pigsty_inventory as inv
import pigsty_patroni
import pigsty_patroni_rest as rest
import pigsty_pgsql as pgsql
from loader import load_module
from pillar_fixture import default_pillar


def conf_of(minion, pillar=None):
    return inv.instance_config(pillar or default_pillar(), minion)


def test_restapi_serves_https_with_the_node_certificate_and_the_clusters_login():
    api = pgsql.patroni_config(conf_of("node-2"), 4096)["restapi"]
    assert api["listen"] == "0.0.0.0:8008" and api["connect_address"] == "10.10.10.12:8008"
    assert (api["certfile"], api["keyfile"], api["cafile"]) == (
        "/etc/pki/pigsty/node.crt", "/etc/pki/pigsty/node.key", "/etc/pki/pigsty/ca.crt")
    assert api["authentication"] == {"username": "postgres", "password": "Sandbox.Patroni.test"}


def test_allowlist_is_the_members_the_meta_nodes_and_loopback():
    api = pgsql.patroni_config(conf_of("node-1"), 4096)["restapi"]
    assert api["allowlist"] == ["10.10.10.10", "10.10.10.11", "10.10.10.12", "10.10.10.13", "127.0.0.1"]
    assert api["allowlist_include_members"] is True
    meta = pgsql.patroni_config(conf_of("meta"), 4096)["restapi"]
    assert meta["allowlist"] == ["10.10.10.10", "127.0.0.1"]          # pg-test's nodes are not in it


def test_each_cluster_has_its_own_login():
    test = pgsql.patroni_config(conf_of("node-1"), 4096)["restapi"]["authentication"]
    meta = pgsql.patroni_config(conf_of("meta"), 4096)["restapi"]["authentication"]
    assert test["password"] != meta["password"]
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["patroni_username"] = "patroni_api"
    assert pgsql.patroni_config(conf_of("node-3", pillar), 4096)["restapi"]["authentication"][
        "username"] == "patroni_api"


def test_patronictl_verifies_against_the_ca():
    assert pgsql.patroni_config(conf_of("node-1"), 4096)["ctl"] == {
        "insecure": False, "cacert": "/etc/pki/pigsty/ca.crt"}


def test_hostile_passwords_survive_the_yaml_dump():
    pillar = default_pillar()
    hostile = "a: b # c' \"d\" {e} [f] %g & *h !i |j >k"
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["patroni_password"] = hostile
    cfg = pgsql.patroni_config(conf_of("node-1", pillar), 4096)
    back = yaml.safe_load(yaml.safe_dump(cfg))
    assert back["restapi"]["authentication"]["password"] == hostile


def test_client_access_from_the_cluster_config_hides_the_password():
    access = rest.access(conf_of("node-1"))
    assert access.scheme == "https" and access.ca_file == "/etc/pki/pigsty/ca.crt"
    assert access.username == "postgres"
    assert "Sandbox.Patroni.test" not in repr(access) and "Sandbox.Patroni.test" not in str(access)
    # the runner's view: the cluster's resolved parameters (from the full inventory)
    cluster = inv.cluster_vars(default_pillar()["pigsty"], "pg-meta")
    assert rest.access(cluster).headers() != access.headers()
    assert rest.read_access().headers() == {} and rest.read_access().scheme == "https"


def test_access_refuses_half_credentials_and_a_colon_in_the_username():
    import pytest
    with pytest.raises(ValueError, match="both"):
        pigsty_patroni.Access(username="u")
    with pytest.raises(ValueError, match="without ':'"):
        pigsty_patroni.Access(username="a:b", password="p")
    assert pigsty_patroni.PLAIN.scheme == "http" and pigsty_patroni.PLAIN.headers() == {}


def test_every_rest_call_in_the_code_says_how_to_reach_patroni():
    """No client of Patroni's REST API falls back to plain HTTP by forgetting ``access``:
    every call of request / get_json / find_leader outside the client itself passes it."""
    import ast
    import glob
    import os
    from pillar_fixture import REPO
    calls, missing = 0, []
    files = [f for d in ("_utils", "_modules", "_runners", "_states", "_beacons")
             for f in glob.glob(os.path.join(REPO, d, "*.py")) if not f.endswith("pigsty_patroni.py")]
    for path in files:
        with open(path) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "pigsty_patroni"
                    and node.func.attr in ("request", "get_json", "find_leader")):
                calls += 1
                if not any(k.arg == "access" for k in node.keywords):
                    missing.append("%s:%d" % (os.path.relpath(path, REPO), node.lineno))
    assert calls >= 20                     # the scan finds them
    assert missing == []


def test_a_node_client_takes_the_login_from_its_instance_config():
    conf = conf_of("node-2")
    node = rest.node_access({"pigsty.config": lambda: conf})
    assert node.username == "postgres" and node.headers() == rest.access(conf).headers()
    # no instance on the node, or no inventory in its pillar: HTTPS with the CA, no login
    assert rest.node_access({"pigsty.config": lambda: None}).headers() == {}

    def broken():
        raise inv.InventoryError(["pigsty: missing"])
    assert rest.node_access({"pigsty.config": broken}).headers() == {}
    assert rest.node_access({}).scheme == "https"


def test_the_patroni_module_sends_the_login_of_its_node(monkeypatch):
    """_modules/patroni.py: every call goes out with the node's Access."""
    conf = conf_of("node-1")
    mod = load_module("_modules/patroni.py", "patroni_module_rest",
                      salt={"pigsty.config": lambda: conf, "config.option": lambda key, default=None: default})
    seen = []

    def fake_request(host, port, path, method="GET", body=None, timeout=2, access=None):
        seen.append((method, path, access))
        return 200, {"ok": True}
    monkeypatch.setattr(mod.pigsty_patroni, "request", fake_request)
    mod.reload()
    mod.config_patch({"ttl": 30})
    assert [(m, p) for m, p, _a in seen] == [("POST", "/reload"), ("PATCH", "/config")]
    assert all(a.scheme == "https" and a.headers() == rest.access(conf).headers() for _m, _p, a in seen)


def test_patroni_reloads_when_its_certificate_is_renewed():
    """pgsql.patroni includes node.pki and reloads Patroni (SIGHUP: it then serves the new
    certificate) when pki-node-cert changes."""
    import json
    import os
    import jinja2
    from pillar_fixture import REPO
    conf = conf_of("node-2")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(REPO, "salt")),
                             undefined=jinja2.StrictUndefined)
    env.filters["json"] = json.dumps
    salt = {"pigsty.config": lambda: conf, "file.dirname": os.path.dirname,
            "pigsty.dcs_config": lambda: pgsql.dcs_config(conf),
            "pigsty_install.patroni_host": lambda: {"watchdog_mode": "off", "nonlocal_bind": False,
                                                    "watchdog_device": "/dev/watchdog"}}
    state = yaml.safe_load(env.get_template("pgsql/patroni.sls").render(salt=salt))
    assert "node.pki" in state["include"]
    service = {k: v for item in state["patroni-service"]["service.running"] for k, v in item.items()}
    assert service["reload"] is True
    assert {"x509": "pki-node-cert"} in service["watch"] and {"file": "patroni-config"} in service["watch"]
