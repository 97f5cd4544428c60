"""The master's compiled inventory, cached between processes (the reactor's, the schedule's,
each ``salt-run``): pigsty_ha_inventory (the HA and backup runners) and the ``pigsty``
runner's logs read it from here.

Compiling every minion's pillar takes about a second, and the reactor runs each
reconciliation in a process of its own: the result is kept in this process and in the
master's cache directory (root only, mode 0600, like Salt's own pillar cache) until a
pillar file or directory changes (``pillar_stamp``) or ``max_age`` seconds pass.
"""
import json
import logging
import os
import threading
import time

import pigsty_inventory
import pigsty_pillar

log = logging.getLogger(__name__)

_CACHE = {}
_COMPILE = threading.Lock()     # threads of one process compile once, not each


def _indexed(merged, inv):
    """(merged, inv) with the inventory indexed once (pigsty_model): every later lookup of
    a cluster, instance or address costs O(1) instead of re-indexing the whole inventory."""
    inv = pigsty_inventory.index(inv)
    return dict(merged, pigsty=inv), inv


def pillar_stamp(opts):
    """Newest modification time under the pillar roots, files and directories (an edit
    changes its file's; a file added, removed or renamed changes its directory's): a
    pillar edit invalidates the cache."""
    newest = 0.0
    for roots in (opts.get("pillar_roots") or {}).values():
        for root in roots:
            for dirpath, _dirs, files in os.walk(root):
                for path in [dirpath] + [os.path.join(dirpath, name) for name in files]:
                    try:
                        newest = max(newest, os.path.getmtime(path))
                    except OSError:
                        continue
    return newest


def cache_path(opts):
    return os.path.join(opts["cachedir"], "pigsty", "inventory.json")


def _fresh(stamp, entry_stamp, entry_time, max_age):
    return entry_stamp == stamp and 0 <= time.time() - entry_time < max_age


def load(opts, max_age=300):
    """(merged pillar, inventory), from this process, the cache file or a fresh compile
    (pigsty_pillar.full_inventory: every pillar SLS file the top assigns)."""
    stamp = pillar_stamp(opts)
    cached = _CACHE.get("inv")
    if cached and _fresh(stamp, cached[0], cached[1], max_age):
        return cached[2], cached[3]
    with _COMPILE:
        cached = _CACHE.get("inv")          # another thread may have loaded it meanwhile
        if cached and _fresh(stamp, cached[0], cached[1], max_age):
            return cached[2], cached[3]
        path = cache_path(opts)
        try:
            with open(path) as fh:
                doc = json.load(fh)
            if _fresh(stamp, doc["stamp"], doc["time"], max_age):
                merged, inv = _indexed(doc["merged"], doc["inv"])
                _CACHE["inv"] = (stamp, doc["time"], merged, inv)
                return merged, inv
        except (OSError, ValueError, KeyError, TypeError):
            pass
        merged, _problems = pigsty_pillar.full_inventory(opts)
        inv = pigsty_inventory.inventory(merged)
        now = time.time()
        store(path, {"stamp": stamp, "time": now, "merged": merged, "inv": inv})
        merged, inv = _indexed(merged, inv)
        _CACHE["inv"] = (stamp, now, merged, inv)
        return merged, inv


def store(path, doc):
    """Write the inventory cache (mode 0600, atomically) if JSON gives it back unchanged."""
    try:
        text = json.dumps(doc, sort_keys=True)
        if json.loads(text) != doc:         # e.g. non-string keys: not cached, compiled again
            return False
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = "%s.%d" % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return True
    except (OSError, TypeError, ValueError) as exc:
        log.debug("pigsty: inventory cache not written: %s", exc)
        return False
