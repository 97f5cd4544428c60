"""The Patroni REST client over HTTPS with basic authentication, against a throwaway local
TLS server: its certificate is verified against the CA file (and must name 127.0.0.1), the
Authorization header carries the login, a wrong CA or name is refused, and no password ever
appears in an exception, an Access's repr or a runner-facing message. The CA and the
certificates are made here with openssl."""
import base64
import http.server
import json
import os
import ssl
import subprocess
import threading

import pytest

import pigsty_patroni as p

PASSWORD = "S3cret pass: 'quoted' %s \"x\""


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-subj",
            "/CN=" + name, "-days", "2", "-out", name + ".crt", cwd=d)
    return os.path.join(d, name + ".crt")


def make_server_cert(d, ca, name, san):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-subj", "/CN=" + name,
            "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as fh:
        fh.write("subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n" % san)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".crt", cwd=d)
    return os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_ca(d, "ca")
    other_ca = make_ca(d, "other")
    good = make_server_cert(d, "ca", "node", "DNS:node-1,IP:127.0.0.1")
    wrong_name = make_server_cert(d, "ca", "elsewhere", "DNS:node-9,IP:10.9.9.9")
    return {"ca": ca, "other_ca": other_ca, "good": good, "wrong_name": wrong_name}


class Handler(http.server.BaseHTTPRequestHandler):
    """Patroni's rules in small: GET open; POST/PATCH need the login (401 otherwise)."""

    def log_message(self, *args):
        pass

    def _answer(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.seen.append(("GET", self.path, self.headers.get("Authorization")))
        self._answer(200, {"state": "running", "role": "replica"})

    def do_POST(self):
        auth = self.headers.get("Authorization")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(("POST", self.path, auth))
        if auth != self.server.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="Patroni"')
            self.send_header("Content-Length", "17")
            self.end_headers()
            self.wfile.write(b"not authenticated")
            return
        self._answer(200, {"switched": json.loads(body or b"null")})


@pytest.fixture()
def server(pki, request):
    cert, key = pki[getattr(request, "param", "good")]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.seen = []
    srv.expected = "Basic " + base64.b64encode(("patroni:" + PASSWORD).encode()).decode()
    srv.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_https_with_the_login_is_verified_and_authenticated(server, pki):
    access = p.Access(ca_file=pki["ca"], username="patroni", password=PASSWORD)
    code, body = p.request("127.0.0.1", server.port, "/switchover", method="POST",
                           body={"leader": "pg-test-1"}, timeout=5, access=access)
    assert (code, body) == (200, {"switched": {"leader": "pg-test-1"}})
    method, path, auth = server.seen[-1]
    assert (method, path) == ("POST", "/switchover")
    assert base64.b64decode(auth.split(" ", 1)[1]).decode() == "patroni:" + PASSWORD
    # GET through the same Access (one SSL context for both)
    assert p.get_json("127.0.0.1", server.port, "/patroni", timeout=5, access=access)["role"] == "replica"
    assert p.find_leader(["127.0.0.1"], server.port, 5, access=access)[0] is None   # no /cluster members


def test_a_get_without_a_login_goes_through(server, pki):
    doc = p.get_json("127.0.0.1", server.port, "/patroni", timeout=5, access=p.Access(ca_file=pki["ca"]))
    assert doc["state"] == "running" and server.seen[-1][2] is None      # no Authorization header


def test_a_wrong_password_gets_401_and_the_answer_names_no_password(server, pki):
    access = p.Access(ca_file=pki["ca"], username="patroni", password="wrong-" + PASSWORD)
    code, body = p.request("127.0.0.1", server.port, "/restart", method="POST", body={}, timeout=5,
                           access=access)
    assert code == 401 and PASSWORD not in str(body)


def test_a_server_certificate_from_another_ca_is_refused(server, pki):
    access = p.Access(ca_file=pki["other_ca"], username="patroni", password=PASSWORD)
    with pytest.raises(p.PatroniError) as err:
        p.request("127.0.0.1", server.port, "/switchover", method="POST", body={}, timeout=5, access=access)
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) and "https://127.0.0.1" in str(err.value)
    assert PASSWORD not in str(err.value) and PASSWORD not in repr(err.value)
    assert not any(method == "POST" for method, _path, _auth in server.seen)   # nothing was sent


@pytest.mark.parametrize("server", ["wrong_name"], indirect=True)
def test_a_certificate_for_another_address_is_refused(server, pki):
    access = p.Access(ca_file=pki["ca"], username="patroni", password=PASSWORD)
    with pytest.raises(p.PatroniError) as err:
        p.get_json("127.0.0.1", server.port, "/patroni", timeout=5, access=access)
    assert "IP address mismatch" in str(err.value) and PASSWORD not in str(err.value)
    assert server.seen == []


def test_plain_http_to_an_https_server_fails_clearly(server):
    with pytest.raises(p.PatroniError) as err:
        p.get_json("127.0.0.1", server.port, "/patroni", timeout=2)
    assert "http://127.0.0.1" in str(err.value)


def test_a_missing_ca_file_is_a_clear_error_without_the_password(tmp_path):
    access = p.Access(ca_file=str(tmp_path / "nope.crt"), username="patroni", password=PASSWORD)
    with pytest.raises(p.PatroniError) as err:
        p.request("127.0.0.1", 1, "/switchover", method="POST", body={}, timeout=1, access=access)
    assert "nope.crt" in str(err.value) and PASSWORD not in str(err.value)


def test_the_password_is_in_no_repr_and_no_timeout_error(pki):
    access = p.Access(ca_file=pki["ca"], username="patroni", password=PASSWORD)
    assert PASSWORD not in repr(access) and PASSWORD not in str(access) and "***" in repr(access)
    import socket
    s = socket.socket()                      # accepts, never answers: the deadline fires
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        with pytest.raises(p.PatroniError) as err:
            p.request("127.0.0.1", s.getsockname()[1], "/switchover", method="POST", body={},
                      timeout=0.3, access=access)
    finally:
        s.close()
    assert "within 0.3s" in str(err.value) and PASSWORD not in str(err.value)
