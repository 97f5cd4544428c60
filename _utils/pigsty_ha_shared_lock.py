"""The HA runners' locks shared by several Salt masters, in etcd.

With Salt's multi-master every master receives each beacon event and its reactor runs the
HA runner. The runner's reconcile lock (_utils/pigsty_ha_locks.py) serialises the
reconciliations of a cluster and keeps what the last finished one saw, so that a burst of
events coalesces; on one master it is a file. With several meta nodes it lives in etcd, so
that the masters take turns and the second one finds the first one's run:

- ``/pigsty/ha/<cluster>/lock``: created only if absent (v2 ``prevExist=false``) with a TTL,
  its value naming the holder; renewed every TTL/3 while held, deleted (only if still its
  own value) at the end. A master that dies holding it loses it when the TTL runs out.
- ``/pigsty/ha/<cluster>/last``: the last finished run's record ({"start", "roles", ...}).
- ``/pigsty/ha/<cluster>/operation`` and ``.../backup``: the planned operation (switchover,
  failover, promotion, restore) and the backup of the cluster in progress, held the same
  way: one of each kind at a time across the masters, and reconciliation on any master sees
  a switchover's hand-off.

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
import pigsty_model
import pigsty_pki

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


def _doc(client, key):
    """The JSON document at ``key``, or None."""
    status, answer = client.get(key)
    if status != 200:
        return None
    try:
        doc = json.loads(_value(answer) or "{}")
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def holder(client, cluster):
    """Who holds the cluster's reconcile lock ({"owner", "since"}), or None."""
    doc = _doc(client, keys(cluster)[0])
    return None if doc is None else {"owner": doc.get("owner"), "since": doc.get("since")}


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
def _held(client, key, doc, wait, ttl, busy):
    """Hold ``key`` (created with the JSON ``doc`` and a random token) while the block runs:
    renewed every TTL/3, deleted at the end if it still holds our value. When it stays held
    for ``wait`` seconds: Busy(busy(the holder's document))."""
    value = json.dumps(dict(doc, token=secrets.token_hex(8)), sort_keys=True)
    deadline = time.monotonic() + wait
    while True:
        status, answer = client.create(key, value, ttl)
        if status == 201:
            break
        if status != 412:
            _check(status, answer, "creating %s" % key, client)
        if time.monotonic() >= deadline:
            raise Busy(busy(_doc(client, key) or {}))
        time.sleep(POLL)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(client, key, value, ttl, stop), daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(5)
        try:
            status, _answer = client.delete(key, prev_value=value)
            if status not in (200, 404, 412):
                log.warning("pigsty_ha: releasing %s: etcd answered %s (it expires in %ss)",
                            key, status, ttl)
        except pigsty_etcd.EtcdError as exc:
            log.warning("pigsty_ha: releasing %s: %s (it expires in %ss)", key, exc, ttl)


@contextlib.contextmanager
def reconcile_lock(client, cluster, owner, wait=120, ttl=TTL):
    """Hold ``cluster``'s reconcile lock in etcd (waiting up to ``wait`` seconds: Busy
    after that) and yield the last finished run's record, which is written back when the
    block ends without an exception. EtcdError when etcd does not answer or refuses the
    lock (nothing held then)."""
    lock_key, last_key = keys(cluster)

    def busy(held):
        return ("another reconciliation of %s (master %s, since %s) has held its lock for %ss"
                % (cluster, held.get("owner"), held.get("since"), wait))
    with _held(client, lock_key, {"owner": owner, "since": round(time.time(), 3)}, wait, ttl, busy):
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


def operation_key(cluster, kind):
    return "%s/%s/%s" % (pigsty_etcd.HA_PREFIX, cluster, kind)


@contextlib.contextmanager
def operation_lock(client, cluster, kind, description, owner, wait=0, ttl=TTL):
    """Hold the cluster's ``kind`` lock ("operation": planned HA operations, "backup") in
    etcd while the block runs, described as ``description`` ("switchover pg-test-1 ->
    pg-test-2"): a second one on any master is refused (Busy naming the one in progress)."""
    doc = {"operation": description, "owner": owner, "since": time.strftime("%H:%M:%S")}
    with _held(client, operation_key(cluster, kind), doc, wait, ttl, _described):
        yield


def _described(held):
    """An operation lock's holder as a refusal names it: what, which master, since when."""
    return "%s (master %s, since %s)" % (held.get("operation") or "another operation",
                                         held.get("owner"), held.get("since"))


def operation_running(client, cluster, kind="operation"):
    """The operation of ``cluster`` in progress on any master, as its holder describes it,
    or None."""
    doc = _doc(client, operation_key(cluster, kind))
    return None if doc is None else _described(doc)


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

    def swap(self, *args, **kwargs):
        return self._call("swap", *args, **kwargs)


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


def for_master(opts, inv):
    """(etcd client, this master's name) when the inventory has several meta nodes (Salt's
    multi-master: each gets every event and runs the schedules) and the DCS is our etcd:
    the locks to share; None with one meta node, or when this node's certificate cannot be
    read (a warning: each master then uses its own locks)."""
    idx = pigsty_model.index(inv)
    if not masters(idx.meta_nodes) or idx.gvars.get("dcs_type") != "etcd":
        return None
    pki = pigsty_pki.paths(opts.get("pigsty_pki_dir") or pigsty_pki.PKI_DIR)
    try:
        shared = client(idx.dcs_ips, idx.gvars["etcd_port"], pki)
    except pigsty_etcd.EtcdError as exc:
        log.warning("pigsty_ha: no shared locks (%s): this master's own locks are used", exc)
        return None
    return shared, opts.get("id") or "master"
