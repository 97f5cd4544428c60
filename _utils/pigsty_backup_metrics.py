"""Backup facts as Prometheus metrics: the pure part.

The repository is on the meta node, so the facts come from there: ``pgbackrest info
--output=json`` (every stanza at once), the bytes each stanza's directories hold, and what
the master knows (the last backup attempt and its result, when each cluster's schedule
started, the schedule itself). The runner ``pigsty_backup.metrics`` (Salt's scheduler on
the master, every minute, and after each backup) gathers the master's part and asks the
repository host's ``pigsty_backup.publish_metrics`` to add its own and write the text file
that a node_exporter on the repository host's loopback serves with its textfile collector
only (``exporter_argv``; unit ``pigsty-backup-exporter``, state infra.backup_repo). The
scrape job ``backup`` keeps the ``cls`` label of each series (honor_labels).

Series (labels: cls, and type where said; times are Unix seconds):

    pigsty_backup_stanza_ok{cls}              1: pgBackRest reads the stanza (status ok or "no valid backups")
    pigsty_backup_status_code{cls}            pgBackRest's status code of the stanza (-1: not in the repository)
    pigsty_backup_running{cls}                1 while a backup of the cluster holds pgBackRest's lock
    pigsty_backup_repo_backups{cls,type}      backups in the repository, per type (full, diff, incr)
    pigsty_backup_newest_time_seconds{cls}    end of the newest backup (any type)
    pigsty_backup_oldest_time_seconds{cls}    end of the oldest backup: the earliest recoverable time
    pigsty_backup_last_time_seconds{cls,type} end of the newest backup of each type
    pigsty_backup_last_duration_seconds{cls,type}, pigsty_backup_last_size_bytes{cls,type}
    pigsty_backup_last_repo_size_bytes{cls,type}   its duration, database size, size in the repository
    pigsty_backup_repo_bytes{cls}             bytes of the stanza's backups and archived WAL on disk
    pigsty_backup_max_age_seconds{cls}        the newest backup may be this old (from pgbackrest_schedule)
    pigsty_backup_schedule_start_time_seconds{cls}  when the master's scheduler started the schedule
    pigsty_backup_last_attempt_time_seconds{cls,type}, pigsty_backup_last_attempt_success{cls,type}
                                              the last backup the runner took (scheduled or by hand)
    pigsty_backup_collect_time_seconds        when the file was written

No password or key is in any of them (pgBackRest's info has none; the labels are cluster
names and backup types). No Salt imports.
"""
import datetime
import math
import os

import pigsty_backup

TEXTFILE_DIR = "/var/lib/pigsty/backup-metrics"
TEXTFILE_NAME = "pigsty_backup.prom"
# The time allowed on top of the longest gap between two scheduled firings: a backup ends
# some time after its firing. At least an hour; more when backups take long (twice the
# longest backup in the repository).
GRACE_MIN_SECONDS = 3600
GRACE_DURATION_FACTOR = 2
SCHEDULE_HORIZON_DAYS = 62            # gaps are measured over this many days of firings

