"""Readiness checks: wait (bounded) until a local HTTP endpoint answers as expected.

A readiness check changes nothing, so it never reports changes. In test mode it asks once,
at once: a service that already answers is "ready" (result True, nothing to do); one that
does not is reported as "would wait" (result None). Salt's own
``http.wait_for_successful_query`` does not query in test mode and sleeps out its whole
``wait_for`` before it answers, which made a dry run of the meta node take minutes.

    prometheus-ready:
      pigsty_wait.http:
        - name: http://127.0.0.1:9090/-/ready
        - timeout: 60
"""
import re
import ssl
import time
import urllib.error
import urllib.request

__virtualname__ = "pigsty_wait"


def __virtual__():
    return __virtualname__   # standard library only


def _probe(url, status, match, request_timeout, ca_file=None, cert_file=None, key_file=None):
    """(ok, what was seen) for one GET of ``url`` (an https URL verified against ``ca_file``,
    with the client certificate ``cert_file``/``key_file`` when given)."""
    try:
        context = ssl.create_default_context(cafile=ca_file) if (ca_file or cert_file) else None
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
        with urllib.request.urlopen(url, timeout=request_timeout, context=context) as resp:   # nosec: operator's URL
            code, body = resp.status, resp.read(1 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        code, body = exc.code, ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, "no answer (%s)" % getattr(exc, "reason", exc)
    if code != int(status):
        return False, "HTTP %s, expected %s" % (code, status)
    if match and not re.search(match, body):
        return False, "HTTP %s without %r in the answer" % (code, match)
    return True, "HTTP %s" % code


def http(name, status=200, match=None, timeout=60, interval=1, request_timeout=2, ca_file=None,
         cert_file=None, key_file=None):
    """Wait until GET ``name`` answers ``status`` (and its body matches the regular
    expression ``match``, when given), asking every ``interval`` seconds for at most
    ``timeout`` seconds. ``ca_file``: the CA an https server's certificate must chain to
    (default: the system's); ``cert_file``/``key_file``: a client certificate for a server
    that asks for one (etcd)."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    for field, value in (("timeout", timeout), ("interval", interval), ("request_timeout", request_timeout)):
        try:
            if float(value) <= 0:
                raise ValueError
        except (TypeError, ValueError):
            ret["result"] = False
            ret["comment"] = "%s: %r is not a positive number of seconds" % (field, value)
            return ret
    deadline = time.monotonic() + float(timeout)
    started = time.monotonic()
    while True:
        ok, seen = _probe(name, status, match, float(request_timeout), ca_file, cert_file, key_file)
        if ok:
            ret["comment"] = "%s is ready (%s)" % (name, seen)
            if not __opts__["test"] and time.monotonic() - started > 0.5:
                ret["comment"] += " after %.1fs" % (time.monotonic() - started)
            return ret
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = "%s is not ready (%s); would wait up to %ss" % (name, seen, timeout)
            return ret
        if time.monotonic() + float(interval) > deadline:
            ret["result"] = False
            ret["comment"] = "%s not ready after %ss: %s" % (name, timeout, seen)
            return ret
        time.sleep(float(interval))
