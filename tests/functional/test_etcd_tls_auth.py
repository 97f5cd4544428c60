"""etcd with TLS and a user per cluster, for real on loopback.

Debian's etcd 3.4.23 (unpacked: tests/support/fetch_exporters.sh) runs with the settings
salt/dcs/init.sls writes to /etc/default/etcd -- client and peer TLS with the node
certificate that salt/node/pki.sls makes (applied for real with salt-call --local:
tests/support/pki_local.py), peers with client certificates. The state that sets up authentication
(_states/pigsty_etcd.py) runs against it with the meta node's pillar. Then: a cluster's user
reads and writes its own prefix and nothing else; a node's certificate (CN = minion id, made
here with the same CA) logs in as that node's user, which reaches its cluster's prefix only;
a client without a certificate, with one of another CA, or with a CN that is no user gets
nothing, on the v2 and the v3 API; Patroni's own etcd client with the settings of
pigsty_pgsql.dcs_client runs a cluster with the certificate; the removal's
pigsty_dcs.forget deletes a cluster's keys as root; and with two meta nodes their masters
share the HA runner's reconcile lock (pigsty_ha_shared_lock) under /pigsty/ha, which only
they may write."""
import copy
import json
import os
import shutil
import tempfile
import time

import pytest
import salt.exceptions

import pigsty_backup_schedule
import pigsty_etcd
import pigsty_ha_locks
import pigsty_ha_shared_lock as shared
import pigsty_inventory
import pigsty_pgsql
import pigsty_pki
from loader import load_module
from local_http import free_port
from pillar_fixture import meta_pillar
from pki_local import client_cert, make_node_pki, stranger_ca
from etcd_local import ETCD, ROOT, Member, etcd_env, wait_healthy
from render import render_dcs_sls, state_arg

ME = "127.0.0.2"          # the meta node's address (the loopback net answers on all of 127/8)


@pytest.fixture(scope="module")
def etcd():
    if not os.access(ETCD, os.X_OK):
        pytest.fail("%s is missing: run tests/support/fetch_exporters.sh (tests/run.sh does)" % ETCD)
    base = tempfile.mkdtemp(prefix="pigsty-etcd-sec-")
    os.chmod(base, 0o755)
    paths = make_node_pki(os.path.join(base, "salt"), ME)
    pki = {"ca.crt": paths["ca_crt"], "node.crt": paths["node_crt"], "node.key": paths["node_key"]}
    client_port, peer_port = free_port(), free_port()
    peer = client_cert(paths, pigsty_pki.ETCD_PEER_CN, os.path.join(base, "peer"), ips=[ME])
    dcs = {"type": "etcd", "consul_hosts": [], "members": [{"name": "meta", "ip": ME, "node": "meta", "meta": True}],
           "client_port": client_port, "peer_port": peer_port, "name": "meta", "auth": True,
           "manager": True, "meta": True, "ca": pki["ca.crt"], "cert": pki["node.crt"], "key": pki["node.key"],
           "peer_cert": peer[0], "peer_key": peer[1], "peer_cn": pigsty_pki.ETCD_PEER_CN,
           "peer": {"group": "ssl-cert", "ca_server": None, "signing_policy": "pigsty-etcd-meta",
                    "CN": pigsty_pki.ETCD_PEER_CN, "subjectAltName": "IP:" + ME, "days_remaining": 30}}
    states = render_dcs_sls(dcs, {"env": {"ETCD_INITIAL_CLUSTER": "meta=https://%s:%d" % (ME, peer_port),
                                          "ETCD_INITIAL_CLUSTER_STATE": "new"}})
    env = etcd_env(states, os.path.join(base, "data"))
    member = Member(env, base, "meta").start()
    url = "https://%s:%d" % (ME, client_port)
    # the meta node's own client: its node certificate (etcd asks every client for one)
    client = pigsty_etcd.Client(url, cafile=pki["ca.crt"], certfile=pki["node.crt"], keyfile=pki["node.key"])
    certs = os.path.join(base, "certs")
    for cn in ("node-1", "node-9", "meta-2"):     # pg-test's member; a node of no cluster; a second meta node
        pki[cn] = client_cert(paths, cn, certs)
    stranger = stranger_ca(os.path.join(base, "stranger"))
    pki["stranger"] = client_cert(paths, "node-1", os.path.join(base, "stranger"), ca_key=stranger[1],
                                  ca_crt=stranger[0])
    try:
        wait_healthy(client, member)
    except AssertionError as exc:
        member.stop(kill=True)
        pytest.fail(str(exc))
    try:
        yield {"url": url, "ca": pki["ca.crt"], "states": states, "env": env, "client": client,
               "port": client_port, "base": base, "pki": pki}
    finally:
        member.stop()
        shutil.rmtree(base, ignore_errors=True)


