"""One HTTP(S) request to a name-based virtual host at a fixed address: the TCP connection
goes to ``address`` while TLS (SNI and the certificate's name check) and the Host header use
``host``, as a browser that resolves ``host`` to ``address`` would (the portal's domains,
p.pigsty and the like, resolve through meta's dnsmasq, not on the test host). Redirects are
not followed. Standard library only."""
import base64
import http.client
import socket
import ssl


def _pin(conn, address):
    """Connect ``conn`` to ``address`` whatever its host name (http.client sets
    ``_create_connection`` per instance, in __init__)."""
    conn._create_connection = lambda addr, timeout=None, source_address=None: \
        socket.create_connection((address, addr[1]), timeout, source_address)
    return conn


def request(address, port, host, path="/", scheme="https", cafile=None, auth=None, timeout=10,
            method="GET"):
    """(status, headers as a dict with lower-case names, body text). ``cafile``: the CA the
    server's certificate must chain to (required for https: nothing is sent unverified);
    ``auth``: a (user, password) pair sent as HTTP Basic."""
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % tuple(auth)).encode()).decode()
    if scheme == "https":
        if not cafile:
            raise ValueError("https to %s: a CA file to verify the server against is required" % host)
        ctx = ssl.create_default_context(cafile=cafile)
        conn = _pin(http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx), address)
    else:
        conn = _pin(http.client.HTTPConnection(host, port, timeout=timeout), address)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()
