"""Where the scheduled backups keep their record: which firing of a cluster's
``pgbackrest_schedule`` was taken last, since when the schedule runs, the last result.

With one master the record is a JSON file in the master's cache. With several (Salt's
multi-master: every master's scheduler runs ``pigsty_backup.run_due`` each minute) it is
the etcd key ``/pigsty/ha/<cluster>/backup-schedule``, and a master takes a firing only
after it moved the record from what it read to the firing (a compare-and-swap): of two
masters that see the same firing due, one wins the swap and takes the backup, the other
sees the record moved and leaves it. The backups themselves share the cluster's backup
lock in etcd too (pigsty_ha_locks.operation_lock, kind "backup").

When no etcd member answers, a master falls back to its own file and logs a warning (a
firing may then be taken by each master: pgBackRest's lock on the repository host keeps
two backups of a stanza from overlapping).
"""
import json
import logging
import os

import pigsty_etcd

log = logging.getLogger(__name__)


def key(cluster):
    return "%s/%s/backup-schedule" % (pigsty_etcd.HA_PREFIX, cluster)


class FileRecord:
    """The record in a file of this master (one master, or etcd out of reach)."""

    shared = False

    def __init__(self, cachedir, cluster):
        self.path = os.path.join(cachedir, "pigsty", "backup-schedule-%s.json" % cluster)

    def read(self):
        try:
            with open(self.path) as fh:
                doc = json.load(fh)
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def claim(self, doc):
        """Write ``doc``; True (this master is the only one to ask)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = "%s.%d" % (self.path, os.getpid())
        with open(tmp, "w") as fh:
            json.dump(doc, fh)
        os.replace(tmp, self.path)
        return True


class EtcdRecord:
    """The record in etcd, shared by the masters: ``claim`` swaps it from what ``read`` saw."""

    shared = True

    def __init__(self, client, cluster):
        self.client, self.key, self.raw = client, key(cluster), None

    def read(self):
        status, answer = self.client.get(self.key)
        if status == 404:
            self.raw = None
            return {}
        node = answer.get("node") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(node, dict):
            raise pigsty_etcd.EtcdError("etcd %s: GET %s answered %s" % (self.client.endpoint, self.key, status))
        self.raw = node.get("value")
        try:
            doc = json.loads(self.raw or "{}")
        except ValueError:
            doc = {}
        return doc if isinstance(doc, dict) else {}

    def claim(self, doc):
        """Put ``doc`` if the record is still what ``read`` (or the last claim) saw: True;
        False when another master moved it first."""
        raw = json.dumps(doc, sort_keys=True)
        status, _answer = self.client.swap(self.key, raw, self.raw)
        if status in (200, 201):
            self.raw = raw
            return True
        if status in (404, 412):
            return False
        raise pigsty_etcd.EtcdError("etcd %s: PUT %s answered %s" % (self.client.endpoint, self.key, status))


def record(cachedir, cluster, shared):
    """(the cluster's record, what it holds now): in etcd when ``shared`` (the (client,
    owner) of pigsty_ha_shared_lock.for_master) answers, else this master's file."""
    if shared is not None:
        rec = EtcdRecord(shared[0], cluster)
        try:
            return rec, rec.read()
        except pigsty_etcd.EtcdError as exc:
            log.warning("pigsty_backup: the shared schedule record of %s is out of reach (%s): "
                        "this master's own record is used", cluster, exc)
    rec = FileRecord(cachedir, cluster)
    return rec, rec.read()
