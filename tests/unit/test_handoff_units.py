"""The switchover hand-off's pure parts: HAProxy's `show servers state` (with the held flag),
the hand-off's runtime commands and their whitelist, pg_controldata / WAL positions,
pgbouncer's forwarded databases, and the argument checks of the execution modules
(pigsty_haproxy.run, pigsty_handoff, pgbouncer.forward). No network, no sockets."""
import os
import pwd
import stat

import pytest
import salt.exceptions

import pigsty_haproxy as hx
import pigsty_inventory as inv
import pigsty_patroni as patroni
import pigsty_pgsql as pgsql
from loader import load_module
from pillar_fixture import default_pillar


HEADER = ("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
          "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
          "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
          "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
          "srv_agent_port")


def row(be_id, backend, srv_id, server, addr, op, admin, check_state, port=6432, check_port=8008):
    return ("%d %s %d %s %s %d %d 100 100 26 15 3 3 %d 0 0 0 - %d - 0 %d - - %d"
            % (be_id, backend, srv_id, server, addr, op, admin, check_state, port, check_port, check_port))


STATE_TEXT = "\n".join([
    "1",
    HEADER,
    row(3, "pg-test-primary", 1, "pg-test-1", "10.10.10.11", 2, 0, 6),    # UP, checks enabled
    row(3, "pg-test-primary", 2, "pg-test-2", "10.10.10.12", 0, 0, 2),    # DOWN, checks disabled: held
    row(3, "pg-test-primary", 3, "pg-test-3", "10.10.10.13", 0, 0, 7),    # check in progress (0x1)
    row(4, "pg-test-replica", 1, "pg-test-1", "10.10.10.11", 2, 0x10, 6),  # inherited drain
    row(4, "pg-test-replica", 2, "pg-test-2", "10.10.10.12", 0, 0x01, 6),  # forced maintenance
    row(4, "pg-test-replica", 3, "pg-test-3", "10.10.10.13", 3, 0, 6),     # STOPPING
    # 5436 tracks 5433: no checks of its own (srv_check_state 0)
    row(5, "pg-test-default", 1, "pg-test-1", "10.10.10.11", 2, 0, 0, port=5432, check_port=0),
    "",
    "6 pg-test-short 1 pg-test-1",                                         # truncated: ignored
    "",
])


@pytest.fixture
def haproxy_answers(monkeypatch):
    """pigsty_haproxy.command replaced: records the commands, answers from a dict."""
    sent, answers = [], {}

    def fake_command(cmd, path=hx.SOCKET, timeout=2.0):
        sent.append((cmd, path))
        return answers.get(cmd, "")

    monkeypatch.setattr(hx, "command", fake_command)
    return sent, answers


# ------------------------------------------------------------------ show servers state
def test_servers_state_parses_op_admin_addr_and_held(haproxy_answers):
    sent, answers = haproxy_answers
    answers["show servers state"] = STATE_TEXT
    state = hx.servers_state("/tmp/test.sock")
    assert sent == [("show servers state", "/tmp/test.sock")]
    assert sorted(state) == ["pg-test-default", "pg-test-primary", "pg-test-replica"]
    primary = state["pg-test-primary"]
    assert primary["pg-test-1"] == {"op": "UP", "admin": "READY", "addr": "10.10.10.11", "held": False}
    assert primary["pg-test-2"] == {"op": "DOWN", "admin": "READY", "addr": "10.10.10.12", "held": True}
    assert primary["pg-test-3"]["held"] is False          # 7 = in progress + configured + enabled
    replica = state["pg-test-replica"]
    assert replica["pg-test-1"]["admin"] == "DRAIN" and replica["pg-test-1"]["held"] is False
    assert replica["pg-test-2"]["admin"] == "MAINT" and replica["pg-test-2"]["op"] == "DOWN"
    assert replica["pg-test-3"]["op"] == "STOPPING"
    # a tracking server has no checks: not held
    assert state["pg-test-default"]["pg-test-1"] == {
        "op": "UP", "admin": "READY", "addr": "10.10.10.11", "held": False}


def test_servers_state_short_rows_default_to_not_held(haproxy_answers):
    _sent, answers = haproxy_answers
    # an older format without srv_check_state: treated as checks enabled
    answers["show servers state"] = "1\n# be_id be_name ...\n3 pg-test-primary 1 pg-test-1 10.10.10.11 2 0 100\n"
    assert hx.servers_state() == {"pg-test-primary": {"pg-test-1": {
        "op": "UP", "admin": "READY", "addr": "10.10.10.11", "held": False}}}


