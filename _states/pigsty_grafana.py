"""Grafana's admin password from the meta node's private pillar (pigsty:infra:
grafana_admin_password), instead of Grafana's default:

    grafana-admin-password:
      pigsty_grafana.admin_password:
        - name: http://127.0.0.1:3000

The password is checked by logging in (``GET /api/user`` with Basic authentication): when
it works, nothing changes. Otherwise it is set with ``grafana-cli admin
reset-admin-password --password-from-stdin`` (Grafana 9 and later), the password on the
command's stdin, as the grafana user, and checked again. The password comes from pillar,
not from the SLS, and is never logged or returned.
"""
import base64
import urllib.error
import urllib.request

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_inventory
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "pigsty_grafana"

ADMIN = "admin"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _logs_in(url, password, timeout):
    token = base64.b64encode(("%s:%s" % (ADMIN, password)).encode()).decode()
    req = urllib.request.Request(url.rstrip("/") + "/api/user", headers={"Authorization": "Basic " + token})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status == 200
    except urllib.error.HTTPError:
        return False


def admin_password(name, timeout=5, user="grafana"):
    """Make Grafana at ``name`` accept the pillar's admin password."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    problems = [p for p in pigsty_inventory.validate_web_secrets(__pillar__) if "grafana" in p]
    password = pigsty_inventory.web_secrets(__pillar__)["grafana_admin_password"]
    if problems or not password:
        ret.update(result=False, comment="refused before any change: %s" % (
            "; ".join(problems) or "pigsty:infra:grafana_admin_password: missing"))
        return ret
    try:
        if _logs_in(name, password, timeout):
            ret["comment"] = "Grafana's admin logs in with the pillar password"
            return ret
    except (urllib.error.URLError, OSError) as exc:
        ret.update(result=False, comment="Grafana at %s did not answer: %s" % (name, getattr(exc, "reason", exc)))
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes={"password": "would change"},
                   comment="Grafana's admin password would be set from pillar")
        return ret
    res = __salt__["cmd.run_all"](
        ["grafana-cli", "--homepath", "/usr/share/grafana", "--config", "/etc/grafana/grafana.ini",
         "admin", "reset-admin-password", "--password-from-stdin"],
        stdin=password + "\n", runas=user, python_shell=False, output_loglevel="quiet",
        ignore_retcode=True, timeout=60)
    if res.get("retcode") != 0 or not _logs_in(name, password, timeout):
        ret.update(result=False, comment="grafana-cli could not set the admin password (exit %s)" % res.get("retcode"))
        return ret
    ret.update(changes={"password": "changed"}, comment="Grafana's admin password set from pillar")
    return ret
