"""Patroni's REST API from the host, as the sandbox serves it: HTTPS verified against the
Pigsty CA (read once from the meta node into a private temporary file). GETs need no login;
the unsafe methods (POST, PATCH...) are refused from the host anyway (the allow-list names
the members and the meta nodes only): tests make those from a node (patronictl, or the
patroni execution module), never with a password on a command line."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(REPO, "_utils") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "_utils"))
import pigsty_patroni  # noqa: E402

CA_ON_NODES = "/etc/pki/pigsty/ca.crt"
PORT = 8008
SANDBOX = [os.environ.get("PIGSTY_HOST_PYTHON", "/usr/bin/python3"),
           os.path.join(REPO, "sandbox", "sandbox.py")]
_STATE = {}


def ca_file():
    """A local copy of the sandbox's CA certificate (meta's /etc/pki/pigsty/ca.crt)."""
    if "ca" not in _STATE:
        res = subprocess.run(SANDBOX + ["exec", "meta", "cat", CA_ON_NODES], capture_output=True,
                             text=True, timeout=60)
        if res.returncode != 0 or "BEGIN CERTIFICATE" not in res.stdout:
            raise AssertionError("cannot read the CA certificate from meta: %s" % res.stderr[-500:])
        tmp = tempfile.mkdtemp(prefix="pigsty-ca-")
        atexit.register(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "ca.crt")
        with open(path, "w") as fh:
            fh.write(res.stdout)
        _STATE["ca"] = path
    return _STATE["ca"]


def access():
    """HTTPS verified against the sandbox's CA, without a login (the host may only GET)."""
    if "access" not in _STATE:
        _STATE["access"] = pigsty_patroni.Access(ca_file=ca_file())
    return _STATE["access"]


def get(ip, path="/patroni", timeout=3, port=PORT):
    """The JSON document at ``path`` (HTTP 200 only; PatroniError otherwise)."""
    return pigsty_patroni.get_json(ip, port, path, timeout=timeout, access=access())


def request(ip, path, method="GET", body=None, timeout=3, port=PORT, login=None):
    """(status, body) of any request; ``login``: a pigsty_patroni.Access with credentials
    (only to show that the host is refused even with them)."""
    return pigsty_patroni.request(ip, port, path, method=method, body=body, timeout=timeout,
                                  access=login or access())