def test_forced_drain_reads_as_drain(haproxy_answers):
    _sent, answers = haproxy_answers
    answers["show servers state"] = "\n".join([
        "1", HEADER, row(3, "pg-test-primary", 1, "pg-test-1", "10.10.10.11", 2, 0x08, 6)])
    state = hx.servers_state()
    assert state["pg-test-primary"]["pg-test-1"]["admin"] == "DRAIN"
    assert hx.held_servers(state) == ["pg-test-1"]


# ------------------------------------------------------------------ plan / held servers
def current_view():
    return {
        "pg-test-primary": {
            "pg-test-1": {"op": "UP", "admin": "READY", "addr": "a", "held": True},     # hand-off hold
            "pg-test-2": {"op": "DOWN", "admin": "READY", "addr": "b", "held": False},
            "pg-test-3": {"op": "UP", "admin": "READY", "addr": "c", "held": False},
        },
        "pg-test-replica": {
            "pg-test-1": {"op": "UP", "admin": "DRAIN", "addr": "a", "held": False},
            "pg-test-2": {"op": "UP", "admin": "MAINT", "addr": "b", "held": False},
            "pg-test-3": {"op": "DOWN", "admin": "READY", "addr": "c"},                   # no held key
        },
    }


def test_plan_leaves_drained_maintained_and_held_servers_alone():
    want = {"pg-test-primary": {"pg-test-1": "down", "pg-test-2": "up", "pg-test-3": "down"},
            "pg-test-replica": {"pg-test-1": "down", "pg-test-2": "down", "pg-test-3": "up"}}
    assert hx.plan(current_view(), want) == [
        "set server pg-test-primary/pg-test-2 health up",
        "set server pg-test-primary/pg-test-3 health down",
        "set server pg-test-replica/pg-test-3 health up",
    ]


def test_held_servers_are_drained_or_checks_disabled():
    assert hx.held_servers(current_view()) == ["pg-test-1"]
    view = current_view()
    view["pg-test-primary"]["pg-test-1"]["held"] = False
    view["pg-test-replica"]["pg-test-1"]["admin"] = "READY"
    assert hx.held_servers(view) == []          # MAINT is an operator's, not a hold


# ------------------------------------------------------------------ hand-off commands
def services_and_port():
    conf = inv.instance_config(default_pillar(), "node-2")
    return pgsql.haproxy_services(conf), conf["pgbouncer_port"]


def test_handoff_backends_of_pg_test():
    services, port = services_and_port()
    assert port == 6432
    leader, pgb = hx.handoff_backends(services, port)
    assert leader == ["pg-test-primary"]            # pg-test-default tracks it
    assert pgb == ["pg-test-primary", "pg-test-replica"]


def test_handoff_hold_route_release_commands():
    leader, pgb = hx.handoff_backends(*services_and_port())
    assert hx.handoff_hold(leader, "pg-test-1") == ["disable health pg-test-primary/pg-test-1"]
    assert hx.handoff_route(leader, pgb, "pg-test-1", "pg-test-2") == [
        "enable health pg-test-primary/pg-test-2",
        "set server pg-test-primary/pg-test-2 health up",
        "set server pg-test-primary/pg-test-2 state ready",
        "set server pg-test-replica/pg-test-2 state ready",
        "set server pg-test-primary/pg-test-1 state drain",
        "set server pg-test-replica/pg-test-1 state drain",
    ]
    # the old primary, now a replica: down in the leader services before its checks resume
    assert hx.handoff_release(leader, pgb, "pg-test-1", False) == [
        "set server pg-test-primary/pg-test-1 health down",
        "enable health pg-test-primary/pg-test-1",
        "set server pg-test-primary/pg-test-1 state ready",
        "set server pg-test-replica/pg-test-1 state ready",
    ]
    # a server that is the primary (again) is not marked down
    assert hx.handoff_release(leader, pgb, "pg-test-1", True) == [
        "enable health pg-test-primary/pg-test-1",
        "set server pg-test-primary/pg-test-1 state ready",
        "set server pg-test-replica/pg-test-1 state ready",
    ]


