"""Render checks of the infra role: the meta node's Prometheus config, rules and targets,
Alertmanager config and Nginx config, rendered from the repository's default pillar exactly
as Salt renders them (the execution module's functions and the Jinja templates), then checked
by the real tools: promtool check config / check rules / test rules, amtool check-config,
nginx -t. tests/run.sh installs them (Debian's prometheus, prometheus-alertmanager, nginx)."""
import glob
import os
import re
import shutil
import subprocess

import jinja2
import pytest


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from loader import load_module
from pillar_fixture import default_pillar
from throwaway_ca import CA
TOOLS = {"promtool": "prometheus", "amtool": "prometheus-alertmanager", "nginx": "nginx"}


def tool(name):
    path = shutil.which(name) or (os.path.join("/usr/sbin", name) if os.access(
        os.path.join("/usr/sbin", name), os.X_OK) else None)
    if not path:
        pytest.fail("%s is not installed (Debian package %s; tests/run.sh installs it)" % (
            name, TOOLS[name]))
    return path


def run(cmd, cwd=None):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert res.returncode == 0, "%s -> %d\n%s\n%s" % (" ".join(cmd), res.returncode,
                                                      res.stdout[-4000:], res.stderr[-4000:])
    return res


@pytest.fixture(scope="module")
def mod():
    """_modules/pigsty.py with the dunders Salt gives it on the meta node (its pillar: the
    public inventory and pg-meta's private file, as pillar/top.sls targets them)."""
    return load_module("_modules/pigsty.py", "pigsty_module_meta", pillar=default_pillar(clusters=["pg-meta"]),
                       opts={"id": "meta"}, grains={"mem_total": 4096},
                       salt={})          # no failover has recorded live roles: pillar's roles


def render_template(mod, relpath):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(REPO, "salt")),
                             undefined=jinja2.StrictUndefined)
    salt = {"pigsty.%s" % name: getattr(mod, name)
            for name in ("nginx", "infra", "repo", "grafana", "dns_records")}
    return env.get_template(relpath).render(salt=salt)


@pytest.fixture()
def rendered(mod, tmp_path):
    """Prometheus' files under tmp_path (its /etc/prometheus paths rewritten there)."""
    root = str(tmp_path) + "/"
    for path, text in mod.prometheus_targets().items():
        dest = path.replace("/etc/prometheus/", root)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as fh:
            fh.write(text)
    os.makedirs(os.path.join(root, "rules"), exist_ok=True)
    with open(os.path.join(root, "rules", "pigsty.yml"), "w") as fh:
        fh.write(mod.prometheus_rules())
    # the node certificate's files (promtool checks that a client certificate exists)
    os.makedirs(os.path.join(root, "pki"), exist_ok=True)
    for name in ("ca.crt", "node.crt", "node.key"):
        open(os.path.join(root, "pki", name), "w").close()
    with open(os.path.join(root, "prometheus.yml"), "w") as fh:
        fh.write(mod.prometheus_config().replace("/etc/prometheus/", root)
                 .replace("/etc/pki/pigsty/", root + "pki/"))
    with open(os.path.join(root, "alertmanager.yml"), "w") as fh:
        fh.write(mod.alertmanager_config())
    return root


def test_promtool_accepts_the_config_with_its_rules_and_targets(rendered):
    res = run([tool("promtool"), "check", "config", rendered + "prometheus.yml"])
    out = res.stdout + res.stderr
    assert "SUCCESS" in out and "rules" in out
    assert "WARNING" not in out        # every file_sd file it names exists and parses


def test_promtool_accepts_the_rules(rendered):
    res = run([tool("promtool"), "check", "rules", rendered + "rules/pigsty.yml"])
    assert "SUCCESS" in res.stdout


def test_every_alert_passes_its_promtool_unit_test(mod, tmp_path):
    # the unit tests expect each alert's own `for` (the sandbox pillar shortens them)
    pillar = default_pillar(clusters=["pg-meta"])
    pillar["pigsty"]["vars"].pop("prometheus_alert_for", None)
    mod.__pillar__, saved = pillar, mod.__pillar__
    try:
        rules = mod.prometheus_rules()
    finally:
        mod.__pillar__ = saved
    (tmp_path / "pigsty.yml").write_text(rules)
    tests = sorted(glob.glob(os.path.join(REPO, "tests", "promtool", "*_test.yml")))
    assert len(tests) >= 2
    for path in tests:
        shutil.copy(path, tmp_path)
    res = run([tool("promtool"), "test", "rules"] + [os.path.basename(p) for p in tests],
              cwd=str(tmp_path))
    assert res.stdout.count("SUCCESS") == len(tests)


