"""Beacon: watch the local Patroni and fire an event when its role, state or timeline
changes, or when Patroni becomes unreachable / comes back.

    beacons:
      patroni:
        - cluster: pg-test
        - instance: pg-test-1
        - ip: 10.10.10.11
        - port: 8008          # optional, default 8008
        - cafile: /etc/pki/pigsty/ca.crt   # optional: HTTPS verified against this CA
                                           # (without it: plain HTTP)
        - timeout: 0.5        # optional, seconds per REST call (default 0.5, at most 5)
        - interval: 1

Event tag: salt/beacon/<minion>/patroni/pigsty/patroni/change. Payload: cluster, instance,
ip, old_role, new_role, old_state, state, timeline, lsn, changed, source, time. Patroni 3
(`master`) and 4 (`primary`) are both reported as `primary`. The first poll after the
minion starts only records the state (the reactor reconciles on minion start anyway).
"""
import importlib.machinery
import logging
import os
import sys

import salt.utils.beacons

pigsty_events = pigsty_patroni = None
UTILS = ("pigsty_patroni", "pigsty_events")

log = logging.getLogger(__name__)


def _load_utils():
    """Import the synced _utils for this beacon only. The beacon runs in the minion's main
    process, from which every job is forked: leaving the modules in sys.modules would make
    every later job use them as they were at import time, even after a saltutil.sync_all
    brought new ones. So they are imported from the synced directory and taken out of
    sys.modules again (Salt's beacon loader does not put that directory on sys.path)."""
    global pigsty_events, pigsty_patroni  # pylint: disable=global-statement
    if pigsty_events is not None:
        return
    path = _utils_dir()
    added = path not in sys.path
    if added:
        sys.path.append(path)
    try:
        for name in UTILS:
            sys.modules.pop(name, None)
        import pigsty_patroni as patroni  # pylint: disable=import-outside-toplevel
        import pigsty_events as events  # pylint: disable=import-outside-toplevel
        pigsty_events, pigsty_patroni = events, patroni
    finally:
        for name in UTILS:
            sys.modules.pop(name, None)
        if added:
            sys.path.remove(path)

__virtualname__ = "patroni"
REQUIRED = ("cluster", "instance", "ip")
ALLOWED = set(REQUIRED) | {"port", "timeout", "interval", "cafile", "disable_during_state_run", "enabled",
                           "beacon_module"}


def _utils_dir():
    return os.path.join(__opts__.get("extension_modules") or "", "utils")


def __virtual__():
    # Found, not imported: the imports happen in _load_utils (see why there).
    path = sys.path + [_utils_dir()]
    missing = [name for name in UTILS if importlib.machinery.PathFinder.find_spec(name, path) is None]
    if missing:
        return (False, "%s beacon: the suite's _utils %s are not synced (saltutil.sync_all)"
                % (__virtualname__, ", ".join(missing)))
    return __virtualname__


def validate(config):
    _load_utils()
    if not isinstance(config, list):
        return False, "patroni beacon: configuration must be a list of one-key mappings"
    conf = salt.utils.beacons.list_to_dict(config)
    unknown = sorted(set(conf) - ALLOWED)
    if unknown:
        return False, "patroni beacon: unknown option(s) %s (expected: %s)" % (
            ", ".join(unknown), ", ".join(sorted(ALLOWED)))
    missing = [k for k in REQUIRED if not conf.get(k)]
    if missing:
        return False, "patroni beacon: missing %s (expected cluster, instance and ip)" % ", ".join(missing)
    if not pigsty_events.CLUSTER_RE.match(str(conf["cluster"])):
        return False, "patroni beacon: cluster %r is not a cluster name" % (conf["cluster"],)
    if not pigsty_events.INSTANCE_RE.match(str(conf["instance"])):
        return False, "patroni beacon: instance %r is not CLUSTER-SEQ" % (conf["instance"],)
    port = conf.get("port", 8008)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        return False, "patroni beacon: port %r is not a port number" % (port,)
    timeout = conf.get("timeout", 0.5)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 5:
        return False, "patroni beacon: timeout %r must be a number of seconds in (0, 5]" % (timeout,)
    cafile = conf.get("cafile")
    if cafile is not None and (not isinstance(cafile, str) or not cafile.startswith("/")):
        return False, "patroni beacon: cafile %r is not an absolute path" % (cafile,)
    return True, "Valid beacon configuration"


def beacon(config):
    _load_utils()
    conf = salt.utils.beacons.list_to_dict(config)
    key = "pigsty.patroni.%s" % conf["instance"]
    access = __context__.get(key + ".access")      # one SSL context for every poll
    if access is None or access.ca_file != conf.get("cafile"):
        access = pigsty_patroni.Access(ca_file=conf.get("cafile"))
        __context__[key + ".access"] = access
    try:
        status = pigsty_patroni.get_json("127.0.0.1", conf.get("port", 8008), "/patroni",
                                         timeout=conf.get("timeout", 0.5), access=access)
    except pigsty_patroni.PatroniError:
        status = None
    current = pigsty_events.observe(status)
    previous = __context__.get(key)
    __context__[key] = current
    if previous is None or not pigsty_events.changed(previous, current):
        return []
    identity = {"cluster": conf["cluster"], "instance": conf["instance"], "ip": conf["ip"]}
    ev = pigsty_events.event(identity, previous, current)
    ev["tag"] = pigsty_events.EVENT_TAG
    log.info("patroni beacon: %s %s -> %s (%s)", conf["instance"], previous["role"],
             current["role"], ", ".join(ev["changed"]))
    return [ev]
