"""Small HTTP helpers for tests that run daemons on loopback: a free port, a GET (or POST)
without proxies, and waiting until a just-started daemon answers."""
import socket
import time
import urllib.error
import urllib.request

import pytest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url, data=None, timeout=3):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}
                                 if data is not None else {})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_http(url, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("%s exited early (rc %s): %s" % (proc.args[0], proc.returncode,
                                                         proc.stderr.read() if proc.stderr else ""))
        try:
            return get(url)
        except OSError:
            time.sleep(0.2)
    pytest.fail("%s did not answer within %ss" % (url, timeout))