def test_every_handoff_command_is_allowed():
    leader, pgb = hx.handoff_backends(*services_and_port())
    cmds = (hx.handoff_hold(leader, "pg-test-1") + hx.handoff_route(leader, pgb, "pg-test-1", "pg-test-2")
            + hx.handoff_release(leader, pgb, "pg-test-1", False) + hx.handoff_release(leader, pgb, "pg-test-2", True)
            + hx.plan(current_view(), {"pg-test-primary": {"pg-test-2": "up", "pg-test-3": "down"}}))
    assert len(cmds) == 16
    for cmd in cmds:
        assert hx.RUNTIME_COMMAND.fullmatch(cmd), cmd


@pytest.mark.parametrize("cmd", [
    "shutdown sessions server x/y",
    "set server a/b addr 1.2.3.4",
    "disable health a/b; show stat",
    "set server a/b health up\n",
    "set server a/b health up\nshutdown sessions server a/b",
    "set server a/b state maint now",
    "set server a/b health upx",
    "set server a/b weight 0",
    "set server /b health up",
    "set server a b health up",
    "enable agent a/b",
    "disable health a/b/c",
    "show servers state",
    "",
])
def test_runtime_whitelist_refuses_other_commands(cmd):
    assert hx.RUNTIME_COMMAND.fullmatch(cmd) is None


# ------------------------------------------------------------------ WAL positions
def test_lsn():
    assert patroni.lsn("0/4193888") == 0x4193888
    assert patroni.lsn("1/0") == 2 ** 32
    assert patroni.lsn(" 2/A0 ") == 2 * 2 ** 32 + 0xA0
    with pytest.raises(ValueError):
        patroni.lsn("nope")


CONTROLDATA = """pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7312345678901234567
Database cluster state:               {state}
pg_control last modified:             Mon 01 Jan 2024 10:00:00 AM UTC
Latest checkpoint location:           0/5000060
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's TimeLineID:       3
"""


def test_parse_controldata_fields():
    data = patroni.parse_controldata(CONTROLDATA.format(state="shut down"))
    assert data["Database cluster state"] == "shut down"
    assert data["Latest checkpoint's TimeLineID"] == "3"
    assert data["pg_control last modified"] == "Mon 01 Jan 2024 10:00:00 AM UTC"   # split at the first ':'


@pytest.mark.parametrize("state,expected", [
    ("shut down", 0x5000060),
    ("in production", None),
    ("shut down in recovery", None),
    ("in archive recovery", None),
])
def test_shutdown_checkpoint(state, expected):
    assert patroni.shutdown_checkpoint(patroni.parse_controldata(CONTROLDATA.format(state=state))) == expected


def test_shutdown_checkpoint_without_or_with_bad_location():
    assert patroni.shutdown_checkpoint({"Database cluster state": "shut down"}) is None
    assert patroni.shutdown_checkpoint({"Database cluster state": "shut down",
                                        "Latest checkpoint location": "garbage"}) is None
    assert patroni.shutdown_checkpoint(patroni.parse_controldata("")) is None


def test_wal_position():
    assert patroni.wal_position({"xlog": {"received_location": 100, "replayed_location": 90}}) == 100
    assert patroni.wal_position({"xlog": {"received_location": 80, "replayed_location": 90}}) == 90
    assert patroni.wal_position({"xlog": {"replayed_location": 90}}) == 90
    assert patroni.wal_position({"xlog": {"location": 500}}) is None      # a primary's answer
    assert patroni.wal_position({"xlog": {"received_location": "0/100"}}) is None
    assert patroni.wal_position({}) is None and patroni.wal_position(None) is None


# ------------------------------------------------------------------ pgbouncer databases, leader key
def conf_of(minion, **cluster_vars):
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"].update(cluster_vars)
    return inv.instance_config(pillar, minion)


def test_pgbouncer_databases_forwarded_or_local():
    conf = conf_of("node-1")
    local = pgsql.pgbouncer_databases(conf)
    forwarded = pgsql.pgbouncer_databases(conf, forward_to="10.10.10.12")
    assert [d["name"] for d in local] == [d["name"] for d in forwarded] == ["test", "postgres"]
    assert [d["line"] for d in local] == ["host=/var/run/postgresql port=5432 dbname=test",
                                          "host=/var/run/postgresql port=5432 dbname=postgres"]
    assert [d["line"] for d in forwarded] == ["host=10.10.10.12 port=5432 dbname=test",
                                              "host=10.10.10.12 port=5432 dbname=postgres"]


