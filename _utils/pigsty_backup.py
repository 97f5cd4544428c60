"""Backup and point-in-time recovery with pgBackRest: the pure part.

Configuration files (the repository host on meta, each database node), command lines,
``pgbackrest info --output=json`` parsing, the operator's table, restore targets and their
refusals. No Salt imports: the states, the execution module, the runner and the unit tests
all call these functions. See docs/backup.md for the design.

Transport: pgBackRest's TLS server (``pgbackrest server``) on the repository host and on every
database node, each side authenticated by the node certificate of the PKI contract
(/etc/pki/pigsty/{ca.crt,node.crt,node.key}, CN = minion id) and authorised by CN and stanza
(``tls-server-auth``). pgBackRest 2.45 matches the host it connects to against the
certificate's DNS names only (not IP addresses), so hosts are named by minion id and every
node maps its peers' ids to their addresses in /etc/hosts (pgsql.pgbackrest,
infra.backup_repo).

pgBackRest runs ``backup``, ``stanza-create``, ``check`` and ``expire`` on the repository
host (2.45 refuses ``backup`` anywhere else: "backup command must be run on the repository
host"); ``archive-push``, ``archive-get`` and ``restore`` on the database node.
"""
import datetime
import json
import os
import re

import pigsty_defaults as D
import pigsty_pki

CONFIG = "/etc/pgbackrest/pgbackrest.conf"
_PATHS = pigsty_pki.paths()          # the PKI contract's files (salt/node/pki.sls)
PKI = {"ca": _PATHS["ca_crt"], "cert": _PATHS["node_crt"], "key": _PATHS["node_key"]}
BACKUP_TYPES = ("full", "diff", "incr")
# archive-push (archive_command) and archive-get (restore_command) run inside PostgreSQL's
# own paths, also when the repository cannot be reached (a node cut off from meta, meta
# down). pgBackRest waits about twice io-timeout for a connection (measured on a cut-off
# node: 4 s at 2, 10 s at 5, so about 120 s at the default 60). At the default, a primary
# cut off from meta took 136 s to shut down for its demotion (PostgreSQL's archiver makes
# its last attempts, three per segment, before the postmaster exits), and the demoted
# member then stayed "starting" for minutes, one archive-get at a time. 5 s keeps a failing
# call near 10 s and is far above a LAN's pause between two reads of a WAL file.
ARCHIVE_IO_TIMEOUT = 5
COMPRESS_TYPES = ("lz4", "zst", "gz", "bz2", "none")
RETENTION_TYPES = ("count", "time")
REPO_KEYS = ("path", "retention_full_type", "retention_full", "retention_diff",
             "compress_type", "compress_level", "bundle")
METHODS = ("meta",)
CRON_FIELD_RE = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
# Restore targets: a time, an LSN, a restore point's name, or "latest".
LSN_RE = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,63}$")
HEADER = "# Managed by Salt (Pigsty on Salt): pgBackRest %s, from pillar (pgbackrest_*).\n"


