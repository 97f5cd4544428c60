"""pgBackRest on one node: configuration, backups (repository host), restore (database node).

    salt meta   pigsty_backup.info pg-test          # the stanza's backups, parsed
    salt meta   pigsty_backup.stanza_create pg-test
    salt meta   pigsty_backup.backup pg-test full '[node-1, node-2]' from_standby=False
    salt meta   pigsty_backup.check pg-test
    salt node-1 pigsty_backup.restore pg-test time '2026-12-01 10:00:00+00'   # data dir empty

pgBackRest runs as the dbsu (``postgres``) everywhere: it owns the repository on the meta
node, where pg-meta's own instance archives into it directly. The operator's commands are the runner's
(_runners/pigsty_backup.py); the pure logic is _utils/pigsty_backup.py.
"""
import datetime
import json
import logging
import os
import pwd
import shutil
import time

import salt.exceptions
import salt.utils.path

# A util named like a module of this directory comes after one that is not: without the
# _utils, Salt's loader has this directory on sys.path and the import would find the module.
try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_inventory
    import pigsty_backup
    import pigsty_clone
    import pigsty_backup_metrics
    import pigsty_pki
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_backup"

COMMAND_TIMEOUT = 6 * 3600      # a backup or a restore of a large database takes hours
PG_BIN = "/usr/lib/postgresql/%d/bin"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    # Always loaded: the states render the configuration (config, peers) before the
    # package is installed; the functions that run pgBackRest say when it is missing.
    return __virtualname__


# ------------------------------------------------------------------ configuration
def _inv():
    return pigsty_inventory.inventory(__pillar__)


def _is_meta():
    node = (_inv().get("nodes") or {}).get(__opts__["id"]) or {}
    return bool(node.get("meta"))


def repo_host():
    """The repository host: the first meta node (its minion id, its certificate's CN)."""
    metas = pigsty_inventory.meta_nodes(_inv())
    if not metas:
        raise salt.exceptions.CommandExecutionError("no meta node in the inventory")
    return metas[0]


def enabled_clusters():
    """[(name, cluster config, member minion ids)] of the clusters with pgbackrest_enabled."""
    inv = _inv()
    out = []
    for name in sorted(inv.get("clusters") or {}):
        conf = pigsty_inventory.cluster_vars(inv, name)
        conf["pg_clone"] = pigsty_clone.clone_of(inv, name)     # its members read the source's stanza
        if conf.get("pgbackrest_enabled"):
            members = pigsty_inventory.cluster_members(inv, name)
            out.append((name, conf, [m["minion"] for m in members if m.get("minion")]))
    return out


def config():
    """The text of this node's pgbackrest.conf: the repository's on the repository host,
    a database node's otherwise (None: a database node of a cluster without backups)."""
    inv = _inv()
    paths = pigsty_pki.paths(__salt__["config.get"]("pigsty_pki_dir", pigsty_pki.PKI_DIR))
    pki = {"ca": paths["ca_crt"], "cert": paths["node_crt"], "key": paths["node_key"]}
    if __opts__["id"] == repo_host():
        return pigsty_backup.repo_config(pigsty_inventory.global_vars(inv), enabled_clusters(),
                                         pki, repo_host=repo_host())
    conf = pigsty_inventory.instance_config(__pillar__, __opts__["id"])
    if conf is None or not conf.get("pgbackrest_enabled"):
        return None
    return pigsty_backup.db_config(conf, repo_host(), pki)


def peers():
    """{minion id: address} this node connects to by name (pgBackRest checks the name in
    the peer's certificate): the repository host on a database node, the members of every
    cluster with backups on the repository host."""
    inv = _inv()
    nodes = inv.get("nodes") or {}
    if __opts__["id"] == repo_host():
        ids = [m for _n, _c, minions in enabled_clusters() for m in minions]
    else:
        ids = [repo_host()]
    return {i: str(nodes[i]["ip"]) for i in ids if i in nodes and i != __opts__["id"]}