def test_pgbouncer_database_file():
    databases = pgsql.pgbouncer_databases(conf_of("node-1"), forward_to="10.10.10.12")
    text = pgsql.pgbouncer_database_file(databases)
    assert text.endswith("\n") and text.startswith(";;")
    lines = [l for l in text.splitlines() if l and not l.startswith(";")]
    assert lines == ["test = host=10.10.10.12 port=5432 dbname=test",
                     "postgres = host=10.10.10.12 port=5432 dbname=postgres"]


def test_leader_key_etcd_and_consul():
    conf = conf_of("node-2")
    assert conf["dcs_type"] == "etcd" and pgsql.leader_key(conf) == "/service/pg-test/leader"
    assert pgsql.leader_key(conf_of("node-2", pg_namespace="/pigsty/")) == "/pigsty/pg-test/leader"
    pillar = default_pillar()
    pillar["pigsty"]["vars"].update({"dcs_type": "consul", "consul_hosts": ["10.10.10.10:8500"]})
    consul = inv.instance_config(pillar, "node-2")
    assert consul["dcs_type"] == "consul" and pgsql.leader_key(consul) == "service/pg-test/leader"


# ------------------------------------------------------------------ execution modules
@pytest.fixture
def haproxy_mod(haproxy_answers):
    mod = load_module("_modules/pigsty_haproxy.py", "mod_pigsty_haproxy")
    assert mod.pigsty_haproxy is hx          # the patched command is the one it sends through
    mod.__salt__ = {"config.option": lambda key, default=None: default}
    return mod


def test_run_sends_valid_commands_in_order(haproxy_mod, haproxy_answers):
    sent, _answers = haproxy_answers
    cmds = ["disable health pg-test-primary/pg-test-1",
            "set server pg-test-primary/pg-test-2 health up",
            "set server pg-test-replica/pg-test-1 state drain"]
    assert haproxy_mod.run(cmds) == {"commands": cmds}
    assert sent == [(c, hx.SOCKET) for c in cmds]


def test_run_accepts_one_command_as_a_string(haproxy_mod, haproxy_answers):
    sent, _answers = haproxy_answers
    assert haproxy_mod.run("enable health pg-test-primary/pg-test-1") == {
        "commands": ["enable health pg-test-primary/pg-test-1"]}
    assert [c for c, _ in sent] == ["enable health pg-test-primary/pg-test-1"]


@pytest.mark.parametrize("commands", [
    ["set server pg-test-primary/pg-test-1 health up", "shutdown sessions server pg-test-primary/pg-test-1"],
    ["set server pg-test-primary/pg-test-1 addr 10.0.0.66"],
    ["disable health a/b; show stat"],
    ["set server pg-test-primary/pg-test-1 health up", 42],
    ("set server pg-test-primary/pg-test-1 health up",),
    {"set server pg-test-primary/pg-test-1 health up": 1},
])
def test_run_refuses_before_sending_anything(haproxy_mod, haproxy_answers, commands):
    sent, _answers = haproxy_answers
    with pytest.raises(salt.exceptions.SaltInvocationError) as err:
        haproxy_mod.run(commands)
    assert str(err.value).startswith("commands:")
    assert sent == []


def test_run_stops_at_the_first_refused_command(haproxy_mod, haproxy_answers):
    sent, answers = haproxy_answers
    answers["set server pg-test-primary/pg-test-9 health up"] = "No such server.\n"
    with pytest.raises(salt.exceptions.CommandExecutionError, match="No such server"):
        haproxy_mod.run(["set server pg-test-primary/pg-test-9 health up",
                         "set server pg-test-primary/pg-test-1 health down"])
    assert [c for c, _ in sent] == ["set server pg-test-primary/pg-test-9 health up"]


def test_apply_health_dry_run_reports_commands_and_held(haproxy_mod, haproxy_answers):
    sent, answers = haproxy_answers
    answers["show servers state"] = STATE_TEXT
    want = {"pg-test-primary": {"pg-test-1": "down", "pg-test-2": "up", "pg-test-3": "up"}}
    res = haproxy_mod.apply_health(want, test=True)
    # pg-test-2 is held (checks disabled): left alone
    assert res == {"commands": ["set server pg-test-primary/pg-test-1 health down",
                                "set server pg-test-primary/pg-test-3 health up"],
                   "held": ["pg-test-1", "pg-test-2"], "test": True}
    assert [c for c, _ in sent] == ["show servers state"]


MEMBERS = {"pg-test-1": "10.10.10.11", "pg-test-2": "10.10.10.12", "pg-test-3": "10.10.10.13"}


