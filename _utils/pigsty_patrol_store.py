"""The patrol reports on the meta node: DIR/<cluster>/<UTC date>.json (the day's newest
report) and DIR/<cluster>/latest.json (the newest of all), each written atomically (mode
0640, directories 0750); which are older than the retention; when the next one is due."""
import datetime
import json
import os
import re
import shutil

import pigsty_defaults as D
import pigsty_inventory
import pigsty_patrol

DATE_FILE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.json$")
LATEST = "latest.json"


def base_dir(opts):
    """The reports' directory: the master option ``pigsty_patrol_dir`` (tests), else
    pigsty_defaults.PATROL's."""
    return (opts or {}).get("pigsty_patrol_dir") or D.PATROL["dir"]


def cluster_dir(base, cluster):
    if not isinstance(cluster, str) or not pigsty_inventory.CLUSTER_RE.fullmatch(cluster):
        raise pigsty_patrol.PatrolError("cluster: expected a cluster name (lowercase letters, "
                                        "digits, '-'), got %r" % (cluster,))
    return os.path.join(base, cluster)


def _write(path, doc):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def write(base, report):
    """Keep ``report``: the day's file, and latest.json unless that one is newer. Returns
    the day's file's path."""
    directory = cluster_dir(base, report["cluster"])
    os.makedirs(directory, mode=0o750, exist_ok=True)
    path = os.path.join(directory, "%s.json" % report["date"])
    _write(path, report)
    latest = read(base, report["cluster"])
    if latest is None or float(latest.get("time") or 0) <= float(report["time"]):
        _write(os.path.join(directory, LATEST), report)
    return path


def read(base, cluster, date=None):
    """The newest report of ``cluster`` (or the one of ``date``, YYYY-MM-DD), or None."""
    name = LATEST if date is None else "%s.json" % date
    path = os.path.join(cluster_dir(base, cluster), name)
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("cluster") == cluster else None


def dates(base, cluster):
    """The dates (YYYY-MM-DD) with a report, oldest first."""
    try:
        names = os.listdir(cluster_dir(base, cluster))
    except OSError:
        return []
    return sorted(m.group(1) for m in map(DATE_FILE_RE.match, names) if m)


def expired(names, now, retention_days):
    """Of the day files ``names``, those older than ``retention_days`` before ``now``
    (epoch): a report of date D goes once D is more than retention_days days ago."""
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
        raise pigsty_patrol.PatrolError("retention_days: expected a whole number of days >= 1, "
                                        "got %r" % (retention_days,))
    cutoff = (datetime.datetime.fromtimestamp(now, datetime.timezone.utc).date()
              - datetime.timedelta(days=retention_days)).isoformat()
    out = []
    for name in names:
        m = DATE_FILE_RE.match(name)
        if m and m.group(1) < cutoff:
            out.append(name)
    return sorted(out)


def prune(base, now, retention_days, clusters, test=False):
    """Remove the reports older than the retention, and the directory of a cluster no longer
    in the inventory (``clusters``) once its newest report is past the retention. Returns
    the paths removed (with ``test``: that would be; nothing is removed)."""
    expired([], now, retention_days)           # a bad retention is refused first
    removed = []
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return removed
    for cluster in entries:
        directory = os.path.join(base, cluster)
        if not os.path.isdir(directory) or os.path.islink(directory):
            continue
        names = os.listdir(directory)
        old = expired(names, now, retention_days)
        days = [n for n in names if DATE_FILE_RE.match(n)]
        if cluster not in clusters and len(old) == len(days):
            if not test:
                shutil.rmtree(directory)
            removed.append(directory)
            continue
        for name in old:
            if not test:
                os.unlink(os.path.join(directory, name))
            removed.append(os.path.join(directory, name))
    return removed


def due(latest, now, hour, max_age=None):
    """True when a cluster whose newest report is ``latest`` (None: none yet) needs a new
    one: with ``max_age`` (seconds), once the newest is that old; otherwise once a day,
    from ``hour`` (UTC) on, when the newest is from an earlier UTC date."""
    if latest is None:
        return True
    if max_age is not None:
        return now - float(latest.get("time") or 0) >= float(max_age)
    today = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    return latest.get("date", "") < today.strftime("%Y-%m-%d") and today.hour >= int(hour)
