"""Help a member that rejoins its cluster reach a consistent state (run on the primary).

After pg_rewind, a rejoining member must replay WAL up to the position its source, the
primary, reported when the rewind ran (its minimum recovery point). On an idle primary just
after a WAL segment switch (archive_timeout switches segments), that position lies past the
new segment's page header, where no record has been written yet: the member stays
"starting" and refuses connections until the primary writes anything. The HA runner calls
``wal_record`` on the primary when it sees a member "starting": one non-transactional logical
message (a few dozen bytes of WAL) that the member streams and replays past. On a member
that is starting for another reason (a long crash recovery) it changes nothing.

    salt node-2 pigsty_rejoin.wal_record
"""
import logging

import salt.exceptions

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_rejoin"

# NULL on a standby (pg_logical_emit_message cannot run during recovery)
SQL = ("SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
       "ELSE pg_logical_emit_message(false, 'pigsty', 'rejoin')::text END")


def __virtual__():
    if "pigsty.config" not in __salt__:
        return (False, "pigsty_rejoin: the pigsty execution module is not loaded (saltutil.sync_all)")
    return __virtualname__


def wal_record():
    """Write one small WAL record on this node's instance if it is the primary.

    Returns ``{"result": True, "lsn": "0/2F000068"}`` when written, ``{"result": False,
    "comment": ...}`` on a standby or when PostgreSQL does not answer.

    CLI example::

        salt node-2 pigsty_rejoin.wal_record
    """
    conf = __salt__["pigsty.config"]()
    if not conf:
        raise salt.exceptions.CommandExecutionError("this node hosts no PostgreSQL instance (pillar)")
    res = __salt__["cmd.run_all"](["psql", "-X", "-qAt", "-p", str(conf["pg_port"]), "-d", "postgres", "-c", SQL],
                                  runas=conf["pg_dbsu"], python_shell=False, timeout=30,
                                  ignore_retcode=True, output_loglevel="debug")
    if res.get("retcode") != 0:
        return {"result": False, "comment": "PostgreSQL did not answer: %s" % (res.get("stderr") or "").strip()[-300:]}
    lsn = (res.get("stdout") or "").strip()
    if not lsn:
        return {"result": False, "comment": "this instance is a standby: nothing written"}
    log.info("pigsty_rejoin: wrote a WAL record at %s so that a rejoining member reaches consistency", lsn)
    return {"result": True, "lsn": lsn}