class BackupError(ValueError):
    """A refusal or a parse failure, with a message for the operator."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------ pillar checks
def repo_problems(gconf, path="pigsty:vars"):
    """Problems of the global backup parameters (pgbackrest_method, _repo, _port)."""
    problems = []
    method = gconf.get("pgbackrest_method")
    repos = gconf.get("pgbackrest_repo")
    if method not in METHODS:
        problems.append("%s:pgbackrest_method: expected one of %s (the repository on the meta "
                        "node over pgBackRest's TLS server), got %r" % (
                            path, ", ".join(METHODS), method))
    if not isinstance(repos, dict):
        problems.append("%s:pgbackrest_repo: expected a mapping of repository name -> {path, "
                        "retention_full, ...}, got %r" % (path, type(repos).__name__))
        return problems
    if method in METHODS and method not in repos:
        problems.append("%s:pgbackrest_repo: no entry %r (pgbackrest_method names the "
                        "repository to use)" % (path, method))
    for name in sorted(repos, key=str):
        problems += _repo_entry_problems(repos[name], "%s:pgbackrest_repo:%s" % (path, name))
    port = gconf.get("pgbackrest_port")
    if not _is_int(port) or not 1 <= port <= 65535:
        problems.append("%s:pgbackrest_port: expected a port number 1-65535, got %r" % (path, port))
    return problems


def _repo_entry_problems(repo, rpath):
    import pigsty_syntax  # pylint: disable=import-outside-toplevel  (it imports the inventory)
    if not isinstance(repo, dict):
        return ["%s: expected a mapping with path, retention_full, ..." % rpath]
    problems = []
    for key in sorted(set(repo) - set(REPO_KEYS), key=str):
        problems.append("%s:%s: unknown field (expected one of: %s)" % (
            rpath, key, ", ".join(REPO_KEYS)))
    rpo = dict(D.DEFAULTS["pgbackrest_repo"]["meta"], **repo)
    path = rpo["path"]
    if not (isinstance(path, str) and pigsty_syntax.PATH_RE.fullmatch(path)
            and "/../" not in path + "/" and path.rstrip("/") != ""):
        problems.append("%s:path: expected an absolute path of letters, digits, '_', '.', '+', "
                        "'-' (no '..'), got %r" % (rpath, path))
    if rpo["retention_full_type"] not in RETENTION_TYPES:
        problems.append("%s:retention_full_type: expected one of %s, got %r" % (
            rpath, ", ".join(RETENTION_TYPES), rpo["retention_full_type"]))
    for key, low, high in (("retention_full", 1, 9999999), ("retention_diff", 1, 9999999)):
        if not (_is_int(rpo[key]) and low <= rpo[key] <= high):
            problems.append("%s:%s: expected an integer %d-%d, got %r" % (
                rpath, key, low, high, rpo[key]))
    if rpo["compress_type"] not in COMPRESS_TYPES:
        problems.append("%s:compress_type: expected one of %s, got %r" % (
            rpath, ", ".join(COMPRESS_TYPES), rpo["compress_type"]))
    if not (_is_int(rpo["compress_level"]) and 0 <= rpo["compress_level"] <= 9):
        problems.append("%s:compress_level: expected an integer 0-9, got %r" % (
            rpath, rpo["compress_level"]))
    if not isinstance(rpo["bundle"], bool):
        problems.append("%s:bundle: expected true or false, got %r" % (rpath, rpo["bundle"]))
    return problems


def cron_problem(value):
    """None when ``value`` is a five-field cron expression of numbers, ranges, steps and
    lists (names are not accepted), else what was expected."""
    expected = "five cron fields such as '0 1 * * 0' (numbers, '*', ranges, steps, lists)"
    if not isinstance(value, str):
        return expected
    fields = value.split()
    if len(fields) != 5 or not all(CRON_FIELD_RE.fullmatch(f) for f in fields):
        return expected
    return None


def cluster_problems(conf, vpath):
    """Problems of a cluster's backup parameters (enabled, archive_timeout, schedule, log dir)."""
    import pigsty_syntax  # pylint: disable=import-outside-toplevel
    problems = []
    if not isinstance(conf.get("pgbackrest_enabled"), bool):
        problems.append("%s:pgbackrest_enabled: expected true or false, got %r" % (
            vpath, conf.get("pgbackrest_enabled")))
    timeout = conf.get("pg_archive_timeout")
    if not (_is_int(timeout) and 0 <= timeout <= 86400):
        problems.append("%s:pg_archive_timeout: expected seconds 0-86400 (0: off; a WAL segment "
                        "is archived at least this often), got %r" % (vpath, timeout))
    logdir = conf.get("pgbackrest_log_dir")
    if not (isinstance(logdir, str) and pigsty_syntax.PATH_RE.fullmatch(logdir)
            and "/../" not in logdir + "/"):
        problems.append("%s:pgbackrest_log_dir: expected an absolute path, got %r" % (vpath, logdir))
    schedule = conf.get("pgbackrest_schedule")
    if not isinstance(schedule, list):
        problems.append("%s:pgbackrest_schedule: expected a list of {type, cron}, got %r" % (
            vpath, type(schedule).__name__))
        return problems
    for i, entry in enumerate(schedule):
        spath = "%s:pgbackrest_schedule[%d]" % (vpath, i)
        if not isinstance(entry, dict):
            problems.append("%s: expected a mapping {type: full|diff|incr, cron: '0 1 * * 0'}"
                            % spath)
            continue
        for key in sorted(set(entry) - {"type", "cron"}, key=str):
            problems.append("%s:%s: unknown field (expected type and cron)" % (spath, key))
        if entry.get("type") not in BACKUP_TYPES:
            problems.append("%s:type: expected one of %s, got %r" % (
                spath, ", ".join(BACKUP_TYPES), entry.get("type")))
        if cron_problem(entry.get("cron")):
            problems.append("%s:cron: expected %s, got %r" % (
                spath, cron_problem(entry.get("cron")), entry.get("cron")))
    return problems