def settings():
    """The resolved backup parameters this node uses (global and, on a database node, its
    cluster's)."""
    inv = _inv()
    conf = pigsty_inventory.instance_config(__pillar__, __opts__["id"]) or \
        pigsty_inventory.global_vars(inv)
    keys = ("pgbackrest_enabled", "pgbackrest_method", "pgbackrest_port", "pgbackrest_log_dir",
            "pg_archive_timeout", "pgbackrest_schedule", "pg_cluster", "pg_data", "pg_dbsu",
            "pg_version")
    out = {k: conf.get(k) for k in keys}
    out["repo"] = pigsty_backup.repo_settings(conf)
    out["repo_host"] = repo_host()
    out["is_repo_host"] = __opts__["id"] == repo_host()
    out["pg_dbsu"] = _user()
    # the backup metrics' exporter on the repository host (infra.backup_repo)
    out["metrics_dir"] = pigsty_backup_metrics.TEXTFILE_DIR
    out["metrics_exporter"] = " ".join(pigsty_backup_metrics.exporter_argv(
        conf.get("pgbackrest_exporter_port") or
        pigsty_inventory.global_vars(inv)["pgbackrest_exporter_port"]))
    return out


# ------------------------------------------------------------------ running pgBackRest
def _user():
    """The dbsu (postgres) everywhere: it owns the repository on meta too, where pg-meta's
    own instance archives straight into it."""
    conf = pigsty_inventory.instance_config(__pillar__, __opts__["id"]) or \
        pigsty_inventory.global_vars(_inv())
    return conf.get("pg_dbsu") or "postgres"


def _as_user(argv, user):
    """``argv`` run as ``user``: through util-linux's runuser when the minion is root (Salt's
    ``runas`` first starts a login shell and a Python to read the user's environment, about
    0.3 s a command here, on every backup and every info)."""
    if os.geteuid() != 0 or pwd.getpwuid(os.geteuid()).pw_name == user:
        return list(argv)
    return ["runuser", "-u", user, "--"] + list(argv)


def _user_env(user):
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise salt.exceptions.CommandExecutionError("user %s does not exist on %s" % (
            user, __opts__["id"]))
    return {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user}


def _run(argv, timeout=COMMAND_TIMEOUT, user=None):
    """Run pgBackRest as its user; the result with its output's tail (no secret is on the
    command line: TLS keys are files named in the config)."""
    if not salt.utils.path.which("pgbackrest"):
        raise salt.exceptions.CommandExecutionError(
            "the pgbackrest command is not installed on %s (package pgbackrest: "
            "pgsql.pgbackrest or infra.backup_repo installs it)" % __opts__["id"])
    started = time.monotonic()
    res = __salt__["cmd.run_all"](_as_user(argv, user or _user()), python_shell=False,
                                  timeout=timeout, ignore_retcode=True, cwd="/",
                                  env=_user_env(user or _user()))
    out = ((res.get("stdout") or "") + "\n" + (res.get("stderr") or "")).strip()
    return {"result": res.get("retcode") == 0, "retcode": res.get("retcode"),
            "seconds": round(time.monotonic() - started, 1),
            "command": " ".join(argv), "output": out[-4000:]}


def _stanza(cluster):
    if not isinstance(cluster, str) or not pigsty_inventory.CLUSTER_RE.fullmatch(cluster):
        raise salt.exceptions.SaltInvocationError(
            "cluster: expected a cluster name (lowercase letters, digits, '-'), got %r" % (cluster,))
    return cluster


def info_raw(cluster):
    """``pgbackrest info --output=json`` of the stanza, as pgBackRest prints it."""
    res = _run(["pgbackrest", "--stanza=%s" % _stanza(cluster), "--output=json", "info"],
               timeout=120)
    if not res["result"]:
        raise salt.exceptions.CommandExecutionError("pgbackrest info failed: %s" % res["output"])
    return res["output"]


def info(cluster):
    """The stanza's backups, WAL range and recoverable window (parsed)."""
    try:
        return pigsty_backup.parse_info(info_raw(cluster), cluster)
    except pigsty_backup.BackupError as exc:
        raise salt.exceptions.CommandExecutionError(str(exc))


