"""A new cluster restored from another cluster's backups as of a point in time (Pigsty's
``pg_pitr`` with ``cluster``: a clone). The source cluster is not touched: the clone's first
member bootstraps by a Patroni custom method that restores the source's backup from the
repository on meta (``pgbackrest restore``) and replays the source's archived WAL up to the
target, then promotes; the clone is a cluster of its own from then on (its own timeline, its
own stanza and backups).

    pg-clone:
      hosts: {10.10.10.14: {pg_seq: 1, pg_role: primary}}
      vars:
        pg_pitr: {cluster: pg-test, time: '2026-12-03 10:00:00+00'}   # or lsn, name; none: latest

Choices (where Pigsty leaves it open or does more):
- Only the clone form: ``cluster`` must name another cluster (an in-place restore is the runner's
  ``pigsty_backup.restore``, with its confirmation). The target is one of ``time``, ``lsn``,
  ``name`` (a restore point) or none (the latest archived WAL); ``type``, when given, must
  agree; ``action`` is ``promote`` only (the clone must become a cluster). Pigsty's other
  fields (xid, exclusive, archive, backup, set, ...) are refused with the reason.
- It takes effect when the cluster is created (like initdb's options): a running clone
  ignores it; remove it from pillar once the clone runs (its members keep read access to the
  source's stanza while it is there).
- The source must keep backups (pgbackrest_enabled), not be a standby cluster, run the same
  major version; the clone must have pgbackrest_enabled (pgBackRest restores it) and, like a
  standby cluster, the source's system users (pigsty_standby.copy_problems).

Pure Python (no Salt imports).
"""
import shlex

import pigsty_backup
import pigsty_model
import pigsty_standby

TARGET_FIELDS = ("time", "lsn", "name")
FIELDS = {"cluster", "type", "action"} | set(TARGET_FIELDS)
NOT_BUILT = {
    "xid": "a transaction id target is not built (use time, lsn or name)",
    "exclusive": "the target is included (PostgreSQL's default)",
    "archive": "the clone archives into its own stanza once promoted",
    "backup": "nothing of the clone's nodes is set aside: they must be new",
    "set": "the newest backup before the target is used (pgBackRest's choice)",
    "repo": "one repository (pgbackrest_method)",
    "data": "the clone's data goes to its pg_data",
    "immediate": "use a time, an LSN or a restore point",
}
METHOD = "pigsty_clone"


def _raw(idx, name):
    cls = idx.clusters_raw.get(name)
    cvars = cls.get("vars") if isinstance(cls, dict) else None
    return (cvars or {}).get("pg_pitr") if isinstance(cvars, dict) else None


def _target(spec):
    """(rtype, value, text) of a pg_pitr mapping; ValueError naming the field otherwise."""
    given = [f for f in TARGET_FIELDS if spec.get(f) not in (None, "")]
    if len(given) > 1:
        raise ValueError("%s: give one target, not %s" % (given[1], " and ".join(given)))
    text = "latest" if not given else ("name:%s" % spec["name"] if given[0] == "name" else str(spec[given[0]]))
    try:
        rtype, value = pigsty_backup.parse_target(text)
    except pigsty_backup.BackupError as exc:
        raise ValueError("%s: %s" % (given[0] if given else "time", str(exc).split(": ", 1)[-1])) from None
    if given and rtype != ("time" if given[0] == "time" else given[0]):
        raise ValueError("%s: %r is not a %s" % (given[0], spec[given[0]], given[0]))
    want = spec.get("type")
    if want not in (None, rtype):
        raise ValueError("type: %r disagrees with the target given (%s)" % (want, rtype))
    return rtype, value, text


def clone_of(inv, name):
    """What cluster ``name`` is restored from: {"cluster", "rtype", "value", "target"} or
    None (not a clone, or pg_pitr that the validation refuses)."""
    idx = pigsty_model.index(inv)
    spec = _raw(idx, name)
    if not isinstance(spec, dict) or spec.get("cluster") in (None, "", name):
        return None
    try:
        rtype, value, text = _target(spec)
    except ValueError:
        return None
    return {"cluster": str(spec["cluster"]), "rtype": rtype, "value": value, "target": text}


def cluster_problems(inv, name, private_names):
    """The checks of a cluster's pg_pitr (none when it has none)."""
    idx = pigsty_model.index(inv)
    spec = _raw(idx, name)
    if spec is None:
        return []
    path = "pigsty:clusters:%s:vars:pg_pitr" % name
    if not isinstance(spec, dict):
        return ["%s: expected a mapping such as {cluster: pg-test, time: '2026-12-03 10:00:00+00'}" % path]
    problems = []
    for key in sorted(set(spec) - FIELDS, key=str):
        problems.append("%s:%s: %s" % (path, key, NOT_BUILT.get(key) or "unknown field (expected "
                                                                         "cluster, time, lsn, name, type, action)"))
    source = spec.get("cluster")
    if source in (None, "", name):
        problems.append("%s:cluster: expected another cluster to clone from (an in-place restore of "
                        "%s is salt-run pigsty_backup.restore cluster=%s target=... confirm=%s)"
                        % (path, name, name, name))
        return problems
    if spec.get("action", "promote") != "promote":
        problems.append("%s:action: %r: a clone is promoted at the target (expected promote)" % (
            path, spec.get("action")))
    try:
        _target(spec)
    except ValueError as exc:
        problems.append("%s:%s" % (path, exc))
    if source not in idx.clusters_raw:
        problems.append("%s:cluster: %r is not a cluster of the inventory" % (path, source))
        return problems
    if pigsty_standby.upstream_address(idx, name) is not None:
        problems.append("%s: a standby cluster (pg_upstream) cannot also be a clone" % path)
    sconf, conf = idx.cluster(source).conf, idx.cluster(name).conf
    if not sconf.get("pgbackrest_enabled"):
        problems.append("%s:cluster: %s keeps no backups (pgbackrest_enabled: false)" % (path, source))
    if pigsty_standby.upstream_address(idx, source) is not None:
        problems.append("%s:cluster: %s is a standby cluster, without backups of its own" % (path, source))
    if not conf.get("pgbackrest_enabled"):
        problems.append("pigsty:clusters:%s:vars:pgbackrest_enabled: a clone is restored by pgBackRest "
                        "(expected true with pg_pitr)" % name)
    return problems + pigsty_standby.copy_problems(idx, name, source, private_names)


def patroni_bootstrap(clone, conf):
    """Patroni's bootstrap method for a clone: (name, section). pgBackRest restores the
    source's backup into the empty data directory (``--type=none``: no recovery settings of
    its own), Patroni writes the recovery settings (the source's archive, the target, promote)."""
    argv = ["pgbackrest", "--config=%s" % pigsty_backup.CONFIG, "--stanza=%s" % clone["cluster"],
            "--pg1-path=%s" % conf["pg_data"], "--type=none", "restore"]
    recovery = {"restore_command": pigsty_backup.restore_command(clone["cluster"]),
                "recovery_target_action": "promote", "recovery_target_timeline": "latest"}
    if clone["rtype"] == "time":
        recovery["recovery_target_time"] = pigsty_backup.fmt_time(clone["value"])
    elif clone["rtype"] in ("lsn", "name"):
        recovery["recovery_target_%s" % clone["rtype"]] = clone["value"]
    return METHOD, {"command": " ".join(shlex.quote(a) for a in argv), "no_params": True,
                    "keep_existing_recovery_conf": False, "recovery_conf": recovery}
