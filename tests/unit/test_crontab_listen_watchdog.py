"""Issue 14: node_crontab / node_crontab_overwrite, pg_listen and patroni_watchdog_mode are
real: validation (good and hostile values, the field named), what is rendered (Patroni's
config, the crontab block and file, the states), and the watchdog state's decisions."""
import os

import pytest
import yaml

import pigsty_crontab
import pigsty_infra
import pigsty_inventory as inv
import pigsty_listen
from loader import load_module
from pillar_fixture import REPO, default_pillar
from render import render_state
from test_compat_params import _patroni, conf_of, pillar_with, template_salt

LINE = "*/5 * * * * root /usr/local/bin/check-disk >/dev/null 2>&1"


# ------------------------------------------------------------------ node_crontab: validation
@pytest.mark.parametrize("line", [
    LINE, "0 1 * * 0 postgres /usr/bin/vacuumdb --all", "15 3 1-15/2 jan-mar mon-fri root x",
    "0,30 8-18 * * 7 www-data /bin/true", "@reboot root /bin/echo up", "@daily nobody /bin/true",
    "00 01 * * *\troot\t/bin/true",
])
def test_good_crontab_lines_are_accepted(line):
    assert inv.validate(pillar_with(node_crontab=[line])) == []


@pytest.mark.parametrize("line,fragment", [
    ("0 24 * * * root x", "node_crontab[0]: hour field '24'"),
    ("60 * * * * root x", "node_crontab[0]: minute field '60'"),
    ("0 0 0 * * root x", "day of month field '0'"),
    ("0 0 * 13 * root x", "month field '13'"),
    ("0 0 * * 8 root x", "day of week field '8'"),
    ("0 0 * * funday root x", "day of week field 'funday'"),
    ("*/0 * * * * root x", "minute field '*/0'"),
    ("5-1 * * * * root x", "minute field '5-1'"),
    ("5/2 * * * * root x", "minute field '5/2'"),
    ("0 0 * * * root", "7 fields or more"),
    ("@sometimes root x", "special times"),
    ("@daily root", "a user and a command"),
    ("0 0 * * * r;oot x", "user field 'r;oot'"),
    ("0 0 * * * root x\n* * * * * root rm -rf /", "line break"),
    ("0 0 * * * root x\x00y", "control character"),
    (["0 0 * * * root x"], "expected a crontab line"),
    (5, "expected a crontab line"),
])
def test_hostile_or_broken_lines_are_refused_naming_field_and_index(line, fragment):
    problems = inv.validate(pillar_with(node_crontab=["@hourly root /bin/true", line]))
    hits = [p for p in problems if p.startswith("pigsty:clusters:pg-test:vars:node_crontab[1]")]
    assert hits and fragment.replace("[0]", "[1]") in hits[0], problems


def test_crontab_shape_and_overwrite_flag_are_checked_globally_too():
    pillar = default_pillar()
    pillar["pigsty"]["vars"].update(node_crontab="0 0 * * * root x", node_crontab_overwrite="yes")
    problems = inv.validate(pillar)
    assert any(p.startswith("pigsty:vars:node_crontab: expected a list") for p in problems), problems
    assert any(p.startswith("pigsty:vars:node_crontab_overwrite: expected true") for p in problems)


# ------------------------------------------------------------------ node_crontab: rendering
def _node(pillar, minion="node-1"):
    return pigsty_infra.node(pillar["pigsty"], minion)


def _crontab_sls(pillar, minion="node-1"):
    salt = template_salt(pillar, minion)
    return yaml.safe_load(render_state("node/crontab.sls", salt))


def test_append_mode_manages_a_marked_block_only():
    pillar = pillar_with(node_crontab=[LINE], node_crontab_overwrite=False)
    states = _crontab_sls(pillar)
    block = {k: v for a in states["node-crontab"]["file.blockreplace"] for k, v in a.items()}
    assert block["name"] == "/etc/crontab" and block["content"] == LINE
    assert block["marker_start"] == pigsty_crontab.MARKER_START and block["append_if_not_found"]
    assert "pkg.installed" in states["node-cron-package"]
    # a node outside the cluster (meta) gets the global value: none here, its block removed
    meta = _crontab_sls(pillar, "meta")
    assert list(meta["node-crontab"]) == ["file.replace"]


