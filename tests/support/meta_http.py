"""HTTP(S) from the host to the sandbox's meta node (10.10.10.10 only): Nginx's virtual hosts
and, through the portal, Prometheus' query API, for the infra and observability integration
tests. The portal is HTTPS (verified against the sandbox's CA, read once from meta, under
the virtual host's domain: p.pigsty, pigsty...); plain HTTP serves the package repository
and redirects the rest (not followed here). Prometheus and Alertmanager listen on meta's
loopback only. The portal's pages ask for the portal's login (pillar/dcs.sls): it is sent to
https://META/ unless ``auth`` says otherwise (None: no login; a (user, password) pair: that
one, e.g. a cluster's HAProxy login)."""
import functools
import json
import os
import urllib.parse

import yaml

import patroni_rest
import pinned_https

META = "10.10.10.10"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORTAL = "portal"
PROM = "https://%s" % META         # Prometheus, through the portal's virtual host PROM_HOST
PROM_HOST = "p.pigsty"


@functools.lru_cache(maxsize=1)
def portal_login():
    with open(os.path.join(REPO, "pillar", "dcs.sls")) as fh:
        infra = yaml.safe_load(fh)["pigsty"]["infra"]
    return infra["portal_username"], infra["portal_password"]


def ca_file():
    """The sandbox's CA certificate (a local copy of meta's /etc/pki/pigsty/ca.crt)."""
    return patroni_rest.ca_file()


def request(url, host=None, timeout=10, auth=PORTAL):
    """(status, headers, body) of a GET, redirects not followed. ``host``: the virtual host
    (Host header and, over https, the name the certificate must hold); default the URL's."""
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme == "https"
    if auth == PORTAL:
        auth = portal_login() if https and parts.hostname == META else None
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return pinned_https.request(parts.hostname, parts.port or (443 if https else 80), host or parts.hostname,
                                path, scheme=parts.scheme, cafile=ca_file() if https else None, auth=auth,
                                timeout=timeout)


def http(url, host=None, timeout=10, auth=PORTAL):
    """(status, body) of a GET (see request)."""
    status, _headers, body = request(url, host=host, timeout=timeout, auth=auth)
    return status, body


def prometheus(path, timeout=10):
    """(status, body) of a GET of Prometheus' ``path`` through the portal (HTTPS, login)."""
    return http(PROM + path, host=PROM_HOST, timeout=timeout)


def prom_query(expr):
    """The result vector of an instant query (the test fails on a non-200 answer)."""
    status, body = prometheus("/api/v1/query?%s" % urllib.parse.urlencode({"query": expr}))
    assert status == 200, (expr, body)
    return json.loads(body)["data"]["result"]