def _on_repo_host(what):
    if __opts__["id"] != repo_host():
        raise salt.exceptions.CommandExecutionError(
            "%s runs on the repository host %s (pgBackRest 2.45 refuses it elsewhere)" % (
                what, repo_host()))


def _done(res):
    """A result whose failure also fails the job (orchestration, salt-call's exit code)."""
    if not res.get("result"):
        __context__["retcode"] = 1
    return res


def stanza_create(cluster):
    """Create the stanza (idempotent: pgBackRest accepts an existing, matching stanza)."""
    _on_repo_host("stanza-create")
    if _stanza(cluster) not in [name for name, _c, _m in enabled_clusters()]:
        return {"result": True, "comment": "%s has pgbackrest_enabled: false (no stanza)" % cluster}
    return _done(_run(["pgbackrest", "--stanza=%s" % cluster, "stanza-create"], timeout=600))


def backup(cluster, type="full", hosts=None, from_standby=False):  # pylint: disable=redefined-builtin
    """Take a backup of the stanza on the repository host. ``hosts``: the members' minion
    ids in the order the runner chose (the source first when ``from_standby``)."""
    _on_repo_host("backup")
    try:
        argv = pigsty_backup.backup_argv(_stanza(cluster), type, list(hosts or []),
                                         bool(from_standby))
    except pigsty_backup.BackupError as exc:
        raise salt.exceptions.SaltInvocationError(str(exc))
    if not hosts or repo_host() in hosts:
        # the configuration's order: a member on this host is local there (no pgN-host)
        argv = [a for a in argv if not a.startswith("--pg")]
    return _done(_run(argv))


def _latest_label(repo_path, cluster):
    try:
        label = os.readlink(os.path.join(repo_path, "backup", cluster, "latest"))
    except OSError:
        return None
    return label if pigsty_backup.LABEL_RE.fullmatch("new backup label = " + label) else None


def take(cluster, type="full", hosts=None, from_standby=False):  # pylint: disable=redefined-builtin
    """What the runner's ``pigsty_backup.backup`` runs on the repository host, in one job:
    ``stanza-create`` when the stanza does not exist yet (an existing one is left alone:
    stanza-create would only check it, and the backup checks the same), the backup, and the
    new backup's label (the repository's ``latest`` link, else pgBackRest's output, else
    ``pgbackrest info``).
    ``step`` names the step that failed.

    CLI example::

        salt meta pigsty_backup.take pg-test full '[node-2, node-1, node-3]' from_standby=True
    """
    _on_repo_host("backup")
    try:        # bad input refused before anything (a stanza included) is created
        pigsty_backup.backup_argv(_stanza(cluster), type, list(hosts or []), bool(from_standby))
    except pigsty_backup.BackupError as exc:
        raise salt.exceptions.SaltInvocationError(str(exc))
    path = pigsty_backup.repo_settings(pigsty_inventory.global_vars(_inv()))["path"]
    created = None
    if not all(os.path.isfile(f) for f in pigsty_backup.stanza_files(path, _stanza(cluster))):
        created = stanza_create(cluster)
        if not created.get("result"):
            return dict(created, step="stanza-create")
    done = backup(cluster, type, hosts, from_standby)
    done["step"] = "backup"
    done["stanza_created"] = created is not None
    if done.get("result"):
        # pgBackRest points backup/<stanza>/latest at the backup it just took (this job holds
        # its stanza's lock); its console says so only at log level info
        done["label"] = _latest_label(path, cluster) or pigsty_backup.backup_label(done.get("output"))
        if not done["label"]:
            backups = info(cluster).get("backups") or []
            done["label"] = backups[-1].get("label") if backups else None
    return done


def check(cluster):
    """``pgbackrest check``: the primary switches WAL and the segment must reach the
    repository within archive-timeout."""
    _on_repo_host("check")
    return _done(_run(["pgbackrest", "--stanza=%s" % _stanza(cluster), "check"], timeout=600))


