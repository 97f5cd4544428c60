"""The exporters' TLS as rendered (issue 12): exporter-toolkit's web configuration for node_exporter
and the postgres exporter, the pgbouncer exporter's flags, and salt/pgsql/monitor.sls wiring
them with the node certificate. The real exporters run with them in
tests/functional/test_exporters_https.py."""
import os
import subprocess
import sys

import yaml

import pigsty_exporter_tls as etls
import pigsty_inventory as inv
import pigsty_pki
from loader import load_module
from pillar_fixture import REPO, default_pillar
from render import render_state, state_arg

PATHS = pigsty_pki.paths()
EXPORTER = os.path.join(REPO, "salt", "pgsql", "files", "pgbouncer_exporter.py")


def test_web_config_serves_the_node_certificate_and_requires_a_client_certificate_of_the_ca():
    assert etls.web_config(PATHS) == {"tls_server_config": {
        "cert_file": "/etc/pki/pigsty/node.crt", "key_file": "/etc/pki/pigsty/node.key",
        "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "/etc/pki/pigsty/ca.crt",
        "min_version": "TLS12"}}
    text = etls.web_config_text(PATHS)
    assert text.startswith("# Managed by Salt") and yaml.safe_load(text) == etls.web_config(PATHS)
    assert text == etls.web_config_text(PATHS)          # the same bytes every render
    # another PKI directory moves every path (the functional tests' scratch directories)
    other = etls.web_config(pigsty_pki.paths("/tmp/x"))["tls_server_config"]
    assert {other[k] for k in ("cert_file", "key_file", "client_ca_file")} == {
        "/tmp/x/node.crt", "/tmp/x/node.key", "/tmp/x/ca.crt"}


def test_pgbouncer_exporter_flags_name_the_same_files():
    assert etls.pgbouncer_exporter_flags(PATHS) == [
        "--cert", "/etc/pki/pigsty/node.crt", "--key", "/etc/pki/pigsty/node.key",
        "--client-ca", "/etc/pki/pigsty/ca.crt"]


def _monitor_sls(minion="node-2"):
    conf = inv.instance_config(default_pillar(), minion)
    module = load_module("_modules/pigsty_pki.py", salt={"config.get": lambda key, default=None: default})
    salt = {"pigsty.config": lambda: conf, "pigsty_pki.exporter_tls": module.exporter_tls,
            "pigsty_pki.request": lambda: {"paths": PATHS, "group": pigsty_pki.SSL_GROUP}}
    return conf, yaml.safe_load(render_state("pgsql/monitor.sls", salt))


def test_monitor_sls_gives_each_exporter_its_tls():
    conf, sls = _monitor_sls()
    assert "node.pki" in sls["include"]
    # the web configuration: paths only, readable by the exporters' user, after the certificate
    assert state_arg(sls, "exporter-web-config", "name") == etls.WEB_CONFIG
    assert state_arg(sls, "exporter-web-config", "contents") == etls.web_config_text(PATHS)
    assert (state_arg(sls, "exporter-web-config", "user"), state_arg(sls, "exporter-web-config", "group"),
            state_arg(sls, "exporter-web-config", "mode")) == ("root", "prometheus", "0640")
    assert {"x509": "pki-node-cert"} in state_arg(sls, "exporter-web-config", "require")
    node_args = state_arg(sls, "node-exporter-args", "contents")
    pg_env = state_arg(sls, "pg-exporter-env", "contents")
    flag = "--web.config.file=%s" % etls.WEB_CONFIG
    assert "--web.listen-address=10.10.10.12:9100 %s " % flag in node_args
    assert "--web.listen-address=10.10.10.12:9630 %s " % flag in pg_env
    unit = state_arg(sls, "pgbouncer-exporter-unit", "contents")
    assert ("--listen 10.10.10.12:9631 --port 6432 --user postgres --cert /etc/pki/pigsty/node.crt "
            "--key /etc/pki/pigsty/node.key --client-ca /etc/pki/pigsty/ca.crt\n") in unit
    # the exporters' users read the node key through its group, and restart to get it
    assert state_arg(sls, "exporters-read-node-key", "name") == "ssl-cert"
    assert state_arg(sls, "exporters-read-node-key", "addusers") == ["prometheus", conf["pg_dbsu"]]
    for sid in ("node-exporter-service", "pg-exporter-service", "pgbouncer-exporter-service"):
        assert {"group": "exporters-read-node-key"} in state_arg(sls, sid, "watch"), sid
    for sid in ("node-exporter-service", "pg-exporter-service"):
        assert {"file": "exporter-web-config"} in state_arg(sls, sid, "watch"), sid
    assert {"x509": "pki-node-cert"} in state_arg(sls, "pgbouncer-exporter-service", "require")


def test_monitor_sls_puts_no_password_in_the_web_config_or_on_a_command_line():
    conf, sls = _monitor_sls()
    password = conf["pg_monitor_password"]
    for sid in ("exporter-web-config", "node-exporter-args", "pg-exporter-env", "pgbouncer-exporter-unit"):
        assert password not in state_arg(sls, sid, "contents"), sid


def test_the_pgbouncer_exporter_wants_all_three_tls_flags_or_none():
    res = subprocess.run([sys.executable, EXPORTER, "--listen", "127.0.0.1:1", "--cert", "/nonexistent"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "--cert, --key and --client-ca go together" in res.stderr, res.stderr
    # a file it cannot load stops it at once, naming the problem (never a silent plain HTTP)
    res = subprocess.run([sys.executable, EXPORTER, "--listen", "127.0.0.1:1", "--cert", "/nonexistent",
                          "--key", "/nonexistent", "--client-ca", "/nonexistent"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "/nonexistent" in res.stderr, res.stderr
