"""Three etcd members (dcs_servers) for real on loopback: the first bootstraps, the others
join as learners and are promoted; one member down leaves a working DCS, two down leave
none until one comes back; the peer port admits the peer certificate only.

Each member runs Debian's etcd 3.4 (tests/support/fetch_exporters.sh) with the settings that
salt/dcs/init.sls renders from what ``pigsty_dcs.layout`` says on that node (the module
runs for real with the test's pillar), on its own loopback address. The membership is
kept by the state ``pigsty_etcd.members`` as the first member's node runs it (etcdctl, root's
password in its environment), after ``pigsty_etcd.auth`` switched authentication on.
Differences from the sandbox, all for loopback: members listen on their own address only
(not also on 127.0.0.1, which all three would share) and one client certificate names the
three addresses."""
import copy
import os
import shutil
import socket
import ssl
import tempfile
import time

import pytest

import pigsty_etcd
import pigsty_etcd_members
import pigsty_pki
from etcd_local import ETCD, ETCDCTL, Member, etcd_env, wait_healthy
from loader import load_module
from local_http import free_port
from pillar_fixture import meta_pillar
from pki_local import client_cert, make_node_pki
from render import render_dcs_sls, state_arg

IPS = {"e1": "127.0.0.2", "e2": "127.0.0.3", "e3": "127.0.0.4"}


def pillar_of(client_port, peer_port):
    pillar = copy.deepcopy(meta_pillar())
    inv = pillar["pigsty"]
    for name, ip in IPS.items():
        inv["nodes"][name] = {"ip": ip}
    inv.setdefault("vars", {}).update(dcs_servers=dict(IPS), etcd_port=client_port, etcd_peer_port=peer_port)
    return pillar


def module_of(pillar, node, pki_dir):
    return load_module("_modules/pigsty_dcs.py", pillar=pillar, opts={"id": node},
                       salt={"config.get": lambda key, default=None: pki_dir if key == "pigsty_pki_dir" else default})


@pytest.fixture(scope="module")
def dcs():
    for binary in (ETCD, ETCDCTL):
        if not os.access(binary, os.X_OK):
            pytest.fail("%s is missing: run tests/support/fetch_exporters.sh (tests/run.sh does)" % binary)
    base = tempfile.mkdtemp(prefix="pigsty-etcd-members-")
    os.chmod(base, 0o755)
    paths = make_node_pki(os.path.join(base, "salt"), IPS["e1"])
    server = client_cert(paths, "e1", os.path.join(base, "server"), ips=list(IPS.values()))
    # etcd checks a peer's source address against its certificate: loopback connections come from 127.0.0.1
    peer = client_cert(paths, pigsty_pki.ETCD_PEER_CN, os.path.join(base, "peer"), ips=list(IPS.values()) + ["127.0.0.1"])
    stranger_peer = client_cert(paths, "node-1", os.path.join(base, "node"), ips=list(IPS.values()) + ["127.0.0.1"])
    client_port, peer_port = free_port(), free_port()
    pillar = pillar_of(client_port, peer_port)
    pki_dir = os.path.dirname(paths["ca_crt"])
    members, layouts = {}, {}
    for node in IPS:
        mod = module_of(pillar, node, pki_dir)
        lay = mod.layout()
        lay.update(cert=server[0], key=server[1], peer_cert=peer[0], peer_key=peer[1])
        layouts[node] = lay
        data_dir = os.path.join(base, node, "data")
        members[node] = Member({}, base, node)
        members[node].prepare = (lambda m=members[node], mod=mod, lay=lay, node=node, data_dir=data_dir:
                                 _prepare(m, mod, lay, node, data_dir, client_port))
    clients = {n: pigsty_etcd.Client("https://%s:%d" % (ip, client_port), cafile=paths["ca_crt"],
                                     certfile=server[0], keyfile=server[1], timeout=3) for n, ip in IPS.items()}
    try:
        yield {"pillar": pillar, "members": members, "layouts": layouts, "clients": clients, "paths": paths,
               "server": server, "peer": peer, "stranger_peer": stranger_peer, "client_port": client_port,
               "peer_port": peer_port}
    finally:
        for m in members.values():
            m.stop(kill=True)
        if not os.environ.get("KEEP_ETCD_LOGS"):
            shutil.rmtree(base, ignore_errors=True)