def _du(path):
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def repo_bytes():
    """Bytes the repository directory holds (the meta node's disk)."""
    _on_repo_host("repo_bytes")
    return _du(pigsty_backup.repo_settings(pigsty_inventory.global_vars(_inv()))["path"])


def publish_metrics(facts=None, directory=None):
    """Write the backup metrics of every cluster with backups (``pgbackrest info`` of all
    stanzas at once, each stanza's bytes on disk, and ``facts`` from the master: {cluster:
    {max_age, schedule_start, attempt}}) to the text file the backup exporter serves
    (pigsty_backup_metrics.TEXTFILE_DIR), atomically. What the runner
    ``pigsty_backup.metrics`` calls every minute.

    CLI example::

        salt meta pigsty_backup.publish_metrics
    """
    _on_repo_host("publish_metrics")
    facts = facts or {}
    path = pigsty_backup.repo_settings(pigsty_inventory.global_vars(_inv()))["path"]
    res = _run(["pgbackrest", "--output=json", "info"], timeout=120)
    doc, error = None, None
    if res["result"]:
        try:
            doc = json.loads(res["output"])
        except ValueError as exc:
            error = "pgbackrest info: not JSON (%s)" % exc
    else:
        error = "pgbackrest info failed: %s" % res["output"][-400:]
    statuses = pigsty_backup_metrics.stanza_statuses(doc)
    clusters = []
    for name, _conf, _minions in enabled_clusters():
        summary = None
        if doc is not None and name in statuses:
            try:
                summary = pigsty_backup.parse_info(doc, name)
            except pigsty_backup.BackupError as exc:
                error = str(exc)
        mine = dict(facts.get(name) or {})
        mine["repo_bytes"] = _du(os.path.join(path, "backup", name)) + \
            _du(os.path.join(path, "archive", name))
        mine["status_code"] = statuses.get(name)
        clusters.append((name, summary, mine))
    directory = directory or pigsty_backup_metrics.TEXTFILE_DIR
    target = os.path.join(directory, pigsty_backup_metrics.TEXTFILE_NAME)
    text = pigsty_backup_metrics.render(clusters, time.time())
    os.makedirs(directory, exist_ok=True)
    pigsty_backup_metrics.write_atomic(target, text)
    return {"result": error is None, "path": target, "clusters": len(clusters),
            "series": sum(1 for line in text.splitlines() if line and line[0] != "#"),
            "comment": error or "backup metrics of %d cluster(s) written to %s" % (
                len(clusters), target)}


# ------------------------------------------------------------------ restore (database node)
def _conf():
    conf = pigsty_inventory.instance_config(__pillar__, __opts__["id"])
    if conf is None:
        raise salt.exceptions.CommandExecutionError(
            "minion %s hosts no Postgres instance in the pillar inventory" % __opts__["id"])
    return conf


