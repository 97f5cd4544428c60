"""The HA runner's reconcile lock shared by several Salt masters, in etcd.

With Salt's multi-master every master receives each beacon event and its reactor runs the
HA runner. The runner's reconcile lock (_utils/pigsty_ha_locks.py) serialises the
reconciliations of a cluster and keeps what the last finished one saw, so that a burst of
events coalesces; on one master it is a file. With several meta nodes it lives in etcd, so
that the masters take turns and the second one finds the first one's run:

- ``/pigsty/ha/<cluster>/lock``: created only if absent (v2 ``prevExist=false``) with a TTL,
  its value naming the holder; renewed every TTL/3 while held, deleted (only if still its
  own value) at the end. A master that dies holding it loses it when the TTL runs out.
- ``/pigsty/ha/<cluster>/last``: the last finished run's record ({"start", "roles", ...}).

Each master logs in with its node certificate: the meta nodes' etcd users hold the role
``pigsty_etcd.MASTERS_ROLE`` on ``/pigsty/ha`` only (_states/pigsty_etcd.py). Pure Python
(standard library and pigsty_etcd), no Salt import: tests use it against a real etcd.
"""
import contextlib
import json
import logging
import secrets
import threading
import time

import pigsty_etcd

log = logging.getLogger(__name__)

TTL = 30            # seconds: how long a dead master's lock blocks the others
POLL = 0.05         # seconds between two attempts to take a held lock


class Busy(Exception):
    """The lock stayed held for the whole wait."""


def masters(meta_nodes):
    """The meta nodes that share the lock in etcd: all of them when there are several
    (Salt's multi-master), none with one (its lock is a local file)."""
    metas = sorted(meta_nodes)
    return metas if len(metas) > 1 else []


def keys(cluster):
    base = "%s/%s" % (pigsty_etcd.HA_PREFIX, cluster)
    return base + "/lock", base + "/last"


def _value(answer):
    node = (answer or {}).get("node") if isinstance(answer, dict) else None
    return node.get("value") if isinstance(node, dict) else None


def holder(client, cluster):
    """Who holds the cluster's lock ({"owner", "since"}), or None."""
    status, answer = client.get(keys(cluster)[0])
    if status != 200:
        return None
    try:
        doc = json.loads(_value(answer) or "{}")
    except ValueError:
        return None
    return {"owner": doc.get("owner"), "since": doc.get("since")}


def _check(status, answer, what, client):
    if status in (401, 403):
        raise pigsty_etcd.EtcdError("etcd %s refused %s (the meta node's user needs the role %s: "
                                    "state.apply dcs on the meta nodes)" % (
                                        client.endpoint, what, pigsty_etcd.MASTERS_ROLE), status)
    raise pigsty_etcd.EtcdError("etcd %s: %s answered %s: %s" % (
        client.endpoint, what, status, pigsty_etcd._message(answer)), status)


def _renew(client, key, value, ttl, stop):
    while not stop.wait(ttl / 3.0):
        try:
            status, _answer = client.refresh(key, ttl, value)
        except pigsty_etcd.EtcdError as exc:
            log.warning("pigsty_ha: renewing %s: %s", key, exc)
            continue
        if status != 200:
            log.error("pigsty_ha: lost %s (etcd answered %s to its renewal)", key, status)
            return