# ------------------------------------------------------------------ configuration files
def repo_settings(gconf):
    """The repository in use: pgbackrest_repo[pgbackrest_method] over the defaults."""
    return dict(D.DEFAULTS["pgbackrest_repo"]["meta"],
                **(gconf["pgbackrest_repo"].get(gconf["pgbackrest_method"]) or {}))


def _yn(value):
    return "y" if value else "n"


def _render(sections):
    """pgBackRest's INI: [(section, [(key, value), ...]), ...] -> text."""
    out = []
    for name, items in sections:
        out.append("[%s]" % name)
        out += ["%s=%s" % kv for kv in items]
        out.append("")
    return "\n".join(out)


def _tls_server(port, auth, pki=None, address="*"):
    pki = pki or PKI
    items = [("tls-server-address", address), ("tls-server-port", port),
             ("tls-server-ca-file", pki["ca"]), ("tls-server-cert-file", pki["cert"]),
             ("tls-server-key-file", pki["key"])]
    return items + [("tls-server-auth", "%s=%s" % (cn, stanzas)) for cn, stanzas in auth]


def db_config(conf, repo_host, pki=None, extra=None):
    """pgbackrest.conf of a database node (``conf``: its resolved instance config), whose
    repository is on ``repo_host`` (the meta node's minion id = its certificate's CN).
    ``extra`` (tests: two servers on one host): global items, socket, repo_port,
    tls_address."""
    pki = pki or PKI
    extra = extra or {}
    repo = repo_settings(conf)
    glob = [("repo1-host", repo_host), ("repo1-host-type", "tls"),
            ("repo1-host-port", extra.get("repo_port", conf["pgbackrest_port"])),
            ("repo1-host-ca-file", pki["ca"]), ("repo1-host-cert-file", pki["cert"]),
            ("repo1-host-key-file", pki["key"]),
            ("compress-type", repo["compress_type"]), ("compress-level", repo["compress_level"]),
            ("log-path", conf["pgbackrest_log_dir"]), ("log-level-file", "info"),
            ("log-level-console", "warn")]
    glob += list(extra.get("global", []))
    glob += _tls_server(conf["pgbackrest_port"], [(repo_host, conf["pg_cluster"])], pki,
                        extra.get("tls_address", "*"))
    stanza = [("pg1-path", conf["pg_data"]), ("pg1-port", conf["pg_port"]),
              ("pg1-socket-path", (extra or {}).get("socket", "/var/run/postgresql")),
              ("pg1-user", conf["pg_dbsu"])]
    sections = [("global", glob),
                ("global:archive-get", [("io-timeout", ARCHIVE_IO_TIMEOUT)]),
                ("global:archive-push", [("io-timeout", ARCHIVE_IO_TIMEOUT)]),
                (conf["pg_cluster"], stanza)]
    source = (conf.get("pg_clone") or {}).get("cluster")
    if source:      # a clone restores the source's backup into its own data directory
        sections.append((source, stanza))
    return HEADER % "on a database node" + _render(sections)


