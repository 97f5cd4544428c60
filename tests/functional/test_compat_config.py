"""The Pigsty parameters of issue 14, checked by the real programs on this host: HAProxy
accepts the server weights (pg_weight) with non-default ports, and pgbouncer 1.18 starts with
pgbouncer_poolmode, pgbouncer_max_db_conn and per-user pool options (its [users] section),
and refuses the same file with an option it does not know (so the check can fail)."""
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest

import pigsty_inventory
from pillar_fixture import default_pillar
from render import render_haproxy_cfg, render_state
from throwaway_ca import CA

import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
from test_compat_params import CUSTOM, template_salt   # noqa: E402  (the unit test's renderers)


def _pillar():
    pillar = default_pillar()
    cls = pillar["pigsty"]["clusters"]["pg-test"]
    cls["vars"].update(CUSTOM, pg_weight=80, pgbouncer_poolmode="session", pgbouncer_max_db_conn=50)
    cls["hosts"]["10.10.10.12"]["pg_weight"] = 0
    cls["vars"]["pg_users"].append({"name": "dbuser_pool", "password": "Pool.Secret", "pgbouncer": True,
                                    "pool_mode": "statement", "pool_connlimit": 10})
    assert pigsty_inventory.validate(pillar) == []
    return pillar


def test_haproxy_accepts_weights_and_the_custom_ports(tmp_path):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    # the checks verify Patroni's certificate with the CA; the admin page serves node.crt
    pki = CA(str(tmp_path / "ca")).node(str(tmp_path / "pki"), "node-1", ["node-1"], ["10.10.10.11"])
    cfg = render_haproxy_cfg(pigsty_inventory.instance_config(_pillar(), "node-1"), ca_file=pki["ca_crt"],
                             node_crt=pki["node_crt"])
    assert " weight 0" in cfg and " weight 80" in cfg and ":6440 " in cfg and ":5440 " in cfg
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg.replace("/var/lib/haproxy/server-state", str(tmp_path / "state")) + "\n")
    res = subprocess.run([haproxy, "-V", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    bad = tmp_path / "bad.cfg"
    bad.write_text(path.read_text().replace(" weight 80", " weight 999", 1))
    res = subprocess.run([haproxy, "-V", "-c", "-f", str(bad)], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_pgbouncer(tmp_path, ini):
    """Run pgbouncer (as nobody: it refuses root) on the file for 1 s: (running?, its log)."""
    pgbouncer = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    tmp_path.chmod(0o777)
    path = tmp_path / "pgbouncer.ini"
    path.write_text(ini)
    path.chmod(0o644)
    log = tmp_path / "pgbouncer.log"
    if log.exists():
        log.unlink()
    user = pwd.getpwnam("nobody")
    proc = subprocess.Popen([pgbouncer, str(path)], user=user.pw_uid, group=user.pw_gid,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc.wait(timeout=1.5)
        running = False
    except subprocess.TimeoutExpired:
        running = True
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
    return running, (log.read_text() if log.exists() else "") + (proc.stdout.read() or "")


@pytest.fixture
def nobody_dir():
    """A directory pgbouncer (run as nobody) can read and write (pytest's tmp_path is under a
    directory only root may enter)."""
    path = tempfile.mkdtemp(prefix="pigsty-pgb-")
    os.chmod(path, 0o777)
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_pgbouncer_starts_with_the_pool_settings(nobody_dir):
    tmp_path = nobody_dir
    if not (shutil.which("pgbouncer") or os.path.exists("/usr/sbin/pgbouncer")):
        pytest.fail("pgbouncer is not installed (tests/run.sh installs it)")
    salt = template_salt(_pillar())
    ini = render_state("pgsql/files/pgbouncer.ini.jinja", salt)
    assert "pool_mode = session" in ini and "max_db_connections = 50" in ini
    assert "dbuser_pool = pool_mode=statement max_user_connections=10" in ini
    (tmp_path / "database.txt").write_text(salt["pigsty.pgbouncer"]()["database_file"])
    (tmp_path / "pgb_hba.conf").write_text("local all all trust\n")
    (tmp_path / "userlist.txt").write_text('"dbsu" ""\n')
    # the node certificate of node.pki: a self-signed one here (pgbouncer loads it at start)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "node.key"), "-subj", "/CN=node-1", "-days", "1", "-out",
                    str(tmp_path / "node.crt")], check=True, capture_output=True, timeout=60)
    shutil.copy(tmp_path / "node.crt", tmp_path / "ca.crt")
    for name in ("database.txt", "pgb_hba.conf", "userlist.txt", "node.crt", "node.key", "ca.crt"):
        (tmp_path / name).chmod(0o644)
    # this host's paths and a free loopback port; the settings under test stay as rendered
    local = (ini.replace("/etc/pgbouncer/", str(tmp_path) + "/")
                .replace("/etc/pki/pigsty/", str(tmp_path) + "/")
                .replace("/var/log/postgresql/", str(tmp_path) + "/")
                .replace("/var/run/postgresql/pgbouncer.pid", str(tmp_path / "pgbouncer.pid"))
                .replace("unix_socket_dir = /var/run/postgresql", "unix_socket_dir =")
                .replace("listen_addr = *", "listen_addr = 127.0.0.1")
                .replace("listen_port = 6440", "listen_port = %d" % _free_port()))
    running, log = _start_pgbouncer(tmp_path, local)
    assert running and "process up" in log, log
    running, log = _start_pgbouncer(tmp_path, local.replace("max_user_connections=10",
                                                            "max_user_connections=10 pool_size_x=1"))
    assert not running and "pool_size_x" in log, log