def _prepare(member, mod, lay, node, data_dir, client_port):
    """Render salt/dcs for ``node`` as its node would now (pigsty_dcs.initial asks the
    running members), and set the member's environment from it."""
    member.initial = mod.initial(data_dir=data_dir)
    member.states = render_dcs_sls(lay, member.initial)
    if "env" in member.initial:     # a member that started once keeps its environment
        member.env = etcd_env(member.states, data_dir)
        member.env["ETCD_LISTEN_CLIENT_URLS"] = "https://%s:%d" % (IPS[node], client_port)
    return member


def members_state(d, test=False):
    mod = load_module("_states/pigsty_etcd.py", pillar=d["pillar"], opts={"test": test})
    name = state_arg(d["members"]["e1"].states, "etcd-members", "name").replace("127.0.0.1", IPS["e1"])
    os.environ["PATH"] = os.path.dirname(ETCDCTL) + ":" + os.environ.get("PATH", "")
    return mod.members(name=name, ca_file=d["paths"]["ca_crt"], cert_file=d["server"][0],
                       key_file=d["server"][1], wait=30)


def auth_state(d):
    mod = load_module("_states/pigsty_etcd.py", pillar=d["pillar"], opts={"test": False})
    return mod.auth(name="https://%s:%d" % (IPS["e1"], d["client_port"]), ca_file=d["paths"]["ca_crt"],
                    cert_file=d["server"][0], key_file=d["server"][1])


def ctl(d):
    root = d["pillar"]["pigsty"]["dcs"]["etcd_root_password"]
    return pigsty_etcd_members.Etcdctl(["https://%s:%d" % (IPS["e1"], d["client_port"])], d["paths"]["ca_crt"],
                                       d["server"][0], d["server"][1], user="root", password=root,
                                       binary=ETCDCTL)


def writes(d, node, value, timeout=5):
    """Whether pg-test's user can write its leader key through ``node``'s member."""
    user = pigsty_etcd.Client(d["clients"][node].endpoint, cafile=d["paths"]["ca_crt"], certfile=d["server"][0],
                              keyfile=d["server"][1], username="pg-test", password="Sandbox.Etcd.test",
                              timeout=timeout)
    try:
        return user.put("/service/pg-test/leader", value)[0] in (200, 201)
    except pigsty_etcd.EtcdError:
        return False


def test_layout_names_the_first_member_and_how_each_starts(dcs):
    lay = dcs["layouts"]
    assert [m["name"] for m in lay["e1"]["members"]] == ["e1", "e2", "e3"]
    assert lay["e1"]["manager"] is True and lay["e2"]["manager"] is False
    assert lay["e2"]["peer"]["CN"] == pigsty_pki.ETCD_PEER_CN
    assert lay["e2"]["peer"]["signing_policy"] == "pigsty-etcd-e2"
    first = dcs["members"]["e1"].prepare()
    assert first.initial == {"env": {"ETCD_INITIAL_CLUSTER": "e1=https://127.0.0.2:%d" % dcs["peer_port"],
                                     "ETCD_INITIAL_CLUSTER_STATE": "new"}}
    # only the first member's node manages users and members
    assert "etcd-members" in first.states and "etcd-auth" in first.states
    # a member that no running member lists cannot start: said by a failing state, before etcd starts
    second = dcs["members"]["e2"].prepare()
    assert "no other etcd member answered" in second.initial["error"], second.initial
    assert "etcd-joins" in second.states and "etcd-initial" not in second.states
    assert "etcd-members" not in second.states and "etcd-auth" not in second.states