def repo_config(gconf, clusters, pki=None, extra=None, repo_host=None):
    """pgbackrest.conf of the repository host (minion id ``repo_host``). ``clusters``:
    [(name, conf, [member minion ids in pg_seq order])] of the clusters with
    pgbackrest_enabled. A member on the repository host itself (pg-meta on meta) is local:
    its WAL goes straight into the repository, its data directory is read directly."""
    pki = pki or PKI
    repo = repo_settings(gconf)
    glob = [("repo1-path", repo["path"]),
            ("repo1-retention-full-type", repo["retention_full_type"]),
            ("repo1-retention-full", repo["retention_full"]),
            ("repo1-retention-diff", repo["retention_diff"]),
            ("repo1-bundle", _yn(repo["bundle"])),
            ("compress-type", repo["compress_type"]), ("compress-level", repo["compress_level"]),
            ("start-fast", "y"), ("archive-check", "y"),
            ("log-path", gconf["pgbackrest_log_dir"]), ("log-level-file", "info"),
            ("log-level-console", "warn")]
    glob += list((extra or {}).get("global", []))
    stanzas = {}        # client CN -> the stanzas it may use: its cluster's, a clone's source's
    for name, conf, minions in clusters:
        source = (conf.get("pg_clone") or {}).get("cluster")
        for m in minions:
            if m != repo_host:
                stanzas.setdefault(m, []).extend([name] + ([source] if source else []))
    auth = [(m, ",".join(names)) for m, names in stanzas.items()]
    glob += _tls_server(gconf["pgbackrest_port"], auth, pki,
                        (extra or {}).get("tls_address", "*"))
    sections = [("global", glob)]
    for name, conf, minions in clusters:
        items = []
        for i, minion in enumerate(minions, 1):
            if minion != repo_host:
                items += [("pg%d-host" % i, minion), ("pg%d-host-type" % i, "tls"),
                          ("pg%d-host-port" % i, conf["pgbackrest_port"]),
                          ("pg%d-host-ca-file" % i, pki["ca"]),
                          ("pg%d-host-cert-file" % i, pki["cert"]),
                          ("pg%d-host-key-file" % i, pki["key"])]
            items += [("pg%d-path" % i, conf["pg_data"]), ("pg%d-port" % i, conf["pg_port"]),
                      ("pg%d-socket-path" % i, (extra or {}).get("socket", "/var/run/postgresql")),
                      ("pg%d-user" % i, conf["pg_dbsu"])]
            items += list((extra or {}).get("pg%d" % i, []))
        sections.append((name, items))
    return HEADER % "repository host" + _render(sections)


def archive_command(cluster):
    return "pgbackrest --stanza=%s archive-push %%p" % cluster


def restore_command(cluster):
    return 'pgbackrest --stanza=%s archive-get %%f "%%p"' % cluster


def patroni_parameters(conf):
    """Postgres parameters for Patroni's config (local: they follow every member, so the
    new primary archives after a failover).

    Replicas get no restore_command: they stream, and Patroni's replication slots keep on
    the primary the WAL they have not received (plus wal_keep_size). With one, a replica's
    recovery asks the repository on meta (a pgBackRest process and a TLS round trip each)
    for the next segment whenever streaming stops and, when it is promoted, for every
    timeline history file: a switchover's new primary took 0.4-0.5 s longer to accept
    writes (Patroni's log, 2026-12-02). restore_command is used where the archive is the
    source: point-in-time restores (_modules/pigsty_backup.py)."""
    if not conf.get("pgbackrest_enabled"):
        return {}
    return {"archive_mode": "on", "archive_command": archive_command(conf["pg_cluster"]),
            "archive_timeout": conf["pg_archive_timeout"]}


# ------------------------------------------------------------------ command lines
def backup_argv(cluster, btype, hosts, from_standby, config=CONFIG):
    """``pgbackrest backup`` on the repository host. ``hosts``: the members' minion ids, in
    the order pgBackRest should consider them (the source first when it is a standby: it
    takes the first standby it finds); ``from_standby``: copy files from a standby."""
    if btype not in BACKUP_TYPES:
        raise BackupError("type: expected one of %s, got %r" % (", ".join(BACKUP_TYPES), btype))
    argv = ["pgbackrest", "--config=%s" % config, "--stanza=%s" % cluster]
    # a member on the repository host itself has no host (None: the config's local pgN)
    argv += ["--pg%d-host=%s" % (i, h) for i, h in enumerate(hosts, 1) if h]
    argv += ["--backup-standby" if from_standby else "--no-backup-standby",
             "--type=%s" % btype, "backup"]
    return argv