@pytest.fixture(scope="module")
def handoff_mod():
    return load_module("_modules/pigsty_handoff.py", "mod_pigsty_handoff")


@pytest.mark.parametrize("leader,members,candidate", [
    ("pg-test-1", MEMBERS, None),
    ("pg-test-1", MEMBERS, "pg-test-2"),
    ("pg-test-3", {"pg-test-3": "10.10.10.13", "pg-test-1": "10.10.10.11"}, "pg-test-1"),
])
def test_check_members_accepts(handoff_mod, leader, members, candidate):
    assert handoff_mod._check_members(leader, members, candidate) is None


@pytest.mark.parametrize("leader,members,candidate,field", [
    ("pg-test-1", ["pg-test-1", "pg-test-2"], None, "members"),
    ("pg-test-1", {}, None, "members"),
    ("pg-test-1", None, None, "members"),
    ("pg-test-1", dict(MEMBERS, **{"pg-test-2": "10.10.10.999"}), None, "members"),
    ("pg-test-1", dict(MEMBERS, **{"pg-test-2": "node-2"}), None, "members"),
    ("pg-test-1", dict(MEMBERS, **{"pg-test-2": None}), None, "members"),
    ("pg-test-1", dict(MEMBERS, **{"pg-test-2": "fe80::1"}), None, "members"),
    ("pg-test-9", MEMBERS, None, "leader"),
    ("pg-test-1", MEMBERS, "pg-test-1", "candidate"),
    ("pg-test-1", MEMBERS, "pg-test-9", "candidate"),
])
def test_check_members_refuses(handoff_mod, leader, members, candidate, field):
    with pytest.raises(salt.exceptions.SaltInvocationError) as err:
        handoff_mod._check_members(leader, members, candidate)
    assert str(err.value).startswith(field + ":"), str(err.value)


def test_check_members_candidate_message_lists_the_others(handoff_mod):
    with pytest.raises(salt.exceptions.SaltInvocationError, match="expected one of: pg-test-2, pg-test-3"):
        handoff_mod._check_members("pg-test-1", MEMBERS, "pg-test-1")


@pytest.fixture
def pgb(monkeypatch, tmp_path):
    """_modules/pgbouncer.py with its files in tmp_path; console and chown recorded."""
    mod = load_module("_modules/pgbouncer.py", "mod_pgbouncer")
    me = pwd.getpwuid(os.getuid())
    conf = conf_of("node-1")
    mod.FORWARD_FILE = str(tmp_path / "pigsty-forward")
    mod.DATABASES_FILE = str(tmp_path / "database.txt")
    console, chowned = [], []

    def pigsty_pgbouncer(forward_to=None):
        # as _modules/pigsty.py does: the databases follow the marker while forwarding
        dbs = pgsql.pgbouncer_databases(conf, forward_to or mod.forwarding())
        return {"database_file": pgsql.pgbouncer_database_file(dbs)}

    mod.__salt__ = {"config.option": lambda key, default=None: me.pw_name if key == "pgbouncer.dbsu" else default,
                    "pigsty.pgbouncer": pigsty_pgbouncer}
    monkeypatch.setattr(mod, "_console", lambda command, port=None, user=None, timeout=10: console.append(command))
    monkeypatch.setattr(os, "chown", lambda path, uid, gid: chowned.append((os.path.basename(path), uid, gid)))
    mod.console, mod.chowned, mod.me, mod.tmp = console, chowned, me, tmp_path
    return mod


def read(path):
    with open(path) as fh:
        return fh.read()


def test_forward_writes_marker_and_databases_then_reloads(pgb):
    assert pgb.forwarding() is None
    assert pgb.forward("10.10.10.12") is True
    assert read(pgb.FORWARD_FILE) == "10.10.10.12\n"
    text = read(pgb.DATABASES_FILE)
    assert "test = host=10.10.10.12 port=5432 dbname=test\n" in text
    assert "/var/run/postgresql" not in text
    assert pgb.console == ["RELOAD"]
    assert pgb.forwarding() == "10.10.10.12"
    # written as the dbsu, readable by it only (and its group)
    assert pgb.chowned == [("pigsty-forward.tmp", pgb.me.pw_uid, pgb.me.pw_gid),
                           ("database.txt.tmp", pgb.me.pw_uid, pgb.me.pw_gid)]
    assert stat.S_IMODE(os.stat(pgb.DATABASES_FILE).st_mode) == 0o640
    assert sorted(p.name for p in pgb.tmp.iterdir()) == ["database.txt", "pigsty-forward"]   # no .tmp left