HELP = {
    "pigsty_backup_stanza_ok": ("gauge", "1 when pgBackRest reads the cluster's stanza in the "
                                "repository (status ok, or no valid backup yet)"),
    "pigsty_backup_status_code": ("gauge", "pgBackRest's status code of the stanza (0 ok, 2 no "
                                  "valid backups, ...; -1 not in the repository)"),
    "pigsty_backup_running": ("gauge", "1 while a backup of the cluster holds pgBackRest's lock"),
    "pigsty_backup_repo_backups": ("gauge", "Backups of the cluster in the repository, per type"),
    "pigsty_backup_newest_time_seconds": ("gauge", "End of the newest backup (any type)"),
    "pigsty_backup_oldest_time_seconds": ("gauge", "End of the oldest backup: the earliest "
                                          "recoverable time"),
    "pigsty_backup_last_time_seconds": ("gauge", "End of the newest backup of this type"),
    "pigsty_backup_last_duration_seconds": ("gauge", "Duration of the newest backup of this type"),
    "pigsty_backup_last_size_bytes": ("gauge", "Database size of the newest backup of this type"),
    "pigsty_backup_last_repo_size_bytes": ("gauge", "Size in the repository of the newest "
                                           "backup of this type"),
    "pigsty_backup_repo_bytes": ("gauge", "Bytes of the stanza's backups and archived WAL on "
                                 "the repository's disk"),
    "pigsty_backup_max_age_seconds": ("gauge", "Age the newest backup may reach before it is "
                                      "overdue (longest gap of pgbackrest_schedule + grace)"),
    "pigsty_backup_schedule_start_time_seconds": ("gauge", "When the master's scheduler started "
                                                  "the cluster's backup schedule"),
    "pigsty_backup_last_attempt_time_seconds": ("gauge", "End of the last backup attempt of "
                                                "the runner (scheduled or by hand)"),
    "pigsty_backup_last_attempt_success": ("gauge", "1 when the last backup attempt succeeded, "
                                           "0 when it failed"),
    "pigsty_backup_collect_time_seconds": ("gauge", "When these backup metrics were written"),
}


def exporter_argv(port, directory=TEXTFILE_DIR, binary="/usr/bin/prometheus-node-exporter"):
    """The backup metrics' exporter: node_exporter on loopback with its textfile collector
    only (no node metrics: meta's own node_exporter, if any, is the pgsql role's)."""
    return [binary, "--web.listen-address=127.0.0.1:%d" % port, "--collector.disable-defaults",
            "--collector.textfile", "--collector.textfile.directory=%s" % directory]


# ------------------------------------------------------------------ the allowed age
def _firings(cron, start, days):
    """Every firing of ``cron`` (validated) in ``days`` days from ``start`` (midnight UTC)."""
    minute, hour, _dom, _month, _dow = cron.split()
    times = [(h, m) for h in range(24) if pigsty_backup._cron_field(hour, h, 0, 23)
             for m in range(60) if pigsty_backup._cron_field(minute, m, 0, 59)]
    out = []
    for d in range(days):
        day = start + datetime.timedelta(days=d)
        if not pigsty_backup.cron_matches("0 0 %s" % " ".join(cron.split()[2:]), day):
            continue
        out += [day.replace(hour=h, minute=m) for h, m in times]
    return out


def schedule_gap_seconds(schedule, start=None):
    """The longest time between two consecutive firings of any entry of ``schedule``
    (``[{type, cron}]``), over SCHEDULE_HORIZON_DAYS; None for an empty schedule."""
    if not schedule:
        return None
    start = start or datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    fires = sorted({t for e in schedule
                    for t in _firings(e["cron"], start, SCHEDULE_HORIZON_DAYS)})
    if len(fires) < 2:
        return SCHEDULE_HORIZON_DAYS * 86400
    return int(max((b - a).total_seconds() for a, b in zip(fires, fires[1:])))


def longest_backup(summary):
    """Seconds the longest backup in the repository took (0: none)."""
    return max((b["stop"] - b["start"] for b in (summary or {}).get("backups") or []),
               default=0)


def max_age_seconds(schedule, longest_backup_seconds=0):
    """How old the newest backup may be before it is overdue: the schedule's longest gap
    plus max(1 h, twice the longest backup). None: no schedule, no expectation."""
    gap = schedule_gap_seconds(schedule)
    if gap is None:
        return None
    grace = max(GRACE_MIN_SECONDS, GRACE_DURATION_FACTOR * int(longest_backup_seconds or 0))
    return gap + grace


