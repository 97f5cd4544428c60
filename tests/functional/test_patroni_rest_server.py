"""Patroni's own REST server (Debian 12's Patroni 3.0.2, unpacked by
tests/support/fetch_exporters.sh, run in this process) with the configuration we generate:
Patroni's Config loads our config.yml (its validator included) and turns our
``restapi.authentication`` into its login, its server serves HTTPS with a certificate from
a CA made here with openssl, and
- our client (pigsty_patroni with pigsty_patroni_rest's Access) gets through with the login
  and is refused without it (401) or with another password;
- Patroni's own client (what members use between them and what patronictl uses), configured
  by our ``ctl`` and ``restapi`` sections, verifies the server and logs in;
- an address outside the allow-list is refused (403) even with the login;
- a client that trusts another CA does not talk to it at all.
The members, meta nodes and the DCS are not part of this: the sandbox test
tests/integration/test_security.py covers them."""
import os
import subprocess
import sys
import threading

import pytest
import yaml

import pigsty_inventory
import pigsty_patroni
import pigsty_patroni_rest
import pigsty_pgsql
from local_http import free_port
from pillar_fixture import default_pillar

ROOT = os.environ.get("PIGSTY_TEST_ROOT", "/var/cache/pigsty-test-root")
DIST = os.path.join(ROOT, "usr", "lib", "python3", "dist-packages")


@pytest.fixture(scope="module")
def patroni_pkg():
    if not os.path.isfile(os.path.join(DIST, "patroni", "api.py")):
        pytest.fail("Patroni is not unpacked under %s: run tests/support/fetch_exporters.sh "
                    "(tests/run.sh does)" % ROOT)
    sys.path.insert(0, DIST)
    try:
        import patroni.api  # noqa: F401
        import patroni.config  # noqa: F401
        import patroni.request  # noqa: F401
        yield sys.modules["patroni"]
    finally:
        sys.path.remove(DIST)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    for name in ("ca", "other"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-subj",
                "/CN=" + name, "-days", "2", "-out", name + ".crt", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-subj", "/CN=node-1",
            "-out", "node.csr", cwd=d)
    with open(os.path.join(d, "node.ext"), "w") as fh:
        fh.write("subjectAltName=DNS:node-1,IP:10.10.10.11,IP:127.0.0.1\n"
                 "extendedKeyUsage=serverAuth,clientAuth\n")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "node.ext", "-out", "node.crt", cwd=d)
    return {n: os.path.join(d, n) for n in ("ca.crt", "other.crt", "node.crt", "node.key")}


def our_config(pki, tmp_path, allowlist=None):
    """Our config.yml for node-1, its PKI paths pointed at the files made here and its
    REST API on a free loopback port; loaded by Patroni's own Config."""
    import patroni.config
    conf = pigsty_inventory.instance_config(default_pillar(), "node-1")
    cfg = pigsty_pgsql.patroni_config(conf, 4096)
    text = yaml.safe_dump(cfg)
    for name in ("ca.crt", "node.crt", "node.key"):
        text = text.replace("/etc/pki/pigsty/" + name, pki[name])
    cfg = yaml.safe_load(text)
    port = free_port()
    cfg["restapi"]["listen"] = "127.0.0.1:%d" % port
    cfg["restapi"]["connect_address"] = "127.0.0.1:%d" % port
    if allowlist is not None:
        cfg["restapi"]["allowlist"] = allowlist
    cfg["postgresql"]["data_dir"] = str(tmp_path / "data")
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(cfg))
    return patroni.config.Config(str(path)), port, conf


class FakeDcs:
    cluster = None          # no members from the DCS: the allow-list is what the config says


class FakePatroni:
    """What the REST server's unsafe /reload touches: Patroni's SIGHUP handler."""

    def __init__(self):
        self.dcs, self.reloads = FakeDcs(), 0

    def sighup_handler(self):
        self.reloads += 1


@pytest.fixture()
def serve(patroni_pkg, pki, tmp_path):
    servers = []

    def start(allowlist=None):
        import patroni.api
        config, port, conf = our_config(pki, tmp_path, allowlist)
        fake = FakePatroni()
        server = patroni.api.RestApiServer(fake, config["restapi"])
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        return server, fake, config, port, conf

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def ours(pki, conf, **over):
    """Our client's Access for the cluster, with the CA file made here."""
    access = pigsty_patroni_rest.access(conf)
    kw = {"ca_file": pki["ca.crt"], "username": access.username, "password": access._password}
    kw.update(over)
    return pigsty_patroni.Access(**kw)


def test_patroni_takes_our_login_and_serves_https(serve, pki):
    _server, fake, config, port, conf = serve()
    assert config["restapi"]["auth"] == "postgres:Sandbox.Patroni.test"    # Patroni's own form
    code, body = pigsty_patroni.request("127.0.0.1", port, "/reload", method="POST", timeout=5,
                                        access=ours(pki, conf))
    assert (code, fake.reloads) == (202, 1), body


def test_without_the_login_or_with_another_password_patroni_answers_401(serve, pki):
    _server, fake, _config, port, conf = serve()
    for access in (pigsty_patroni.Access(ca_file=pki["ca.crt"]), ours(pki, conf, password="Sandbox.Patroni.meta")):
        code, body = pigsty_patroni.request("127.0.0.1", port, "/reload", method="POST", timeout=5,
                                            access=access)
        assert code == 401 and "Sandbox.Patroni" not in str(body)
    assert fake.reloads == 0


def test_outside_the_allow_list_patroni_answers_403_even_with_the_login(serve, pki):
    _server, fake, _config, port, conf = serve(allowlist=["10.10.10.10", "10.10.10.11"])
    code, _body = pigsty_patroni.request("127.0.0.1", port, "/reload", method="POST", timeout=5,
                                         access=ours(pki, conf))
    assert code == 403 and fake.reloads == 0


def test_patronis_own_client_uses_our_ctl_and_restapi_sections(serve, pki):
    """Members call each other, and patronictl calls members, with patroni.request: it takes
    the CA from ``ctl.cacert``, the login from ``restapi.authentication`` and presents the
    node certificate (``restapi.certfile``) as its client certificate."""
    import patroni.request
    _server, fake, config, port, _conf = serve()
    ctl = patroni.request.PatroniRequest(config, False)          # patronictl: verifies the name
    resp = ctl.request("POST", "https://127.0.0.1:%d/reload" % port)
    assert resp.status == 202 and fake.reloads == 1
    member = patroni.request.PatroniRequest(config, True)        # member to member
    assert member.request("POST", "https://127.0.0.1:%d/reload" % port).status == 202


# Patroni's server thread reports the refused handshake (unknown CA) as an exception
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_client_that_trusts_another_ca_gets_nowhere(serve, pki):
    _server, fake, _config, port, conf = serve()
    with pytest.raises(pigsty_patroni.PatroniError) as err:
        pigsty_patroni.request("127.0.0.1", port, "/reload", method="POST", timeout=5,
                               access=ours(pki, conf, ca_file=pki["other.crt"]))
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) and "Sandbox.Patroni" not in str(err.value)
    assert fake.reloads == 0