def test_forward_again_changes_nothing_but_resumes(pgb):
    pgb.forward("10.10.10.12")
    before = (read(pgb.FORWARD_FILE), read(pgb.DATABASES_FILE), len(pgb.chowned))
    assert pgb.forward("10.10.10.12", resume=True) is False
    assert (read(pgb.FORWARD_FILE), read(pgb.DATABASES_FILE), len(pgb.chowned)) == before
    assert pgb.console == ["RELOAD", "RESUME"]
    assert pgb.forward("10.10.10.12") is False and pgb.console == ["RELOAD", "RESUME"]


def test_forward_with_resume_reloads_and_resumes_in_one_session(pgb):
    ready = ";; ready\nx = host=10.10.10.13 port=5432 dbname=x\n"
    assert pgb.forward("10.10.10.13", database_file=ready, resume=True) is True
    assert read(pgb.DATABASES_FILE) == ready                  # the caller's text, verbatim
    assert pgb.console == ["RELOAD; RESUME"]


def test_forward_none_routes_locally_again(pgb):
    pgb.forward("10.10.10.12")
    assert pgb.forward(None) is True
    assert not os.path.exists(pgb.FORWARD_FILE) and pgb.forwarding() is None
    text = read(pgb.DATABASES_FILE)
    assert "test = host=/var/run/postgresql port=5432 dbname=test\n" in text and "10.10.10.12" not in text
    assert pgb.console == ["RELOAD", "RELOAD"]
    # not forwarding: nothing to do
    assert pgb.forward(None) is False and pgb.console == ["RELOAD", "RELOAD"]


def test_forward_none_clears_a_garbled_marker(pgb):
    with open(pgb.FORWARD_FILE, "w") as fh:
        fh.write("garbage\n")
    assert pgb.forwarding() is None
    assert pgb.forward(None) is True
    assert not os.path.exists(pgb.FORWARD_FILE) and pgb.console == ["RELOAD"]


@pytest.mark.parametrize("host", ["not-an-ip", "10.10.10.300", "fe80::1", "10.10.10.12; RELOAD", ""])
def test_forward_refuses_a_bad_host_before_writing(pgb, host):
    with pytest.raises(salt.exceptions.SaltInvocationError) as err:
        pgb.forward(host)
    assert str(err.value).startswith("host:")
    assert list(pgb.tmp.iterdir()) == [] and pgb.console == [] and pgb.chowned == []


class HAProxyModel:
    """Just enough of HAProxy's server state to replay runtime commands: operational state
    (health) and admin state (drain) per backend and server, and whether checks run."""

    def __init__(self, backends, servers, primary):
        self.s = {be: {srv: {"up": srv == primary, "admin": "READY", "checks": True} for srv in servers}
                  for be in backends}

    def apply(self, cmd):
        words = cmd.split()
        if words[0] in ("enable", "disable"):
            be, srv = words[2].split("/")
            self.s[be][srv]["checks"] = words[0] == "enable"
            return
        be, srv = words[2].split("/")
        if words[3] == "health":
            self.s[be][srv]["up"] = words[4] == "up"
        else:
            self.s[be][srv]["admin"] = words[4].upper()

    def usable(self, be):
        return [srv for srv, st in self.s[be].items() if st["up"] and st["admin"] == "READY"]


def test_back_and_forth_switchovers_never_leave_the_write_service_without_a_server():
    """Issue 18: A -> B -> A, with the clients of each hand-off still connected (nothing
    released in between): after every single command, the write service has a server."""
    leader, pgb = hx.handoff_backends(*services_and_port())
    model = HAProxyModel(set(leader) | set(pgb), ["pg-test-1", "pg-test-2", "pg-test-3"], "pg-test-1")
    for old, new in (("pg-test-1", "pg-test-2"), ("pg-test-2", "pg-test-1"), ("pg-test-1", "pg-test-2")):
        for cmd in hx.handoff_hold(leader, old):
            model.apply(cmd)
            assert model.usable("pg-test-primary"), cmd
        # the switch: old's checks are held, so it stays up until the route
        for cmd in hx.handoff_route(leader, pgb, old, new):
            model.apply(cmd)
            assert model.usable("pg-test-primary"), "no server after %r (%s -> %s)" % (cmd, old, new)
        assert model.usable("pg-test-primary") == [new]