def stanza_files(repo_path, cluster):
    """The two files pgBackRest's stanza-create writes into the repository (their .copy
    twins are written with them): the stanza exists when both do."""
    return (os.path.join(repo_path, "archive", cluster, "archive.info"),
            os.path.join(repo_path, "backup", cluster, "backup.info"))


LABEL_RE = re.compile(r"new backup label = (\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?)\b")


def backup_label(output):
    """The label pgBackRest gave the backup it just took (it prints "new backup label = ..."
    at the console's info level), or None when the output does not say."""
    found = LABEL_RE.findall(output or "")
    return found[-1] if found else None


def parse_target(target, now=None):
    """(pgBackRest restore type, target) of an operator's target: 'latest', an LSN
    ('0/3000060'), a time (ISO 8601; without a zone: UTC), or 'name:RESTORE_POINT'.
    BackupError naming what was expected otherwise."""
    if not isinstance(target, str) or not target.strip():
        raise BackupError("target: expected a time ('2026-12-01 10:00:00+00'), an LSN "
                          "('0/3000060'), name:RESTORE_POINT or latest, got %r" % (target,))
    target = target.strip()
    if target == "latest":
        return "default", None
    if LSN_RE.fullmatch(target):
        return "lsn", target.upper()
    if target.startswith("name:"):
        name = target[5:]
        if not NAME_RE.fullmatch(name):
            raise BackupError("target: a restore point name of letters, digits, '_', '.', "
                              "':', '-' (at most 63), got %r" % name)
        return "name", name
    try:
        when = datetime.datetime.fromisoformat(target.replace("Z", "+00:00"))
    except ValueError:
        raise BackupError("target: %r is neither a time (ISO 8601 such as '2026-12-01 "
                          "10:00:00+00:00'), an LSN ('0/3000060'), name:RESTORE_POINT nor "
                          "latest" % target) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return "time", when