def _postmaster_alive(data):
    """True when postmaster.pid names a live process."""
    try:
        with open(os.path.join(data, "postmaster.pid")) as fh:
            pid = int(fh.readline().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def set_aside(stamp):
    """Move the data directory to PGDATA.before-restore-STAMP (nothing is deleted: a
    failed restore puts it back)."""
    data = _conf()["pg_data"]
    aside = "%s.before-restore-%s" % (data, stamp)
    if _postmaster_alive(data):
        return {"result": False, "comment": "PostgreSQL still runs on %s: not touched" % data}
    if os.path.exists(aside):
        return {"result": True, "comment": "already set aside at %s" % aside, "aside": aside}
    if not os.path.isdir(data):
        return {"result": True, "comment": "%s does not exist" % data, "aside": None}
    os.rename(data, aside)
    return {"result": True, "comment": "%s moved to %s" % (data, aside), "aside": aside}


def put_back(stamp):
    """Undo set_aside: the restored (or half-restored) directory goes, the old one returns."""
    data = _conf()["pg_data"]
    aside = "%s.before-restore-%s" % (data, stamp)
    if not os.path.isdir(aside):
        return {"result": False, "comment": "no %s to put back" % aside}
    if os.path.exists(data):
        shutil.rmtree(data)
    os.rename(aside, data)
    return {"result": True, "comment": "%s is back in place" % data}


def remove_data():
    """Remove the data directory of a replica that is re-cloned from the restored leader."""
    data = _conf()["pg_data"]
    if os.path.isdir(data):
        shutil.rmtree(data)
        return {"result": True, "comment": "%s removed" % data}
    return {"result": True, "comment": "%s did not exist" % data}


def restore(cluster, rtype, target=None, config=None):
    """pgbackrest restore into the (empty) data directory, promoting at the target
    (``config``: pgBackRest's configuration file, default pigsty_backup.CONFIG)."""
    if config is None:
        config = pigsty_backup.CONFIG
    conf = _conf()
    if conf["pg_cluster"] != _stanza(cluster):
        raise salt.exceptions.SaltInvocationError(
            "cluster: this node is a member of %s, not %s" % (conf["pg_cluster"], cluster))
    if os.path.isdir(conf["pg_data"]) and os.listdir(conf["pg_data"]):
        raise salt.exceptions.CommandExecutionError(
            "%s is not empty: set it aside first (pigsty_backup.set_aside)" % conf["pg_data"])
    if rtype == "time":
        target = datetime.datetime.fromisoformat(target)
    argv = pigsty_backup.restore_argv(cluster, rtype, target, config=config)
    return _done(_run(argv, user=conf["pg_dbsu"]))


_RECOVERY_SETTINGS = ("restore_command", "recovery_target", "recovery_target_time",
                      "recovery_target_lsn", "recovery_target_name", "recovery_target_xid",
                      "recovery_target_action", "recovery_target_inclusive",
                      "recovery_target_timeline")


def _psql(conf, socket_dir):
    psql = os.path.join(PG_BIN % conf["pg_version"], "psql")
    return [psql, "-X", "-At", "-h", socket_dir, "-p", str(conf["pg_port"]),
            "-U", conf["pg_dbsu"], "-d", "postgres", "-c"]


def archive_now(timeout=120, socket_dir="/var/run/postgresql"):
    """On the live primary, before an in-place restore stops it: a marker transaction (its
    commit record is later than any target in the past: recovery to a time stops only at a
    commit after the target, and fails with "recovery ended before configured recovery
    target was reached" when the WAL ends first), a WAL switch, and a wait until the archiver
    has pushed that segment. The repository then holds every change made until now."""
    conf = _conf()
    user, base = conf["pg_dbsu"], _psql(conf, socket_dir)

    def sql(statement):
        res = __salt__["cmd.run_all"](base + [statement], runas=user, python_shell=False,
                                      ignore_retcode=True, cwd="/")
        return res["retcode"], (res.get("stdout") or res.get("stderr") or "").strip()
    code, xid = sql("SELECT txid_current()")
    if code:
        return {"result": False, "comment": "marker transaction failed: %s" % xid[-300:]}
    code, segment = sql("SELECT pg_walfile_name(pg_switch_wal())")
    if code:
        return {"result": False, "comment": "WAL switch failed: %s" % segment[-300:]}
    deadline = time.monotonic() + float(timeout)
    last = ""
    while time.monotonic() < deadline:
        code, last = sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
        if not code and len(last) >= 24 and last[:24] >= segment:
            return {"result": True, "segment": segment,
                    "comment": "marker transaction %s; WAL up to %s archived" % (xid, segment)}
        time.sleep(0.5)
    return {"result": False, "segment": segment,
            "comment": "WAL segment %s was not archived within %ss (last archived: %s)" % (
                segment, timeout, last or "none")}


def _log_tail(path, lines=2):
    """The server log's last FATAL or PANIC lines (its last lines when it has none)."""
    try:
        with open(path, errors="replace") as fh:
            text = fh.readlines()[-200:]
    except OSError as exc:
        return "(log unreadable: %s)" % exc
    fatal = [line for line in text if " FATAL: " in line or " PANIC: " in line]
    return " | ".join(line.strip() for line in (fatal or text)[-lines:])


def recover(timeout=3600, socket_dir="/var/run/postgresql"):
    """Run the restored instance's recovery to its target and promotion (pg_ctl, Patroni
    stopped), take pgBackRest's recovery settings out of postgresql.auto.conf (replicas
    copy that file), and stop it cleanly: Patroni then starts it as the new leader."""
    conf = _conf()
    user = conf["pg_dbsu"]
    pg_ctl = os.path.join(PG_BIN % conf["pg_version"], "pg_ctl")
    log_file = os.path.join(os.path.dirname(conf["pg_data"]), "restore-recovery.log")
    start = __salt__["cmd.run_all"]([pg_ctl, "-D", conf["pg_data"], "-l", log_file, "-w", "-t",
                                     "600", "start"], runas=user, python_shell=False,
                                    ignore_retcode=True, cwd="/")
    if start["retcode"]:
        return {"result": False, "comment": "pg_ctl start failed: %s (log: %s)" % (
            (start.get("stdout") or "")[-500:], log_file)}
    base = _psql(conf, socket_dir)
    deadline = time.monotonic() + float(timeout)
    state = None
    while time.monotonic() < deadline:
        res = __salt__["cmd.run_all"](base + ["SELECT pg_is_in_recovery()"], runas=user,
                                      python_shell=False, ignore_retcode=True, cwd="/")
        state = (res.get("stdout") or "").strip()
        if state == "f":
            break
        if state != "t" and __salt__["cmd.run_all"](
                [pg_ctl, "-D", conf["pg_data"], "status"], runas=user, python_shell=False,
                ignore_retcode=True, cwd="/")["retcode"] == 3:
            # the server is gone (e.g. the WAL ended before the target): say so now, not
            # after the timeout, with PostgreSQL's own last words
            return {"result": False, "comment": "recovery stopped, PostgreSQL is not running: "
                                                "%s (log: %s)" % (_log_tail(log_file), log_file)}
        time.sleep(1)
    if state != "f":
        return {"result": False, "comment": "still in recovery after %ss (log: %s)" % (
            timeout, log_file)}
    for name in _RECOVERY_SETTINGS:
        __salt__["cmd.run_all"](base + ["ALTER SYSTEM RESET %s" % name], runas=user,
                                python_shell=False, ignore_retcode=True, cwd="/")
    lsn = __salt__["cmd.run_all"](base + ["SELECT timeline_id || ' ' || pg_current_wal_lsn() "
                                          "FROM pg_control_checkpoint()"], runas=user,
                                  python_shell=False, ignore_retcode=True, cwd="/")
    stop = __salt__["cmd.run_all"]([pg_ctl, "-D", conf["pg_data"], "-m", "fast", "-w", "-t",
                                    "600", "stop"], runas=user, python_shell=False,
                                   ignore_retcode=True, cwd="/")
    if stop["retcode"]:
        return {"result": False, "comment": "pg_ctl stop failed: %s" % (stop.get("stdout") or "")[-500:]}
    return {"result": True, "comment": "recovered and promoted (timeline, LSN: %s), stopped "
                                       "cleanly" % (lsn.get("stdout") or "?").strip()}


def dcs_remove(cluster):
    """Remove the cluster's keys from the DCS (patronictl remove, its confirmations on
    stdin), so that Patroni starts the restored data directory as a new leader."""
    conf = _conf()
    if conf["pg_cluster"] != _stanza(cluster):
        raise salt.exceptions.SaltInvocationError(
            "cluster: this node is a member of %s, not %s" % (conf["pg_cluster"], cluster))
    answers = "%s\nYes I am aware\n%s\n" % (cluster, conf["pg_instance"])
    res = __salt__["cmd.run_all"](["patronictl", "-c", "/etc/patroni/config.yml", "remove",
                                   cluster], runas=conf["pg_dbsu"], python_shell=False,
                                  stdin=answers, ignore_retcode=True, cwd="/", timeout=60)
    return {"result": res["retcode"] == 0,
            "comment": ((res.get("stdout") or "") + (res.get("stderr") or ""))[-1000:]}
