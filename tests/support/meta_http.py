"""HTTP from the host to the sandbox's meta node (10.10.10.10 only): Nginx's virtual hosts
and Prometheus' query API, for the infra and observability integration tests."""
import json
import urllib.error
import urllib.parse
import urllib.request

META = "10.10.10.10"
PROM = "http://%s:9090" % META


def http(url, host=None, timeout=10):
    """(status, body) of a GET, with an optional Host header (Nginx's virtual hosts)."""
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
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