def lsn_int(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def refuse_target(rtype, value, summary, now):
    """Why the target cannot be restored from the repository's backups (None: it can).
    ``summary``: parse_info's; ``now``: an aware datetime."""
    backups = summary["backups"]
    if not backups:
        return "the repository holds no backup of %s: nothing to restore from" % summary["stanza"]
    first = backups[0]
    if rtype == "time":
        earliest = _utc(first["stop"])
        if value < earliest:
            return ("target %s is before the earliest recoverable time %s (the end of the "
                    "first backup, %s)" % (_fmt(value), _fmt(earliest), first["label"]))
        if value > now:
            return "target %s is in the future (now %s)" % (_fmt(value), _fmt(now))
    if rtype == "lsn" and lsn_int(value) < lsn_int(first["lsn_stop"]):
        return ("target LSN %s is before the end of the first backup (%s at LSN %s)" % (
            value, first["label"], first["lsn_stop"]))
    return None


def restore_argv(cluster, rtype, value, config=CONFIG):
    """``pgbackrest restore`` on the database node into an empty data directory, promoting
    at the target."""
    argv = ["pgbackrest", "--config=%s" % config, "--stanza=%s" % cluster]
    if rtype == "default":
        argv += ["--type=default"]
    else:
        shown = _fmt(value, exact=True) if rtype == "time" else value
        argv += ["--type=%s" % rtype, "--target=%s" % shown, "--target-action=promote"]
    return argv + ["restore"]


# ------------------------------------------------------------------ info
def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def fmt_time(when):
    """A restore target time as PostgreSQL and pgBackRest read it (UTC, microseconds)."""
    return _fmt(when, exact=True)


def _fmt(when, exact=False):
    """UTC, as PostgreSQL reads it; ``exact``: with the microseconds (a restore target)."""
    when = when.astimezone(datetime.timezone.utc)
    if exact and when.microsecond:
        return when.strftime("%Y-%m-%d %H:%M:%S.%f+00")
    return when.strftime("%Y-%m-%d %H:%M:%S+00")


def parse_info(text_or_doc, stanza):
    """The stanza's backups and archive from ``pgbackrest info --output=json`` (text or the
    parsed list). BackupError when the output is not pgBackRest's or lacks the stanza."""
    doc = text_or_doc
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise BackupError("pgbackrest info: not JSON (%s)" % exc) from None
    if not isinstance(doc, list):
        raise BackupError("pgbackrest info: expected a list of stanzas")
    entry = next((s for s in doc if isinstance(s, dict) and s.get("name") == stanza), None)
    if entry is None:
        raise BackupError("pgbackrest info: no stanza %s in the repository" % stanza)
    status = entry.get("status") or {}
    backups = []
    for b in entry.get("backup") or []:
        try:
            backups.append({
                "label": b["label"], "type": b["type"],
                "start": int(b["timestamp"]["start"]), "stop": int(b["timestamp"]["stop"]),
                "size": int(b["info"]["size"]),
                "repo_size": int((b["info"].get("repository") or {}).get("size") or 0),
                "wal_start": (b.get("archive") or {}).get("start"),
                "wal_stop": (b.get("archive") or {}).get("stop"),
                "lsn_start": (b.get("lsn") or {}).get("start"),
                "lsn_stop": (b.get("lsn") or {}).get("stop"),
                "prior": b.get("prior"), "error": bool(b.get("error")),
            })
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError("pgbackrest info: backup entry without %s" % exc) from None
    backups.sort(key=lambda b: b["stop"])
    archive = [a for a in entry.get("archive") or [] if isinstance(a, dict)]
    wal_min = min((a["min"] for a in archive if a.get("min")), default=None)
    wal_max = max((a["max"] for a in archive if a.get("max")), default=None)
    return {
        "stanza": stanza,
        "status_code": status.get("code"),
        "status": status.get("message"),
        "backup_running": bool(((status.get("lock") or {}).get("backup") or {}).get("held")),
        "backups": backups,
        "wal_min": wal_min, "wal_max": wal_max,
        "earliest": backups[0]["stop"] if backups else None,
        "repo_size": sum(b["repo_size"] for b in backups),
    }


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return str(n)


def table(summary, latest=None):
    """The operator's view of a stanza: one line per backup, the WAL range and the
    recoverable window. ``latest``: the newest recoverable time (epoch) if known (the
    primary's last archived segment time), else the newest backup's end."""
    lines = ["stanza %s: %s" % (summary["stanza"], summary["status"] or "?")]
    head = ("label", "type", "started (UTC)", "duration", "size", "in repo", "WAL start",
            "WAL stop")
    rows = [head]
    for b in summary["backups"]:
        rows.append((b["label"], b["type"], _fmt(_utc(b["start"])),
                     "%ds" % (b["stop"] - b["start"]), _size(b["size"]), _size(b["repo_size"]),
                     b["wal_start"] or "-", b["wal_stop"] or "-"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    if not summary["backups"]:
        lines.append("(no backup yet)")
    lines.append("archived WAL: %s .. %s" % (summary["wal_min"] or "-", summary["wal_max"] or "-"))
    lines.append("repository size: %s" % _size(summary["repo_size"]))
    if summary["earliest"] is not None:
        lines.append("earliest recoverable time: %s" % _fmt(_utc(summary["earliest"])))
        last = latest if latest is not None else summary["backups"][-1]["stop"]
        lines.append("latest recoverable time:   %s%s" % (
            _fmt(_utc(last)), "" if latest is not None else " (end of the newest backup; "
            "WAL archived since extends it)"))
    return "\n".join(lines)


# ------------------------------------------------------------------ the source of a backup
def choose_source(members, roles, streaming):
    """Where a backup copies its files from: a replica that streams from the live primary
    (it spares the primary the reads), else the primary; never a member that is not
    streaming. ``members``: the cluster's (pg_instance, minion, pg_role); ``roles``:
    instance -> live role; ``streaming``: instances with a walsender in state streaming on
    the primary. Returns (hosts in pgBackRest's order, from_standby, source instance):
    pgBackRest takes the first standby of its pgN list, so the source comes first.
    BackupError when there is no single live primary."""
    primaries = [m for m in members if roles.get(m["pg_instance"]) == "primary"]
    standby = [i for i, r in sorted(roles.items()) if r == "standby_leader"]
    if standby and not primaries:
        raise BackupError("%s is a standby leader: a standby cluster has no backups of its own "
                          "until promoted (salt-run pigsty_ha.promote)" % standby[0])
    if len(primaries) != 1:
        raise BackupError("no single live primary (live roles: %s): a backup needs one" % (
            ", ".join("%s %s" % (i, r) for i, r in sorted(roles.items())) or "none"))
    primary = primaries[0]
    replicas = [m for m in members if roles.get(m["pg_instance"]) == "replica"
                and m["pg_instance"] in streaming]
    replicas.sort(key=lambda m: (m.get("pg_role") != "offline", m["pg_instance"]))
    rest = [m for m in members if m is not primary and m not in replicas[:1]]
    if replicas:
        source = replicas[0]
        order = [source, primary] + rest
        return [m["minion"] for m in order], True, source["pg_instance"]
    return [m["minion"] for m in [primary] + rest], False, primary["pg_instance"]


def destroys(cluster, members, rtype, value):
    """What an in-place restore destroys, for the refusal without confirmation."""
    what = "the latest archived WAL" if rtype == "default" else (
        _fmt(value) if rtype == "time" else "%s %s" % (rtype, value))
    return ("restoring %s in place to %s DESTROYS every change made after it on every member "
            "(%s): the primary's data directory is set aside (PGDATA.before-restore-STAMP, "
            "removed by hand), the replicas' are deleted and cloned again; the cluster is "
            "down until the restore ends. Repeat with confirm=%s to go ahead" % (
                cluster, what, ", ".join(m["pg_instance"] for m in members), cluster))


# ------------------------------------------------------------------ the schedule
TYPE_RANK = {"incr": 0, "diff": 1, "full": 2}


def _cron_field(field, value, low, high):
    for part in field.split(","):
        rng, _slash, step = part.partition("/")
        step = int(step) if step else 1
        if rng == "*":
            start, end = low, high
        elif "-" in rng:
            start, end = (int(x) for x in rng.split("-"))
        else:
            start = int(rng)
            end = high if _slash else start
        if start <= value <= end and (value - start) % step == 0:
            return True
    return False


def cron_matches(expr, when):
    """True when the five-field cron ``expr`` (validated by cron_problem) fires at the
    minute of ``when``. Day of week 0-7 (0 and 7: Sunday); when both day fields are
    restricted, either matches (cron's rule)."""
    minute, hour, dom, month, dow = expr.split()
    cron_dow = (when.weekday() + 1) % 7
    dow_ok = _cron_field(dow, cron_dow, 0, 7) or (cron_dow == 0 and _cron_field(dow, 7, 0, 7))
    dom_ok = _cron_field(dom, when.day, 1, 31)
    if dom != "*" and dow != "*":
        day_ok = dom_ok or dow_ok
    else:
        day_ok = dom_ok and dow_ok
    return (_cron_field(minute, when.minute, 0, 59) and _cron_field(hour, when.hour, 0, 23)
            and _cron_field(month, when.month, 1, 12) and day_ok)


def last_fire(expr, now, lookback_minutes=8 * 24 * 60):
    """The latest minute at or before ``now`` at which ``expr`` fires (within the
    lookback), or None."""
    t = now.replace(second=0, microsecond=0)
    for _ in range(lookback_minutes + 1):
        if cron_matches(expr, t):
            return t
        t -= datetime.timedelta(minutes=1)
    return None


def due(schedule, last_runs, now):
    """The backup type due now, or None: the schedule's entries whose latest firing is
    later than the last run recorded for that entry (``last_runs``: cron -> epoch). A
    firing missed while the master was down or a backup ran is caught up once; when
    several are due, the largest type runs (full over diff over incr). Returns (type,
    {cron: epoch of its firing}) to record once run."""
    fired = {}
    best = None
    for entry in schedule or []:
        seen = float(last_runs.get(entry["cron"], 0))
        # look back to the last recorded firing only (a minute, each call, normally)
        span = int((now.timestamp() - seen) // 60) + 1 if seen else 8 * 24 * 60
        when = last_fire(entry["cron"], now, min(span, 8 * 24 * 60))
        if when is None or when.timestamp() <= seen:
            continue
        fired[entry["cron"]] = when.timestamp()
        if best is None or TYPE_RANK[entry["type"]] > TYPE_RANK[best]:
            best = entry["type"]
    return best, fired