def test_overwrite_mode_writes_debians_lines_then_the_block():
    pillar = pillar_with(node_crontab=[LINE, "@reboot root /bin/true"])
    plan = _node(pillar)["crontab"]
    assert plan["overwrite"] is True          # Pigsty's default
    text = plan["file"]
    assert text.startswith("# /etc/crontab: system-wide crontab")
    assert "run-parts --report /etc/cron.daily" in text and "SHELL=/bin/sh" in text
    assert text.endswith("%s\n%s\n@reboot root /bin/true\n%s\n" % (
        pigsty_crontab.MARKER_START, LINE, pigsty_crontab.MARKER_END))
    states = _crontab_sls(pillar)
    managed = {k: v for a in states["node-crontab"]["file.managed"] for k, v in a.items()}
    assert managed["contents"] == text and managed["backup"] == "minion" and managed["mode"] == "0644"


def test_no_lines_remove_the_block_and_nothing_else():
    import re
    plan = _node(default_pillar())["crontab"]
    assert plan["lines"] == []
    pattern = re.compile(plan["absent_pattern"], re.M)
    text = "SHELL=/bin/sh\n" + pigsty_crontab.block([LINE]) + "17 * * * * root x\n"
    assert pattern.sub("", text) == "SHELL=/bin/sh\n17 * * * * root x\n"
    assert pattern.sub("", "SHELL=/bin/sh\n") == "SHELL=/bin/sh\n"


def test_the_repository_carries_cron_only_when_a_node_needs_it():
    assert "cron" not in pigsty_infra.repo_packages(default_pillar()["pigsty"])
    assert "cron" in pigsty_infra.repo_packages(pillar_with(node_crontab=[LINE])["pigsty"])


# ------------------------------------------------------------------ pg_listen
@pytest.mark.parametrize("value,node1,node2", [
    ("*", "*", "*"),
    ("0.0.0.0", "0.0.0.0", "0.0.0.0"),
    ("0.0.0.0,::", "0.0.0.0,::", "0.0.0.0,::"),
    ("${ip}", "10.10.10.11", "10.10.10.12"),
    ("${ip},${lo}", "10.10.10.11,127.0.0.1", "10.10.10.12,127.0.0.1"),
    (" ${ip} , ${vip} , ${lo} ", "10.10.10.11,10.10.10.3,127.0.0.1", "10.10.10.12,10.10.10.3,127.0.0.1"),
    ("${ip},127.0.0.1,${lo}", "10.10.10.11,127.0.0.1", "10.10.10.12,127.0.0.1"),
])
def test_pg_listen_renders_into_patronis_listen_and_listen_addresses(value, node1, node2):
    pillar = pillar_with(pg_listen=value)
    assert inv.validate(pillar) == []
    for minion, want in (("node-1", node1), ("node-2", node2)):
        conf = conf_of(minion, pillar=pillar)
        patroni = _patroni(conf)
        assert patroni["postgresql"]["listen"] == "%s:5432" % want
        assert patroni["postgresql"]["parameters"]["listen_addresses"] == want
        assert patroni["postgresql"]["connect_address"] == "%s:5432" % conf["node_ip"]
        assert patroni["postgresql"]["use_unix_socket"] is True


def test_the_default_listens_on_every_address_as_before():
    patroni = _patroni(conf_of(pillar=default_pillar()))
    assert patroni["postgresql"]["listen"] == "*:5432"
    assert patroni["postgresql"]["parameters"]["listen_addresses"] == "*"


def test_a_member_may_name_its_own_address():
    pillar = pillar_with(pg_listen="${ip},${lo}")
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.12"]["pg_listen"] = "10.10.10.12"
    assert inv.validate(pillar) == []
    assert _patroni(conf_of("node-2", pillar=pillar))["postgresql"]["listen"] == "10.10.10.12:5432"
    assert _patroni(conf_of("node-1", pillar=pillar))["postgresql"]["listen"] == "10.10.10.11,127.0.0.1:5432"