def state_module(pillar, test=False):
    return load_module("_states/pigsty_etcd.py", pillar=pillar, opts={"test": test})


def auth_state(etcd, pillar, test=False):
    mod = state_module(pillar, test)
    return mod.auth(name=state_arg(etcd["states"], "etcd-auth", "name").replace("127.0.0.1", ME),
                    ca_file=etcd["ca"], cert_file=etcd["pki"]["node.crt"], key_file=etcd["pki"]["node.key"])


def as_node(etcd, cn):
    """A client with node ``cn``'s certificate and no password."""
    crt, key = etcd["pki"][cn]
    return pigsty_etcd.Client(etcd["url"], cafile=etcd["ca"], certfile=crt, keyfile=key)


def test_the_rendered_config_is_tls_only(etcd):
    env = etcd["env"]
    for key in ("ETCD_LISTEN_CLIENT_URLS", "ETCD_ADVERTISE_CLIENT_URLS", "ETCD_LISTEN_PEER_URLS",
                "ETCD_INITIAL_ADVERTISE_PEER_URLS"):
        assert all(u.startswith("https://") for u in env[key].split(",")), key
    # peers: only the etcd peer certificate's CN (a node's own certificate opens nothing)
    assert env["ETCD_PEER_CLIENT_CERT_AUTH"] == "true" and env["ETCD_PEER_CERT_ALLOWED_CN"] == "pigsty-etcd-peer"
    assert env["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    # clients: a certificate of the Pigsty CA, its CN names the user of a password-less request
    assert env["ETCD_CLIENT_CERT_AUTH"] == "true" and env["ETCD_TRUSTED_CA_FILE"] == etcd["ca"]
    # plain HTTP on the client port gets no answer from etcd
    plain = pigsty_etcd.Client("http://%s:%d" % (ME, etcd["port"]), timeout=2)
    with pytest.raises(pigsty_etcd.EtcdError):
        plain.get("/service")
    # nor does a TLS client without a certificate, or with one of another CA
    with pytest.raises(pigsty_etcd.EtcdError):
        pigsty_etcd.Client(etcd["url"], cafile=etcd["ca"], timeout=2).health()
    crt, key = etcd["pki"]["stranger"]
    with pytest.raises(pigsty_etcd.EtcdError):
        pigsty_etcd.Client(etcd["url"], cafile=etcd["ca"], certfile=crt, keyfile=key, timeout=2).health()


def test_auth_state_test_mode_then_apply_then_nothing_to_do(etcd):
    pillar = meta_pillar()
    ret = auth_state(etcd, pillar, test=True)
    assert ret["result"] is None and "v2 auth enabled" in ret["changes"]["would"]
    assert etcd["client"].v2_auth_enabled() is False            # test mode changed nothing
    ret = auth_state(etcd, pillar)
    assert ret["result"] is True, ret
    assert ret["changes"]["done"][:8] == ["v2 user root", "v2 role pg-meta", "v2 user pg-meta",
                                          "v2 role pg-test", "v2 user pg-test", "v2 node user meta",
                                          "v2 node user node-1", "v2 node user node-2"]
    assert {"v2 auth enabled", "v3 root and auth enabled", "v2 guest closed"} <= set(ret["changes"]["done"])
    assert etcd["client"].v2_auth_enabled() is True
    again = auth_state(etcd, pillar)
    assert again["result"] is True and again["changes"] == {}, again
    dry = auth_state(etcd, pillar, test=True)
    assert dry["result"] is True and dry["changes"] == {}
    for ret in (again, dry):
        assert "Sandbox" not in repr(ret)                         # no password in the return


def test_a_cluster_user_reaches_its_own_prefix_only(etcd):
    auth_state(etcd, meta_pillar())
    test_user = etcd["client"].as_user("pg-test", "Sandbox.Etcd.test")
    assert test_user.put("/service/pg-test/leader", "pg-test-1")[0] == 201
    # Patroni reads (and deletes) its cluster as "<namespace>/<cluster>/", recursively
    status, answer = test_user.get("/service/pg-test/", recursive=True)
    assert status == 200 and answer["node"]["nodes"][0]["value"] == "pg-test-1"
    meta_user = etcd["client"].as_user("pg-meta", "Sandbox.Etcd.meta")
    assert meta_user.put("/service/pg-meta/leader", "pg-meta-1")[0] == 201
    # pg-test may not read, write or delete pg-meta's keys, nor a look-alike prefix
    assert test_user.get("/service/pg-meta/leader")[0] == 401
    assert test_user.put("/service/pg-meta/leader", "pg-test-1")[0] == 401
    assert test_user.delete("/service/pg-meta", recursive=True)[0] == 401
    assert test_user.put("/service/pg-test2/leader", "x")[0] == 401
    assert test_user.put("/other", "x")[0] == 401
    assert meta_user.get("/service/pg-meta/leader")[1]["node"]["value"] == "pg-meta-1"
    # nor may it change etcd's users or members
    assert test_user.request("PUT", "/v2/auth/users/pg-test", body={"user": "pg-test", "grant": ["root"]})[0] in (401, 403)
    assert test_user.request("GET", "/v2/members")[0] == 200     # reading the member list is open
    assert test_user.request("DELETE", "/v2/members/1")[0] in (401, 403)


def test_a_node_certificate_reaches_its_cluster_s_prefix_only(etcd):
    auth_state(etcd, meta_pillar())
    node1 = as_node(etcd, "node-1")                 # a member of pg-test
    assert node1.put("/service/pg-test/leader", "pg-test-1")[0] in (200, 201)
    status, answer = node1.get("/service/pg-test/", recursive=True)
    assert status == 200 and answer["node"]["nodes"]
    assert node1.delete("/service/pg-test/leader", prev_value="pg-test-1")[0] == 200
    for status in (node1.get("/service/pg-meta/leader")[0], node1.put("/service/pg-meta/leader", "x")[0],
                   node1.delete("/service/pg-meta", recursive=True)[0], node1.put("/other", "x")[0]):
        assert status == 401
    assert node1.request("PUT", "/v2/auth/users/node-1", body={"user": "node-1", "grant": ["root"]})[0] in (401, 403)
    # a CA-signed certificate whose CN is no user (node-9: in no cluster) gets nothing
    stranger = as_node(etcd, "node-9")
    assert stranger.get("/service/pg-test/leader")[0] == 401
    assert stranger.put("/service/pg-test/leader", "evil")[0] == 401


def test_anonymous_and_wrong_passwords_are_refused(etcd):
    auth_state(etcd, meta_pillar())
    anon = etcd["client"].as_user(None, None)      # the meta node's certificate: user meta (pg-meta)
    assert anon.get("/service/pg-test/leader")[0] == 401
    assert anon.put("/service/pg-test/leader", "evil")[0] == 401
    assert anon.delete("/service/pg-test", recursive=True)[0] == 401
    assert etcd["client"].as_user("pg-test", "Sandbox.Etcd.meta").get("/service/pg-test/leader")[0] == 401
    # the v3 API is locked too. With v3 authentication on, etcd 3.4's HTTP gateway refuses
    # any client certificate (it would drop the CN), so nothing passes it: no key, no member
    # change, no disabling
    for path, body in (("/kv/put", {"key": "L3NlcnZpY2UveA==", "value": "eA=="}),
                       ("/cluster/member/remove", {"ID": "1"}), ("/auth/disable", {})):
        status, answer = anon.v3_call(path, body)
        assert status != 200 and pigsty_etcd.GATEWAY_REFUSES_CN in str(answer), (path, status, answer)
    assert etcd["client"].v2_auth_enabled() is True
    assert etcd["client"].v3_token("root", "Sandbox.Etcd.Root") == (True, None)


def test_patroni_settings_log_in(etcd):
    auth_state(etcd, meta_pillar())
    conf = pigsty_inventory.instance_config(meta_pillar(), "meta")       # pg-meta's member
    section = pigsty_pgsql.dcs_client(conf)
    assert section["protocol"] == "https" and "username" not in section and "password" not in section
    assert (section["cert"], section["key"]) == (pigsty_pki.paths()["node_crt"], pigsty_pki.paths()["node_key"])
    # the node certificate of this test's meta node stands for /etc/pki/pigsty/node.crt
    patroni = pigsty_etcd.Client(etcd["url"], cafile=etcd["ca"], certfile=etcd["pki"]["node.crt"],
                                 keyfile=etcd["pki"]["node.key"])
    key = pigsty_pgsql.leader_key(conf)
    assert patroni.put(key, "pg-meta-1")[0] in (200, 201)
    # the hand-off's early release: compare-and-delete, as the node's user
    assert patroni.delete(key, prev_value="pg-meta-2")[0] == 412
    assert patroni.delete(key, prev_value="pg-meta-1")[0] == 200


def test_a_changed_cluster_password_is_set_and_the_old_one_refused(etcd):
    pillar = meta_pillar()
    auth_state(etcd, pillar)
    changed = copy.deepcopy(pillar)
    changed["pigsty"]["dcs"]["etcd_users"]["pg-test"] = "New.Etcd.test"
    dry = auth_state(etcd, changed, test=True)
    assert dry["result"] is None and dry["changes"] == {"would": ["v2 password pg-test"]}
    ret = auth_state(etcd, changed)
    assert ret["changes"] == {"done": ["v2 password pg-test"]} and "New.Etcd" not in repr(ret)
    assert etcd["client"].as_user("pg-test", "New.Etcd.test").get("/service/pg-test/leader")[0] in (200, 404)
    assert etcd["client"].as_user("pg-test", "Sandbox.Etcd.test").get("/service/pg-test/leader")[0] == 401
    assert auth_state(etcd, pillar)["changes"] == {"done": ["v2 password pg-test"]}    # back


def test_a_wrong_root_password_or_missing_secret_fails_before_any_change(etcd):
    auth_state(etcd, meta_pillar())
    pillar = meta_pillar()
    pillar["pigsty"]["dcs"]["etcd_root_password"] = "Not.The.Root"
    ret = auth_state(etcd, pillar)
    assert ret["result"] is False and "etcd_root_password" in ret["comment"] and "Not.The" not in ret["comment"]
    pillar = meta_pillar()
    del pillar["pigsty"]["dcs"]["etcd_users"]["pg-test"]
    ret = auth_state(etcd, pillar)
    assert ret["result"] is False and ret["comment"].startswith("refused before any change")
    assert "pigsty:dcs:etcd_users:pg-test" in ret["comment"]


def test_forget_deletes_a_cluster_s_keys_as_root(etcd):
    auth_state(etcd, meta_pillar())
    etcd["client"].as_user("pg-test", "Sandbox.Etcd.test").put("/service/pg-test/config", "{}")
    pillar = meta_pillar()
    pillar["pigsty"]["nodes"]["meta"]["ip"] = ME
    pillar["pigsty"]["vars"]["etcd_port"] = etcd["port"]
    pillar["pigsty"]["vars"]["dcs_servers"] = {}          # one member, on the meta node
    mod = load_module("_modules/pigsty_dcs.py", pillar=pillar, salt={"config.get": lambda key, default=None: default})
    paths = {"ca_crt": etcd["ca"], "node_crt": etcd["pki"]["node.crt"], "node_key": etcd["pki"]["node.key"]}
    mod.pigsty_pki = type("P", (), {"paths": staticmethod(lambda pki_dir=None: paths), "PKI_DIR": None})
    assert mod.health() == {"%s:%d" % (ME, etcd["port"]): True}
    assert mod.forget("pg-test") == "deleted /service/pg-test"
    assert mod.forget("pg-test") == "/service/pg-test: no such keys"
    root = etcd["client"].as_user("root", "Sandbox.Etcd.Root")
    assert root.get("/service/pg-test")[0] == 404 and root.get("/service/pg-meta/leader")[0] in (200, 404)


def _patroni_etcd(etcd, scope, cert):
    """Patroni 3.0.2's own etcd (v2) client, from the unpacked Debian packages, with the
    settings of pigsty_pgsql.dcs_client (the test's CA, endpoint and node certificate)."""
    import sys
    dist = os.path.join(ROOT, "usr", "lib", "python3", "dist-packages")
    if not os.path.isdir(os.path.join(dist, "etcd")):
        pytest.fail("python3-etcd is not unpacked in %s: run tests/support/fetch_exporters.sh" % ROOT)
    if dist not in sys.path:
        sys.path.append(dist)
    from patroni.dcs.etcd import Etcd      # pylint: disable=import-outside-toplevel
    return Etcd({"scope": scope, "name": scope + "-1", "namespace": "/service", "ttl": 30,
                 "retry_timeout": 5, "loop_wait": 5, "hosts": ["%s:%d" % (ME, etcd["port"])],
                 "protocol": "https", "cacert": etcd["ca"], "cert": cert[0], "key": cert[1]})


def test_patroni_s_own_client_runs_a_cluster_with_the_node_certificate_only(etcd):
    auth_state(etcd, meta_pillar())
    meta_cert = (etcd["pki"]["node.crt"], etcd["pki"]["node.key"])
    dcs = _patroni_etcd(etcd, "pg-meta", meta_cert)
    assert dcs.get_cluster().leader is None or dcs.delete_cluster()
    assert dcs.initialize(create_new=True, sysid="7000000000000000001")
    assert dcs.touch_member({"conn_url": "postgres://x", "api_url": "https://x", "state": "running", "role": "master"})
    assert dcs.attempt_to_acquire_leader()
    cluster = dcs.get_cluster()
    assert cluster.leader.name == "pg-meta-1" and cluster.initialize == "7000000000000000001"
    assert dcs.delete_cluster() and dcs.get_cluster().leader is None
    # pg-meta's node in pg-test's namespace: Patroni gets nothing and writes nothing
    other = _patroni_etcd(etcd, "pg-test", meta_cert)
    with pytest.raises(Exception):
        other.get_cluster()
    assert not other.initialize(create_new=True, sysid="1")


def test_node_users_follow_the_inventory(etcd):
    """A node that leaves its cluster loses its user (its certificate opens nothing); one
    that moves to another cluster gets that cluster's role instead; a second apply is quiet."""
    pillar = meta_pillar()
    auth_state(etcd, pillar)
    etcd["client"].as_user("root", "Sandbox.Etcd.Root").put("/service/pg-test/leader", "pg-test-1")
    hosts = pillar["pigsty"]["clusters"]["pg-test"]["hosts"]
    moved = copy.deepcopy(pillar)
    del moved["pigsty"]["clusters"]["pg-test"]["hosts"][next(ip for ip in hosts if ip.endswith(".11"))]
    dry = auth_state(etcd, moved, test=True)
    assert dry["result"] is None and dry["changes"] == {"would": ["v2 node user node-1 removed (no longer a member)"]}
    assert as_node(etcd, "node-1").get("/service/pg-test/leader")[0] == 200      # test mode changed nothing
    ret = auth_state(etcd, moved)
    assert ret["changes"] == {"done": ["v2 node user node-1 removed (no longer a member)"]}, ret
    assert as_node(etcd, "node-1").get("/service/pg-test/leader")[0] == 401
    assert auth_state(etcd, moved)["changes"] == {}
    back = auth_state(etcd, pillar)
    assert back["changes"] == {"done": ["v2 node user node-1"]}
    assert as_node(etcd, "node-1").get("/service/pg-test/leader")[0] == 200


def test_a_removed_cluster_s_user_and_role_go_once_its_keys_are_forgotten(etcd):
    """pg-test leaves the inventory: while its keys are in etcd (it may still run: left out of
    pillar by mistake) its user and its nodes' users stay; once the removal's forget deleted
    them, the next apply removes the cluster's user and role and its nodes' users (their
    password and certificates open nothing), test mode first saying so; a second apply is
    quiet, and pg-test back in the inventory gets them again."""
    pillar = meta_pillar()
    auth_state(etcd, pillar)
    root = etcd["client"].as_user("root", "Sandbox.Etcd.Root")
    test_user = etcd["client"].as_user("pg-test", "Sandbox.Etcd.test")
    assert test_user.put("/service/pg-test/leader", "pg-test-1")[0] in (200, 201)
    gone = copy.deepcopy(pillar)
    del gone["pigsty"]["clusters"]["pg-test"]
    try:
        kept = auth_state(etcd, gone)
        assert kept["result"] is True and kept["changes"] == {}, kept
        assert test_user.get("/service/pg-test/leader")[0] == 200
        assert as_node(etcd, "node-1").get("/service/pg-test/leader")[0] == 200
        assert root.delete("/service/pg-test", recursive=True)[0] == 200      # what forget does
        node_users = sorted(n for n, roles in root.v2_users().items() if roles == ["pg-test"] and n != "pg-test")
        assert "node-1" in node_users, node_users
        expected = (["v2 node user %s removed (no longer a member)" % n for n in node_users]
                    + ["v2 user pg-test removed (its cluster left the inventory, no keys left)",
                       "v2 role pg-test removed (its cluster left the inventory, no keys left)"])
        dry = auth_state(etcd, gone, test=True)
        assert dry["result"] is None and dry["changes"] == {"would": expected}, dry
        assert "pg-test" in root.v2_users() and "pg-test" in root.v2_roles()       # test mode changed nothing
        ret = auth_state(etcd, gone)
        assert ret["result"] is True and ret["changes"] == {"done": expected}, ret
        assert "pg-test" not in root.v2_users() and "pg-test" not in root.v2_roles()
        assert test_user.put("/service/pg-test/leader", "pg-test-1")[0] == 401
        assert as_node(etcd, "node-1").get("/service/pg-test/leader")[0] == 401
        # pg-meta and the masters' role are untouched
        assert etcd["client"].as_user("pg-meta", "Sandbox.Etcd.meta").get("/service/pg-meta/")[0] in (200, 404)
        assert auth_state(etcd, gone)["changes"] == {}
    finally:
        back = auth_state(etcd, pillar)
    assert back["result"] is True, back
    assert test_user.put("/service/pg-test/leader", "pg-test-1")[0] in (200, 201)
    assert as_node(etcd, "node-1").get("/service/pg-test/leader")[0] == 200


def test_a_role_someone_else_made_is_never_taken_for_a_removed_cluster(etcd):
    """A role and user that look like nothing pigsty makes (other paths, or a user holding
    other roles too) stay whatever the inventory says."""
    pillar = meta_pillar()
    auth_state(etcd, pillar)
    root = etcd["client"].as_user("root", "Sandbox.Etcd.Root")
    root.v2_put_role("reports", ["/reports", "/reports/*"])
    root.v2_add_user("reports", "Reports.Pass.1", ["reports"])
    root.v2_put_role("pg-old", ["/service/pg-old", "/service/pg-old/*"])
    root.v2_add_user("pg-old", "Old.Pass.1", ["pg-old", "reports"])
    try:
        assert auth_state(etcd, pillar, test=True)["changes"] == {}
        assert {"reports", "pg-old"} <= set(root.v2_roles()) and {"reports", "pg-old"} <= set(root.v2_users())
    finally:
        for name in ("reports", "pg-old"):
            root.v2_delete_user(name)
            root.v2_delete_role(name)


def test_a_node_named_like_another_cluster_is_refused_before_any_change(etcd):
    pillar = meta_pillar()
    auth_state(etcd, pillar)
    renamed = copy.deepcopy(pillar)
    nodes = renamed["pigsty"]["nodes"]
    nodes["pg-meta"] = nodes.pop("node-1")          # a pg-test member named like cluster pg-meta
    ret = auth_state(etcd, renamed)
    assert ret["result"] is False and ret["comment"].startswith("refused before any change")
    assert "node pg-meta (cluster pg-test): named like cluster pg-meta" in ret["comment"], ret
    assert auth_state(etcd, pillar)["changes"] == {}


def _two_meta_nodes(pillar):
    two = copy.deepcopy(pillar)
    nodes = two["pigsty"]["nodes"]
    nodes["meta-2"] = dict(nodes["meta"], ip="10.10.10.9")
    return two


def test_two_masters_share_the_reconcile_lock_and_only_they_may(etcd):
    """Salt's multi-master: each master's HA runner takes a cluster's reconcile lock in etcd
    (its node certificate's user holds the masters' role once the inventory has two meta
    nodes), finds the other's record of the last run, waits while the other holds it, keeps
    it past its TTL while it runs, and gets it when a master died holding it."""
    pillar = meta_pillar()
    auth_state(etcd, pillar)
    two = _two_meta_nodes(pillar)
    steps = ["v2 role pigsty_masters", "v2 grant pigsty_masters to meta", "v2 node user meta-2"]
    dry = auth_state(etcd, two, test=True)
    assert dry["result"] is None and dry["changes"] == {"would": steps}, dry
    ret = auth_state(etcd, two)
    assert ret["result"] is True and ret["changes"] == {"done": steps}, ret
    assert auth_state(etcd, two)["changes"] == {}
    root = etcd["client"].as_user("root", "Sandbox.Etcd.Root")
    assert root.v2_user("meta") == ["pg-meta", "pigsty_masters"]
    assert root.v2_user("meta-2") == ["pigsty_masters"]
    # a database node's certificate opens no HA key; a master's opens no cluster's keys
    assert as_node(etcd, "node-1").create("/pigsty/ha/pg-test/lock", "x", 5)[0] in (401, 403)
    assert as_node(etcd, "meta-2").put("/service/pg-test/leader", "pg-test-9")[0] in (401, 403)

    dead = pigsty_etcd.Client("https://%s:%d" % (ME, free_port()), cafile=etcd["ca"], timeout=1)
    first = shared.Endpoints([dead, etcd["client"]])          # a member down: the next one answers
    second = shared.Endpoints([as_node(etcd, "meta-2")])
    with shared.reconcile_lock(first, "pg-test", "meta_master", wait=2) as last:
        assert last == {}
        last.update(start=1.5, roles={"pg-test-1": "primary"})
        with pytest.raises(shared.Busy, match="master meta_master"):
            with shared.reconcile_lock(second, "pg-test", "meta-2_master", wait=0.3):
                pass
        with shared.reconcile_lock(second, "pg-meta", "meta-2_master", wait=0.3) as other:
            assert other == {}                                 # another cluster: its own lock
    with shared.reconcile_lock(second, "pg-test", "meta-2_master", wait=2) as last:
        assert last == {"start": 1.5, "roles": {"pg-test-1": "primary"}}   # the first one's record
    # a run longer than the TTL keeps its lock (renewed every TTL/3)
    with shared.reconcile_lock(first, "pg-test", "meta_master", wait=2, ttl=2):
        time.sleep(3)
        with pytest.raises(shared.Busy):
            with shared.reconcile_lock(second, "pg-test", "meta-2_master", wait=0.2):
                pass
    # a block that fails releases the lock and leaves the record as it was
    with pytest.raises(RuntimeError):
        with shared.reconcile_lock(first, "pg-test", "meta_master", wait=2) as last:
            last.update(start=99.0)
            raise RuntimeError("step failed")
    assert json.loads(root.get("/pigsty/ha/pg-test/last")[1]["node"]["value"])["start"] == 1.5
    # a master that died holding it: the lock's TTL frees it
    lock_key = shared.keys("pg-test")[0]
    assert first.create(lock_key, json.dumps({"owner": "dead_master"}), 2)[0] == 201
    assert shared.holder(second, "pg-test")["owner"] == "dead_master"
    started = time.monotonic()
    with shared.reconcile_lock(second, "pg-test", "meta-2_master", wait=10):
        waited = time.monotonic() - started
    assert 0.5 < waited < 5, waited
    assert shared.holder(second, "pg-test") is None            # released at the end
    # a planned operation started on one master is seen, and refused, on the other
    with shared.operation_lock(first, "pg-test", "operation", "switchover pg-test-1 -> pg-test-2",
                               "meta_master"):
        assert shared.operation_running(second, "pg-test").startswith(
            "switchover pg-test-1 -> pg-test-2 (master meta_master, since ")
        with pytest.raises(shared.Busy, match="switchover pg-test-1 -> pg-test-2"):
            with shared.operation_lock(second, "pg-test", "operation", "failover to pg-test-3",
                                       "meta-2_master"):
                pass
        # as the runners call it (pigsty_ha_locks): the refusal names the one in progress
        opts = {"cachedir": etcd["base"]}
        with pytest.raises(salt.exceptions.CommandExecutionError,
                           match="failover to pg-test-3 of pg-test refused: switchover pg-test-1"):
            with pigsty_ha_locks.operation_lock(opts, "pg-test", "failover to pg-test-3",
                                                shared=(second, "meta-2_master")):
                pass
        assert pigsty_ha_locks.operation_in_progress(opts, "pg-test", shared=(second, "meta-2_master"))
        assert not pigsty_ha_locks.operation_in_progress(opts, "pg-test")    # this master's own: none
        assert shared.operation_running(second, "pg-test", "backup") is None  # another kind
    assert shared.operation_running(second, "pg-test") is None
    # a scheduled backup's firing: of two masters that see it due, one takes it (a swap)
    rec1, seen1 = pigsty_backup_schedule.record(etcd["base"], "pg-test", (first, "meta_master"))
    rec2, seen2 = pigsty_backup_schedule.record(etcd["base"], "pg-test", (second, "meta-2_master"))
    assert rec1.shared and rec2.shared and seen1 == seen2 == {}
    assert rec1.claim({"since": 1.0}) is True and rec2.claim({"since": 2.0}) is False
    rec1, seen1 = pigsty_backup_schedule.record(etcd["base"], "pg-test", (first, "meta_master"))
    rec2, seen2 = pigsty_backup_schedule.record(etcd["base"], "pg-test", (second, "meta-2_master"))
    assert seen1 == seen2 == {"since": 1.0}
    assert rec2.claim(dict(seen2, fired=5.0)) is True and rec1.claim(dict(seen1, fired=5.0)) is False
    assert rec2.claim(dict(seen2, fired=5.0, last_result={"result": True})) is True   # its own result
    assert pigsty_backup_schedule.record(etcd["base"], "pg-test", (first, "m"))[1]["last_result"] == {"result": True}
    # a database node's certificate cannot move it; etcd out of reach: the master's own file
    assert as_node(etcd, "node-1").swap(pigsty_backup_schedule.key("pg-test"), "{}")[0] in (401, 403)
    alone, seen = pigsty_backup_schedule.record(etcd["base"], "pg-test", (shared.Endpoints([dead]), "meta_master"))
    assert alone.shared is False and seen == {}
    # back to one meta node: its lock is a file again; meta-2's user goes, meta keeps pg-meta
    ret = auth_state(etcd, pillar)
    assert ret["changes"] == {"done": ["v2 revoke pigsty_masters from meta",
                                       "v2 node user meta-2 removed (no longer a member)"]}, ret
    assert root.v2_user("meta") == ["pg-meta"] and root.v2_user("meta-2") is None
    with pytest.raises(pigsty_etcd.EtcdError, match="pigsty_masters"):
        with shared.reconcile_lock(shared.Endpoints([etcd["client"]]), "pg-test", "meta_master", wait=1):
            pass
