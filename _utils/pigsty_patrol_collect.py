"""Taking a patrol report of a cluster on the master (the meta node): the inventory's
members, Patroni's /cluster over HTTPS, every member's ``pigsty_patrol.facts`` through Salt,
the stanza's backups from the repository host (``pigsty_backup.info``) and Alertmanager's
firing alerts (loopback, as the portal reads them), all at once and each bounded; then
pigsty_patrol.evaluate and the files of pigsty_patrol_store. Whatever does not answer is a
failed check of the report, never an exception."""
import json
import logging
import time
import urllib.request

import salt.exceptions

import pigsty_defaults as D
import pigsty_fanout
import pigsty_inventory
import pigsty_inventory_cache
import pigsty_patroni
import pigsty_patroni_rest
import pigsty_patrol
import pigsty_patrol_store

log = logging.getLogger(__name__)

REST_TIMEOUT = 2            # seconds for each Patroni /cluster request
ALERTS_TIMEOUT = 5          # seconds for Alertmanager
ALERTS_MAX_BODY = 8 << 20
ALERTS_PATH = "/api/v2/alerts?active=true&silenced=false&inhibited=false"


def inventory(opts):
    _merged, inv = pigsty_inventory_cache.load(opts)
    return inv


def require_cluster(inv, cluster):
    """SaltInvocationError naming the field and the known clusters, before anything runs."""
    known = sorted(inv.get("clusters") or {})
    if not isinstance(cluster, str) or cluster not in known:
        raise salt.exceptions.SaltInvocationError(
            "cluster: %r is not a cluster of the inventory (expected one of: %s)" % (
                cluster, ", ".join(known) or "none"))


def patroni_cluster(members, port, access=None):
    """(Patroni's /cluster document from the first member that answers, or None; errors)."""
    errors = []
    access = access or pigsty_patroni_rest.read_access()
    for m in members:
        try:
            return pigsty_patroni.get_json(m["ip"], port, "/cluster", timeout=REST_TIMEOUT,
                                           access=access), errors
        except pigsty_patroni.PatroniError as exc:
            errors.append(str(exc))
    return None, errors


def node_facts(opts, minions, timeout):
    """minion -> pigsty_patrol.facts (a dict) or what it answered instead (None: nothing)."""
    try:
        got = pigsty_fanout.fan_out(opts, minions, "pigsty_patrol.facts", timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - the report says so
        log.warning("pigsty patrol: facts of %s: %s", ", ".join(minions), exc)
        return {m: "the master could not ask: %s" % exc for m in minions}
    return {m: got.get(m) for m in minions}


def backups(opts, repo, cluster, timeout=120):
    """The stanza's parse_info from the repository host, or the error as text."""
    if not repo:
        return "no meta node: no backup repository"
    try:
        got = pigsty_fanout.fan_out(opts, [repo], "pigsty_backup.info", [cluster], timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        return "the master could not ask %s: %s" % (repo, exc)
    answer = got.get(repo)
    if answer is None:
        return "%s did not answer pigsty_backup.info within %ss" % (repo, timeout)
    return answer


def firing_alerts(port, host="127.0.0.1", timeout=ALERTS_TIMEOUT):
    """Alertmanager's active, unsilenced, uninhibited alerts (a list), or the error as text."""
    url = "http://%s:%d%s" % (host, port, ALERTS_PATH)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:   # noqa: S310 - loopback http
            body = resp.read(ALERTS_MAX_BODY + 1)
        if len(body) > ALERTS_MAX_BODY:
            return "Alertmanager's answer is larger than %d bytes" % ALERTS_MAX_BODY
        doc = json.loads(body.decode("utf-8"))
    except (OSError, ValueError) as exc:
        return "Alertmanager %s:%d: %s" % (host, port, exc)
    return doc if isinstance(doc, list) else "Alertmanager answered %s, not a list" % type(doc).__name__


def take(opts, cluster, overrides=None, now=None):
    """Take and keep a report of ``cluster``; (report, path of the day's file)."""
    inv = inventory(opts)
    require_cluster(inv, cluster)
    t = pigsty_patrol.thresholds(overrides)           # bad thresholds: refused before asking
    members = pigsty_inventory.cluster_members(inv, cluster)
    conf = pigsty_inventory.cluster_vars(inv, cluster)
    gvars = pigsty_inventory.global_vars(inv)
    metas = pigsty_inventory.meta_nodes(inv)
    minions = [m["minion"] for m in members if m.get("minion")]
    timeout = D.PATROL["node_timeout"]
    calls = {
        "patroni": (patroni_cluster, members, conf["patroni_port"]),
        "facts": (node_facts, opts, minions, timeout),
        "alerts": (firing_alerts, gvars["alertmanager_port"]),
    }
    if conf.get("pgbackrest_enabled"):
        calls["backups"] = (backups, opts, metas[0] if metas else None, cluster)
    started = time.time()
    got = pigsty_fanout.parallel(calls, join_timeout=timeout + 150)
    doc, errors = got["patroni"] if isinstance(got["patroni"], tuple) else (
        None, [str(got["patroni"].get("comment"))])
    facts = got["facts"] if isinstance(got["facts"], dict) and "comment" not in got["facts"] \
        else {m: str(got["facts"].get("comment")) for m in minions}
    report = pigsty_patrol.evaluate(
        cluster, members, conf, doc, errors, facts, got.get("backups"), got["alerts"],
        now if now is not None else time.time(), t)
    report["took_seconds"] = round(time.time() - started, 1)
    path = pigsty_patrol_store.write(pigsty_patrol_store.base_dir(opts), report)
    pigsty_patrol_store.prune(pigsty_patrol_store.base_dir(opts), report["time"],
                              D.PATROL["retention_days"], set(inv.get("clusters") or {}))
    return report, path


def due(opts, max_age=None, hour=None, now=None):
    """Take a report of each cluster that needs one (pigsty_patrol_store.due); cluster ->
    its headline, or the error."""
    hour = D.PATROL["hour"] if hour is None else hour
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise pigsty_patrol.PatrolError("hour: expected an hour of the day 0-23 (UTC), got %r" % (hour,))
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, (int, float))
                                or max_age < 0):
        raise pigsty_patrol.PatrolError("max_age: expected seconds (a number >= 0), got %r" % (max_age,))
    inv = inventory(opts)
    base = pigsty_patrol_store.base_dir(opts)
    now = now if now is not None else time.time()
    out = {}
    for cluster in sorted(inv.get("clusters") or {}):
        if not pigsty_patrol_store.due(pigsty_patrol_store.read(base, cluster), now, hour, max_age):
            continue
        try:
            report, _path = take(opts, cluster)
            out[cluster] = pigsty_patrol.headline(report)
        except Exception as exc:  # noqa: BLE001 - one cluster's failure does not stop the others
            log.exception("pigsty patrol of %s failed", cluster)
            out[cluster] = "patrol failed: %s" % exc
    return out