@pytest.mark.parametrize("value,fragment", [
    ("10.10.10.99", "10.10.10.99 is not this member's address (10.10.10.11)"),
    ("${ip},10.10.10.12", "10.10.10.12 is not this member's address (10.10.10.11)"),   # another member's
    ("${ip},8.8.8.8", "8.8.8.8 is not this member's address"),
    ("${lo}", "the member's own address is missing (add ${ip})"),
    ("${vip}", "own address is missing"),
    ("*,${lo}", "give it alone"),
    ("0.0.0.0,${ip}", "give it alone"),
    ("${ip},${host}", "'${host}' is not an address"),
    ("${ip}; rm -rf /", "is not an address"),
    ("${ip}\nssl = off", "is not an address"),
    ("", "expected a comma-separated list"),
    (["${ip}"], "expected a comma-separated list"),
])
def test_pg_listen_refuses_addresses_that_cannot_work(value, fragment):
    problems = inv.validate(pillar_with(pg_listen=value))
    hits = [p for p in problems if p.startswith("pigsty:clusters:pg-test:vars:pg_listen: ")]
    assert hits and any(fragment in h for h in hits), problems


def test_vip_placeholder_needs_a_vip_and_then_a_nonlocal_bind():
    problems = inv.validate(pillar_with(pg_listen="${ip},${vip}", pg_vip_enabled=False))
    assert any("${vip}: the cluster has no VIP" in p for p in problems), problems
    pillar = pillar_with(pg_listen="${ip},${vip},${lo}")
    conf = conf_of("node-2", pillar=pillar)
    assert pigsty_listen.needs_nonlocal_bind(conf)
    salt = template_salt(pillar, "node-2", role="replica")
    salt["pigsty.dcs_config"] = lambda: {}
    states = yaml.safe_load(render_state("pgsql/patroni.sls", salt))
    sysctl = {k: v for a in states["pgsql-listen-nonlocal-bind"]["sysctl.present"] for k, v in a.items()}
    assert sysctl["name"] == "net.ipv4.ip_nonlocal_bind" and sysctl["value"] == 1
    salt = template_salt(pillar_with(pg_listen="${ip},${lo}"), "node-2", role="replica")
    salt["pigsty.dcs_config"] = lambda: {}
    assert "pgsql-listen-nonlocal-bind" not in yaml.safe_load(render_state("pgsql/patroni.sls", salt))


def test_a_member_entry_with_a_bad_address_is_named_by_its_host_path():
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["hosts"]["10.10.10.13"]["pg_listen"] = "10.10.10.11"
    problems = inv.validate(pillar)
    assert any(p.startswith("pigsty:clusters:pg-test:hosts:10.10.10.13:pg_listen: 10.10.10.11 is "
                            "not this member's address (10.10.10.13)") for p in problems), problems


# ------------------------------------------------------------------ patroni_watchdog_mode
@pytest.mark.parametrize("mode,want", [
    ("off", {"mode": "off"}), (False, {"mode": "off"}),
    ("automatic", {"mode": "automatic", "device": "/dev/watchdog"}),
    ("required", {"mode": "required", "device": "/dev/watchdog"}),
])
def test_watchdog_mode_renders_into_patroni(mode, want):
    pillar = pillar_with(patroni_watchdog_mode=mode)
    assert inv.validate(pillar) == []
    assert _patroni(conf_of(pillar=pillar))["watchdog"] == want


@pytest.mark.parametrize("mode", ["on", "require", True, 1, "automatic\n"])
def test_unknown_watchdog_modes_are_refused(mode):
    problems = inv.validate(pillar_with(patroni_watchdog_mode=mode))
    assert any(p.startswith("pigsty:clusters:pg-test:vars:patroni_watchdog_mode: expected one "
                            "of off, automatic, required") for p in problems), problems


def _patroni_states(mode):
    pillar = pillar_with(patroni_watchdog_mode=mode)
    salt = template_salt(pillar)
    salt["pigsty.dcs_config"] = lambda: {}
    return (yaml.safe_load(render_state("pgsql/watchdog.sls", salt)),
            yaml.safe_load(render_state("pgsql/patroni.sls", salt)))


def test_the_watchdog_is_checked_first_and_patronis_config_waits_for_it():
    check, patroni = _patroni_states("required")
    args = {k: v for a in check["pgsql-watchdog-check"]["pigsty_watchdog.ready"] for k, v in a.items()}
    assert args == {"name": "/dev/watchdog", "mode": "required", "user": None, "failhard": True}
    assert patroni["include"][0] == "pgsql.watchdog"
    with open(os.path.join(REPO, "salt", "pgsql", "init.sls")) as fh:
        assert yaml.safe_load(fh.read())["include"][0] == "pgsql.watchdog"
    config = {k: v for a in patroni["patroni-config"]["file.managed"] for k, v in a.items()}
    assert {"pigsty_watchdog": "pgsql-watchdog"} in config["require"]
    unit = {k: v for a in patroni["pgsql-watchdog-unit"]["file.managed"] for k, v in a.items()}
    assert "ExecStartPre=-+/bin/chown postgres /dev/watchdog" in unit["contents"]
    assert "modprobe softdog" in unit["contents"]
    check, patroni = _patroni_states("automatic")
    args = {k: v for a in check["pgsql-watchdog-check"]["pigsty_watchdog.ready"] for k, v in a.items()}
    assert args["failhard"] is False
    check, patroni = _patroni_states("off")
    assert "file.absent" in patroni["pgsql-watchdog-unit"]