@contextlib.contextmanager
def reconcile_lock(client, cluster, owner, wait=120, ttl=TTL):
    """Hold ``cluster``'s reconcile lock in etcd (waiting up to ``wait`` seconds: Busy
    after that) and yield the last finished run's record, which is written back when the
    block ends without an exception. EtcdError when etcd does not answer or refuses the
    lock (nothing held then)."""
    lock_key, last_key = keys(cluster)
    value = json.dumps({"owner": owner, "since": round(time.time(), 3), "token": secrets.token_hex(8)})
    deadline = time.monotonic() + wait
    while True:
        status, answer = client.create(lock_key, value, ttl)
        if status == 201:
            break
        if status != 412:
            _check(status, answer, "creating %s" % lock_key, client)
        if time.monotonic() >= deadline:
            held = holder(client, cluster) or {}
            raise Busy("another reconciliation of %s (master %s, since %s) has held its lock "
                       "for %ss" % (cluster, held.get("owner"), held.get("since"), wait))
        time.sleep(POLL)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(client, lock_key, value, ttl, stop), daemon=True)
    renewer.start()
    try:
        status, answer = client.get(last_key)
        last = {}
        if status == 200:
            try:
                last = json.loads(_value(answer) or "{}")
            except ValueError:
                last = {}
        elif status != 404:
            _check(status, answer, "reading %s" % last_key, client)
        yield last
        try:        # the run is done: a record not written costs the next run a re-check
            status, _answer = client.put(last_key, json.dumps(last))
            if status not in (200, 201):
                log.warning("pigsty_ha: writing %s: etcd answered %s", last_key, status)
        except pigsty_etcd.EtcdError as exc:
            log.warning("pigsty_ha: writing %s: %s", last_key, exc)
    finally:
        stop.set()
        renewer.join(5)
        try:
            status, _answer = client.delete(lock_key, prev_value=value)
            if status not in (200, 404, 412):
                log.warning("pigsty_ha: releasing %s: etcd answered %s (it expires in %ss)",
                            lock_key, status, ttl)
        except pigsty_etcd.EtcdError as exc:
            log.warning("pigsty_ha: releasing %s: %s (it expires in %ss)", lock_key, exc, ttl)


class Endpoints:
    """etcd's client endpoints in order, as one client: each request goes to the endpoint
    that answered last and moves on to the next when one does not answer (EtcdError
    once none did). The v2 key operations the lock uses only."""

    def __init__(self, clients):
        if not clients:
            raise ValueError("no etcd endpoint")
        self.clients = list(clients)
        self.good = 0
        self.endpoint = ", ".join(c.endpoint for c in self.clients)

    def _call(self, name, *args, **kwargs):
        errors = []
        for i in range(len(self.clients)):
            at = (self.good + i) % len(self.clients)
            try:
                out = getattr(self.clients[at], name)(*args, **kwargs)
            except pigsty_etcd.EtcdError as exc:
                errors.append(str(exc))
                continue
            self.good = at
            return out
        raise pigsty_etcd.EtcdError("; ".join(errors))

    def get(self, *args, **kwargs):
        return self._call("get", *args, **kwargs)

    def put(self, *args, **kwargs):
        return self._call("put", *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._call("delete", *args, **kwargs)

    def create(self, *args, **kwargs):
        return self._call("create", *args, **kwargs)

    def refresh(self, *args, **kwargs):
        return self._call("refresh", *args, **kwargs)


_CLIENTS = {}
_CLIENTS_LOCK = threading.Lock()


def client(addresses, port, pki, timeout=2):
    """The shared client of etcd's members ``addresses`` (this process keeps one per set:
    TLS contexts are built once), logging in with this node's certificate: ``pki`` is
    pigsty_pki.paths(). EtcdError when those files cannot be read."""
    key = (tuple(addresses), port, pki["ca_crt"], pki["node_crt"])
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            try:
                _CLIENTS[key] = Endpoints([pigsty_etcd.Client(
                    "https://%s:%d" % (ip, port), cafile=pki["ca_crt"], certfile=pki["node_crt"],
                    keyfile=pki["node_key"], timeout=timeout) for ip in addresses])
            except (OSError, ValueError) as exc:      # ssl.SSLError is an OSError
                raise pigsty_etcd.EtcdError("the CA (%s) or this node's certificate (%s, %s) "
                                            "cannot be read: %s" % (pki["ca_crt"], pki["node_crt"],
                                                                    pki["node_key"], exc)) from None
        return _CLIENTS[key]
