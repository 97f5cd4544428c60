"""Grafana's admin password from pillar (_states/pigsty_grafana.py). Debian 12 ships no
Grafana, so a small HTTP server stands for its /api/user (Basic authentication against the
current password) and a stand-in for grafana-cli sets that password from its stdin."""
import base64
import http.server
import threading

import pytest

from loader import load_module
from pillar_fixture import meta_pillar


class FakeGrafana:
    def __init__(self, password):
        self.password = password
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):           # noqa: N802
                want = "Basic " + base64.b64encode(("admin:%s" % owner.password).encode()).decode()
                ok = self.path == "/api/user" and self.headers.get("Authorization") == want
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_port

    def cli(self, cmd, stdin=None, **kwargs):
        assert cmd[-3:] == ["admin", "reset-admin-password", "--password-from-stdin"]
        assert kwargs["python_shell"] is False and kwargs["output_loglevel"] == "quiet"
        assert not any("Sandbox" in part for part in cmd)          # never on the command line
        self.password = stdin.rstrip("\n")
        return {"retcode": 0}


@pytest.fixture()
def grafana():
    g = FakeGrafana("admin")                   # Grafana's default
    yield g
    g.server.shutdown()


def state(grafana, pillar, test=False):
    return load_module("_states/pigsty_grafana.py", pillar=pillar, opts={"test": test},
                       salt={"cmd.run_all": grafana.cli})


def test_the_default_password_is_replaced_then_nothing_changes(grafana):
    pillar = meta_pillar()
    dry = state(grafana, pillar, test=True).admin_password(grafana.url)
    assert dry["result"] is None and dry["changes"] == {"password": "would change"}
    assert grafana.password == "admin"
    ret = state(grafana, pillar).admin_password(grafana.url)
    assert ret["result"] is True and ret["changes"] == {"password": "changed"}
    assert grafana.password == "Sandbox.Grafana"
    again = state(grafana, pillar).admin_password(grafana.url)
    assert again["result"] is True and again["changes"] == {}
    assert "Sandbox" not in repr([dry, ret, again])


def test_a_missing_password_is_refused_before_any_change(grafana):
    pillar = meta_pillar()
    pillar["pigsty"]["vars"]["grafana_package_url"] = "http://10.10.10.10/grafana.deb"
    del pillar["pigsty"]["infra"]["grafana_admin_password"]
    ret = state(grafana, pillar).admin_password(grafana.url)
    assert ret["result"] is False and "pigsty:infra:grafana_admin_password: missing password" in ret["comment"]
    assert grafana.password == "admin"