# ------------------------------------------------------------------ the watchdog state
class _Cmd:
    def __init__(self, creates=None, ok=True):
        self.calls, self.creates, self.ok = [], creates, ok

    def __call__(self, argv, **_kw):
        self.calls.append(argv)
        if self.ok and self.creates and "-n" not in argv:
            open(self.creates, "w").close()
        return {"retcode": 0 if self.ok else 1, "stdout": "",
                "stderr": "" if self.ok else "modprobe: FATAL: Module softdog not found"}


def _state(cmd, test=False):
    return load_module("_states/pigsty_watchdog.py", salt={"cmd.run_all": cmd},
                       opts={"test": test})


def test_required_without_a_device_fails_with_the_reason(tmp_path):
    cmd = _Cmd(ok=False)
    ret = _state(cmd).ready(str(tmp_path / "watchdog"), mode="required", user=None)
    assert ret["result"] is False and ret["changes"] == {}
    assert "no watchdog device" in ret["comment"] and "Module softdog not found" in ret["comment"]
    assert "automatic or off" in ret["comment"] and cmd.calls == [["modprobe", "softdog"]]


def test_required_in_test_mode_asks_modprobe_dry_run_only(tmp_path):
    cmd = _Cmd(ok=False)
    ret = _state(cmd, test=True).ready(str(tmp_path / "watchdog"), mode="required", user="root")
    assert ret["result"] is False and cmd.calls == [["modprobe", "-n", "softdog"]]
    cmd = _Cmd(ok=True)
    ret = _state(cmd, test=True).ready(str(tmp_path / "watchdog"), mode="required", user="root")
    assert ret["result"] is None and ret["changes"]["module"] == "softdog would be loaded"
    assert not (tmp_path / "watchdog").exists()


def test_automatic_without_a_device_carries_on(tmp_path):
    ret = _state(_Cmd(ok=False)).ready(str(tmp_path / "watchdog"), mode="automatic", user="root")
    assert ret["result"] is True and ret["changes"] == {}
    assert "Patroni runs without one" in ret["comment"]


def test_a_loaded_module_makes_the_device_and_it_is_handed_over(tmp_path):
    dev = str(tmp_path / "watchdog")
    cmd = _Cmd(creates=dev)
    nobody = __import__("pwd").getpwnam("nobody")
    ret = _state(cmd).ready(dev, mode="required", user="nobody")
    assert ret["result"] is True and ret["changes"] == {"module": "softdog loaded", "owner": "nobody"}
    assert os.stat(dev).st_uid == nobody.pw_uid
    again = _state(cmd).ready(dev, mode="required", user="nobody")
    assert again["result"] is True and again["changes"] == {} and "already ready" in again["comment"]
    assert len(cmd.calls) == 1                       # the device is there: no second modprobe


def test_off_needs_nothing_and_unknown_modes_fail():
    cmd = _Cmd()
    assert _state(cmd).ready("/nonexistent/watchdog", mode=False)["result"] is True
    assert _state(cmd).ready("/nonexistent/watchdog", mode="sometimes")["result"] is False
    assert cmd.calls == []


def test_a_machine_without_modprobe_gets_the_reason_not_an_error(tmp_path):
    # systemd-nspawn machines have no kmod: Salt's cmd raises when the program is missing
    def missing(argv, **_kwargs):
        raise Exception("Unable to run command %r: [Errno 2] No such file or directory: 'modprobe'" % argv)
    ret = _state(missing).ready(str(tmp_path / "watchdog"), mode="required", user=None)
    assert ret["result"] is False and "no watchdog device" in ret["comment"]
    assert "modprobe cannot run here" in ret["comment"]
    ret = _state(missing).ready(str(tmp_path / "watchdog"), mode="automatic", user="root")
    assert ret["result"] is True and "Patroni runs without one" in ret["comment"]
