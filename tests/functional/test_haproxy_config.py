"""The rendered haproxy.cfg is accepted by Debian's HAProxy (`haproxy -c`), for the default
inventory and for every timing plan: tracking servers, observe/on-error, redispatch, health
checks over HTTPS verified against a CA file, the admin page over HTTPS with the node
certificate (made here with a throwaway CA: HAProxy loads them)."""
import shutil
import subprocess

import pytest

import pigsty_inventory
from pillar_fixture import default_pillar
from render import render_haproxy_cfg
from throwaway_ca import CA


@pytest.mark.parametrize("plan", ["fast", "norm", "safe"])
def test_haproxy_accepts_the_rendered_config(tmp_path, plan):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    pillar = default_pillar()
    pillar["pigsty"]["clusters"]["pg-test"]["vars"]["pg_rto_plan"] = plan
    pki = CA(str(tmp_path / "ca")).node(str(tmp_path / "pki"), "node-2", ["node-2"], ["10.10.10.12"])
    ca = pki["ca_crt"]
    cfg = render_haproxy_cfg(pigsty_inventory.instance_config(pillar, "node-2"), ca_file=ca,
                             node_crt=pki["node_crt"])
    assert "check port 8008 check-ssl verify required ca-file %s" % ca in cfg
    assert "bind 127.0.0.1:9101 ssl crt %s\n" % pki["node_crt"] in cfg     # the admin page: HTTPS
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
    pki = CA(str(tmp_path / "ca")).node(str(tmp_path / "pki"), "node-2", ["node-2"], ["10.10.10.12"])
    cfg = render_haproxy_cfg(pigsty_inventory.instance_config(default_pillar(), "node-2"),
                             ca_file=str(tmp_path / "missing-ca.crt"), node_crt=pki["node_crt"])
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg.replace("/var/lib/haproxy/server-state", str(tmp_path / "state")) + "\n")
    res = subprocess.run([haproxy, "-V", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "missing-ca.crt" in res.stdout + res.stderr


def test_haproxy_finds_the_node_key_beside_the_certificate(tmp_path):
    """`crt node.crt` with ssl-load-extra-del-ext loads node.key (HAProxy 2.6 has no `key`
    keyword): with node.key moved away, the check fails naming node.key."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    pki = CA(str(tmp_path / "ca")).node(str(tmp_path / "pki"), "node-2", ["node-2"], ["10.10.10.12"])
    cfg = render_haproxy_cfg(pigsty_inventory.instance_config(default_pillar(), "node-2"),
                             ca_file=pki["ca_crt"], node_crt=pki["node_crt"])
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg.replace("/var/lib/haproxy/server-state", str(tmp_path / "state")) + "\n")
    ok = subprocess.run([haproxy, "-V", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    shutil.move(pki["node_key"], pki["node_key"] + ".moved")
    res = subprocess.run([haproxy, "-V", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "No Private Key found in '%s'" % pki["node_key"] in out, out