def test_members_join_one_at_a_time_as_learners_and_are_promoted(dcs):
    members, clients = dcs["members"], dcs["clients"]
    members["e1"].prepare().start()
    wait_healthy(clients["e1"], members["e1"])
    assert auth_state(dcs)["result"] is True
    assert "not a member of the etcd cluster yet" in members["e2"].prepare().initial["error"]

    dry = members_state(dcs, test=True)
    assert dry["result"] is None and dry["changes"] == {"would": {"added": ["e2"]}}, dry
    assert [m["name"] for m in ctl(dcs).members()] == ["e1"]          # the dry run changed nothing

    ret = members_state(dcs)
    assert ret["result"] is True and ret["changes"] == {"added": ["e2"]}, ret
    assert "e3" in ret["comment"] and "Sandbox" not in repr(ret) and "Sandbox" not in repr(dry)
    live = ctl(dcs).members()
    assert sorted(m["learner"] for m in live) == [False, True]
    assert writes(dcs, "e1", "one")                  # a learner: the quorum is still e1 alone
    assert "has not started" in members["e3"].prepare().initial.get("error", ""), members["e3"].initial

    e2 = members["e2"].prepare()
    assert e2.initial["env"]["ETCD_INITIAL_CLUSTER_STATE"] == "existing"
    assert e2.initial["env"]["ETCD_INITIAL_CLUSTER"] == "e1=https://127.0.0.2:{0},e2=https://127.0.0.3:{0}".format(
        dcs["peer_port"])
    e2.start()
    wait_healthy(clients["e2"], e2, timeout=60)
    ret = members_state(dcs)
    assert ret["result"] is True and ret["changes"] == {"promoted": ["e2"], "added": ["e3"]}, ret

    e3 = members["e3"].prepare()
    assert e3.initial["env"]["ETCD_INITIAL_CLUSTER"].count("https://") == 3
    e3.start()
    wait_healthy(clients["e3"], e3, timeout=60)
    ret = members_state(dcs)
    assert ret["result"] is True and ret["changes"] == {"promoted": ["e3"]}, ret
    live = ctl(dcs).members()
    assert sorted(m["name"] for m in live) == ["e1", "e2", "e3"] and not any(m["learner"] for m in live)
    again = members_state(dcs)
    assert again["result"] is True and again["changes"] == {}, again
    assert writes(dcs, "e3", "three")
    # started members keep their settings: nothing to write any more
    assert members["e1"].prepare().initial == {"started": True}


def test_one_member_down_leaves_a_working_dcs_two_down_none(dcs):
    members, clients = dcs["members"], dcs["clients"]
    if not all(m.running() for m in members.values()):
        pytest.fail("the members did not all run (see the test before)")
    members["e1"].stop(kill=True)                        # the first member, often the leader
    deadline = time.monotonic() + 20
    while not writes(dcs, "e2", "after-e1") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert writes(dcs, "e3", "after-e1-3"), members["e3"].log()
    members["e2"].stop(kill=True)
    assert not writes(dcs, "e3", "no-quorum", timeout=3)  # one of three: no majority, no write
    members["e1"].start()
    deadline = time.monotonic() + 30
    while not writes(dcs, "e3", "back") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert writes(dcs, "e1", "back-1"), members["e1"].log()
    status, answer = clients["e3"].get("/service/pg-test/leader")
    assert status == 401 or answer is not None        # reading needs a login now; the write above read back
    members["e2"].start()
    wait_healthy(clients["e2"], members["e2"], timeout=60)


def _peer_handshake(dcs, cert):
    ctx = ssl.create_default_context(cafile=dcs["paths"]["ca_crt"])
    ctx.load_cert_chain(*cert)
    with socket.create_connection((IPS["e1"], dcs["peer_port"]), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname=IPS["e1"]) as tls:
            tls.sendall(b"GET /members HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return tls.recv(200)


def test_the_peer_port_admits_the_peer_certificate_only(dcs):
    if not dcs["members"]["e1"].running():
        pytest.fail("e1 does not run (see the tests before)")
    assert _peer_handshake(dcs, dcs["peer"]).startswith(b"HTTP/1.1 200")
    # a node's own certificate (same CA, another CN): etcd closes the connection
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        answer = _peer_handshake(dcs, dcs["stranger_peer"])
        if not answer:
            raise ConnectionError("closed")
