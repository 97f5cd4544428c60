"""States for Patroni: wait for a cluster leader, wait for the local member to run, and
converge the dynamic (DCS) configuration.

    patroni-running:
      patroni.running:
        - name: pg-test-1
    patroni-dcs:
      patroni.dcs_config:
        - name: pg-test
        - config: {ttl: 30, loop_wait: 5}
"""
import time

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_patroni
    import pigsty_patroni_rest
    import pigsty_standby
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "patroni"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    if "patroni.status" in __salt__:
        return __virtualname__
    return (False, "patroni state: the patroni execution module is not loaded")


def _ret(name):
    return {"name": name, "changes": {}, "result": True, "comment": ""}


def leader_present(name, members, port=8008, timeout=300, interval=1):
    """Wait (bounded) until cluster ``name`` has a leader, asking the members' REST APIs."""
    ret = _ret(name)
    deadline = time.monotonic() + float(timeout)
    errors = []
    while True:
        found, errors = pigsty_patroni.find_leader(
            members, port, access=pigsty_patroni_rest.node_access(__salt__))
        if found:
            ret["comment"] = "Cluster %s has leader %s" % (name, found["name"])
            return ret
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = "Cluster %s has no leader yet; would wait up to %ss" % (name, timeout)
            return ret
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    ret["result"] = False
    ret["comment"] = ("Cluster %s has no leader after %ss (start its primary first: "
                      "orch.pgsql does). Last answers: %s" % (name, timeout, "; ".join(errors[-3:])))
    return ret


def running(name, port=8008, timeout=300, interval=1):
    """Wait (bounded) until the local Patroni member ``name`` runs Postgres in an
    initialised cluster: its state is running and the cluster has a leader. Patroni reports
    state running as soon as it has started Postgres, which on the first member is while the
    bootstrap still runs (before the leader key and the DCS configuration exist), so the
    state alone is not enough for what follows (patroni.dcs_config, users)."""
    ret = _ret(name)
    deadline = time.monotonic() + float(timeout)
    last = "no answer"
    while True:
        try:
            st = __salt__["patroni.status"](port=port)
            last = "state %s, role %s" % (st.get("state"), st.get("role"))
            if st.get("state") == "running":
                leader = __salt__["patroni.leader"](port=port)
                if leader:
                    ret["comment"] = "Patroni member %s is running as %s (leader %s)" % (
                        name, st.get("role"), leader["name"])
                    return ret
                last += ", the cluster has no leader yet (bootstrap not finished)"
        except Exception as exc:  # pylint: disable=broad-except
            last = str(exc)
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = "Patroni member %s is not running (%s); would wait up to %ss" % (
                name, last, timeout)
            return ret
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    ret["result"] = False
    ret["comment"] = "Patroni member %s not running after %ss: %s" % (name, timeout, last)
    return ret


def dcs_config(name, config, port=8008, wait=60):
    """Make the cluster's dynamic configuration contain ``config`` (PATCH only what differs).

    The read waits up to ``wait`` seconds for a Patroni that does not answer yet or has no
    configuration in the DCS yet (HTTP 502 while the cluster bootstraps)."""
    ret = _ret(name)
    try:
        current = __salt__["patroni.config"](port=port, wait=0 if __opts__["test"] else wait)
    except Exception as exc:  # pylint: disable=broad-except
        ret["result"] = None if __opts__["test"] else False
        ret["comment"] = "Dynamic configuration of %s could not be read: %s" % (name, exc)
        return ret
    config = dict(config)
    standby, refusal, note = pigsty_standby.dcs_patch(name, (current or {}).get("standby_cluster"),
                                                      config.pop("standby_cluster", None))
    if refusal:
        ret["result"] = False
        ret["comment"] = "Dynamic configuration of %s left as it is: %s" % (name, refusal)
        return ret
    patch = pigsty_patroni.config_diff(current, config)
    if standby:
        patch["standby_cluster"] = standby
    note = " (%s)" % note if note else ""
    if not patch:
        ret["comment"] = "Dynamic configuration of %s is as desired%s" % (name, note)
        return ret
    ret["changes"] = {"patch": patch}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "Dynamic configuration of %s would be patched%s" % (name, note)
        return ret
    __salt__["patroni.config_patch"](patch, port=port)
    ret["comment"] = "Dynamic configuration of %s patched%s" % (name, note)
    return ret