# ------------------------------------------------------------------ rendering
def _label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise ValueError("metric value %r" % value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(int(value))


def cluster_series(name, summary, facts):
    """[(metric, labels, value)] of one cluster. ``summary``: pigsty_backup.parse_info's
    (None: the stanza is not in the repository or info failed); ``facts``: what the master
    and the disk know: schedule (pgbackrest_schedule), schedule_start, attempt {type,
    result, time}, repo_bytes, status_code (pgBackRest's, when the stanza is listed)."""
    cls = {"cls": name}
    out = []
    code = facts.get("status_code")
    if summary is None:
        out.append(("pigsty_backup_stanza_ok", cls, 0))
        out.append(("pigsty_backup_status_code", cls, -1 if code is None else code))
        backups = []
    else:
        code = summary.get("status_code")
        out.append(("pigsty_backup_stanza_ok", cls, int(code in (0, 2))))
        out.append(("pigsty_backup_status_code", cls, -1 if code is None else code))
        out.append(("pigsty_backup_running", cls, int(bool(summary.get("backup_running")))))
        backups = [b for b in summary["backups"] if not b.get("error")]
    if summary is not None:
        for btype in pigsty_backup.BACKUP_TYPES:
            out.append(("pigsty_backup_repo_backups", dict(cls, type=btype),
                        sum(1 for b in backups if b["type"] == btype)))
    if backups:
        out.append(("pigsty_backup_newest_time_seconds", cls, max(b["stop"] for b in backups)))
        out.append(("pigsty_backup_oldest_time_seconds", cls, min(b["stop"] for b in backups)))
        for btype in pigsty_backup.BACKUP_TYPES:
            typed = [b for b in backups if b["type"] == btype]
            if not typed:
                continue
            last = max(typed, key=lambda b: b["stop"])
            labels = dict(cls, type=btype)
            out += [("pigsty_backup_last_time_seconds", labels, last["stop"]),
                    ("pigsty_backup_last_duration_seconds", labels, last["stop"] - last["start"]),
                    ("pigsty_backup_last_size_bytes", labels, last["size"]),
                    ("pigsty_backup_last_repo_size_bytes", labels, last["repo_size"])]
    if facts.get("repo_bytes") is not None:
        out.append(("pigsty_backup_repo_bytes", cls, facts["repo_bytes"]))
    max_age = max_age_seconds(facts.get("schedule"), longest_backup(summary))
    if max_age is not None:
        out.append(("pigsty_backup_max_age_seconds", cls, max_age))
    if facts.get("schedule_start") is not None:
        out.append(("pigsty_backup_schedule_start_time_seconds", cls, facts["schedule_start"]))
    attempt = facts.get("attempt") or {}
    if attempt.get("time") is not None and attempt.get("type") in pigsty_backup.BACKUP_TYPES:
        labels = dict(cls, type=attempt["type"])
        out += [("pigsty_backup_last_attempt_time_seconds", labels, attempt["time"]),
                ("pigsty_backup_last_attempt_success", labels, int(attempt.get("result") is True))]
    return out


def render(clusters, now):
    """The text file: ``clusters`` [(name, summary or None, facts)], ``now`` Unix seconds.
    Each metric's HELP and TYPE once, its series sorted: the same input, the same bytes."""
    series = {}
    for name, summary, facts in sorted(clusters, key=lambda c: c[0]):
        for metric, labels, value in cluster_series(name, summary, facts):
            series.setdefault(metric, []).append((labels, value))
    series["pigsty_backup_collect_time_seconds"] = [({}, round(float(now), 3))]
    lines = []
    for metric in sorted(series):
        kind, text = HELP[metric]
        lines += ["# HELP %s %s" % (metric, text), "# TYPE %s %s" % (metric, kind)]
        for labels, value in sorted(series[metric], key=lambda s: sorted(s[0].items())):
            lab = ",".join('%s="%s"' % (k, _label(v)) for k, v in sorted(labels.items()))
            lines.append("%s%s %s" % (metric, "{%s}" % lab if lab else "", _num(value)))
    return "\n".join(lines) + "\n"


def stanza_statuses(doc):
    """{stanza: pgBackRest status code} of ``pgbackrest info --output=json`` (all stanzas)."""
    return {s["name"]: (s.get("status") or {}).get("code") for s in doc or []
            if isinstance(s, dict) and s.get("name")}


def write_atomic(path, text, mode=0o644):
    """Write ``text`` to ``path`` through a temporary file in the same directory and a
    rename: the exporter never reads half a file (node_exporter's textfile advice)."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