def test_amtool_accepts_the_alertmanager_config(rendered):
    res = run([tool("amtool"), "check-config", rendered + "alertmanager.yml"])
    assert "SUCCESS" in res.stdout and "receivers" in res.stdout


def test_nginx_accepts_its_config(mod, tmp_path):
    text = render_template(mod, "infra/files/nginx.conf.jinja")
    assert "server_name p.pigsty;" in text and "proxy_pass http://127.0.0.1:9090;" in text
    assert "location /pg-test-2/ {" in text and "proxy_pass https://10.10.10.12:9101/;" in text
    assert "proxy_ssl_name node-2;" in text and "proxy_ssl_verify on;" in text
    assert "location /pigsty/ {" in text
    assert 'return 503 "Grafana skipped' in text
    assert "listen 80 default_server;" in text and "listen 443 ssl default_server;" in text
    assert text.count("listen 443 ssl;") == 4                  # p. a. g. h.
    assert "return 301 https://$host$request_uri;" in text
    # nginx -t loads the certificate and key: a throwaway CA's, at the paths of the render
    pki = CA(str(tmp_path / "ca")).node(str(tmp_path / "pki"), "meta", ["meta", "pigsty"], ["10.10.10.10"])
    for path in ("/etc/pki/pigsty/node.crt", "/etc/pki/pigsty/node.key", "/etc/pki/pigsty/ca.crt"):
        assert path in text, path
    text = text.replace("/etc/pki/pigsty/", str(tmp_path / "pki") + "/")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    res = run([tool("nginx"), "-t", "-c", str(conf)])
    assert "syntax is ok" in res.stderr
    # the check can fail: without the key nginx refuses the config
    os.rename(pki["node_key"], pki["node_key"] + ".moved")
    bad = subprocess.run([tool("nginx"), "-t", "-c", str(conf)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "node.key" in bad.stderr, bad.stderr


def test_nginx_links_and_redirects_carry_a_non_default_https_port(mod):
    pillar = default_pillar(clusters=["pg-meta"])
    pillar["pigsty"]["vars"]["nginx_ssl_port"] = 8443
    mod.__pillar__, saved = pillar, mod.__pillar__
    try:
        text = render_template(mod, "infra/files/nginx.conf.jinja")
        home = render_template(mod, "infra/files/portal.html.jinja")
    finally:
        mod.__pillar__ = saved
    assert "listen 8443 ssl default_server;" in text and "return 301 https://$host:8443$request_uri;" in text
    assert '<a href="https://p.pigsty:8443/">' in home


def test_portal_pages_list_services_and_clusters(mod):
    home = render_template(mod, "infra/files/portal.html.jinja")
    for text in ("https://p.pigsty/", "https://a.pigsty/", "pg-test-3", "VIP 10.10.10.3",
                 "https://10.10.10.10/pigsty/", "https://h.pigsty/pg-test-1/",
                 '<a href="https://p.pigsty/consoles/pigsty-overview.html">',
                 '<a href="https://p.pigsty/consoles/pigsty-cluster.html?cls=pg-test">console</a>',
                 '<a href="https://p.pigsty/consoles/pigsty-instance.html?ins=pg-test-2">pg-test-2</a>'):
        assert text in home, text
    # no plain http:// anywhere, the package repository included (apt reads it over HTTPS)
    assert re.findall(r'http://', home) == []
    ha = render_template(mod, "infra/files/haproxy-index.html.jinja")
    assert '<a href="/pg-meta-1/">pg-meta-1</a>' in ha and "10.10.10.13:9101" in ha


def test_no_password_in_any_rendered_file(mod, rendered):
    texts = [open(os.path.join(dirpath, f)).read()
             for dirpath, _dirs, files in os.walk(rendered) for f in files]
    texts.append(render_template(mod, "infra/files/nginx.conf.jinja"))
    texts.append(render_template(mod, "infra/files/portal.html.jinja"))
    for text in texts:
        assert "Sandbox." not in text
