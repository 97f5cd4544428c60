"""HTTP from the host to the sandbox's meta node (10.10.10.10 only): Nginx's virtual hosts
and Prometheus' query API, for the infra and observability integration tests. Nginx's
pages ask for the portal's login (pillar/dcs.sls): it is sent unless ``auth`` says otherwise
(None: no login; a (user, password) pair: that one, e.g. a cluster's HAProxy login)."""
import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import yaml

META = "10.10.10.10"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORTAL = "portal"


def portal_login():
    with open(os.path.join(REPO, "pillar", "dcs.sls")) as fh:
        infra = yaml.safe_load(fh)["pigsty"]["infra"]
    return infra["portal_username"], infra["portal_password"]
PROM = "http://%s:9090" % META


def http(url, host=None, timeout=10, auth=PORTAL):
    """(status, body) of a GET, with an optional Host header (Nginx's virtual hosts)."""
    headers = {"Host": host} if host else {}
    if auth == PORTAL:
        auth = portal_login() if url.startswith("http://%s/" % META) else None
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % tuple(auth)).encode()).decode()
    req = urllib.request.Request(url, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def prom_query(expr):
    """The result vector of an instant query (the test fails on a non-200 answer)."""
    status, body = http("%s/api/v1/query?%s" % (PROM, urllib.parse.urlencode({"query": expr})))
    assert status == 200, (expr, body)
    return json.loads(body)["data"]["result"]
