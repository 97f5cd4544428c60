"""The rendered haproxy.cfg is accepted by Debian's HAProxy (`haproxy -c`), for the default
inventory and for every timing plan: tracking servers, observe/on-error, redispatch, health
checks over HTTPS verified against a CA file (one made here with openssl: HAProxy loads it)."""
import shutil
import subprocess

import pytest

import pigsty_inventory
from pillar_fixture import default_pillar
from render import render_haproxy_cfg


@pytest.mark.parametrize("plan", ["fast", "norm", "safe"])
def test_haproxy_accepts_the_rendered_config(tmp_path, plan):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_rto_plan"] = plan
    ca = tmp_path / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "ca.key"), "-subj", "/CN=Test CA", "-days", "1", "-out", str(ca)],
                   check=True, capture_output=True, timeout=60)
    cfg = render_haproxy_cfg(pigsty_inventory.instance_config(pillar, "node-2"), ca_file=str(ca))
    assert "check port 8008 check-ssl verify required ca-file %s" % ca in cfg
    # paths of the node, not of this host: the check does not bind or read them
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg.replace("/var/lib/haproxy/server-state", str(tmp_path / "state")) + "\n")
    res = subprocess.run([haproxy, "-V", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    # the check can fail: the same config with a server line HAProxy cannot parse
    broken = tmp_path / "broken.cfg"
    broken.write_text(path.read_text().replace("check port 8008", "check port 8008 observe layer9", 1))
    bad = subprocess.run([haproxy, "-V", "-c", "-f", str(broken)], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "layer9" in bad.stdout + bad.stderr


def test_haproxy_refuses_a_missing_ca_file(tmp_path):
    """The check above can fail: HAProxy reads the CA file when it loads the configuration."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    cfg = render_haproxy_cfg(pigsty_inventory.instance_config(default_pillar(), "node-2"),
                             ca_file=str(tmp_path / "missing-ca.crt"))
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg.replace("/var/lib/haproxy/server-state", str(tmp_path / "state")) + "\n")
    res = subprocess.run([haproxy, "-V", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "missing-ca.crt" in res.stdout + res.stderr
