"""Logs of every node, collected on the meta node, read back merged in time order.

Every node's journal holds its services' logs: PostgreSQL (through Patroni's output),
Patroni, pgbouncer, HAProxy, vip-manager, etcd, the exporters, Salt. Each node runs
systemd-journal-upload (node.logs), which sends its journal over HTTPS (it verifies the meta
node's certificate against the Pigsty CA) to systemd-journal-remote on the first meta node
(infra.logs), which files each sender's entries under the sender's address:
``/var/log/journal/remote/remote-<node ip>.journal`` (and its rotated files).
Debian 12's journal-remote is built without client-certificate checking ("Option --trust
is not available"), so the address, not a certificate, says who sent what; ``pigsty.logs``
reads only the files of the inventory's addresses (docs/security.md).
``salt-run pigsty.logs cluster=pg-test since=10m`` reads them with journalctl.
Retention: journalctl's vacuum (size and age) from the master's schedule
(``pigsty.logs_vacuum``), as systemd 252's journal-remote has no size limit of its own.
"""
import datetime
import glob
import heapq
import json
import os
import re

REMOTE_DIR = "/var/log/journal/remote"
SINCE_RE = re.compile(r"^(\d+)(s|m|h|d)$")
SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SINCE_S = 31 * 86400
SIZE_RE = re.compile(r"^[1-9]\d*[KMGT]?$")
TIME_RE = re.compile(r"^[1-9]\d*(s|min|h|d|weeks|months|years|m|w)$")
UNIT_RE = re.compile(r"^[A-Za-z0-9:_.@\\-]{1,128}$")
MAX_LIMIT = 10000
MAX_MESSAGE = 4096


class LogsError(ValueError):
    """A request for logs that cannot be answered; the message names the argument."""


def problems(conf, path="pigsty:vars"):
    """Validation of the global log parameters (already merged with their defaults)."""
    out = []
    size = conf.get("log_retention_size")
    if not isinstance(size, str) or not SIZE_RE.fullmatch(size):
        out.append("%s:log_retention_size: expected a size such as 500M or 1G, got %r" % (path, size))
    age = conf.get("log_retention_time")
    if not isinstance(age, str) or not TIME_RE.fullmatch(age):
        out.append("%s:log_retention_time: expected a duration such as 12h, 15d or 4weeks, got %r" % (
            path, age))
    return out


def sink(meta_ips, gvars):
    """Where every node uploads: the first meta node (journal-upload takes one URL)."""
    if not gvars.get("log_collect") or not meta_ips:
        return None
    return {"ip": meta_ips[0], "port": int(gvars["log_port"]),
            "url": "https://%s:%d" % (meta_ips[0], int(gvars["log_port"]))}


def parse_since(value, now=None):
    """``since``: a relative age (30s, 10m, 2h, 1d; at most 31 days) or an ISO time
    (``2026-12-02T10:00:00``, UTC unless it says otherwise). Returns an aware UTC datetime."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    text = str(value).strip()
    m = SINCE_RE.fullmatch(text)
    if m:
        seconds = int(m.group(1)) * SINCE_UNITS[m.group(2)]
        if seconds > MAX_SINCE_S:
            raise LogsError("since: at most 31 days back, got %r" % value)
        return now - datetime.timedelta(seconds=seconds)
    try:
        at = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise LogsError("since: expected an age such as 30s, 10m, 2h or 1d, or an ISO time such as "
                        "2026-12-02T10:00:00, got %r" % value) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.timezone.utc)
    if at > now:
        raise LogsError("since: %r is in the future" % value)
    return at.astimezone(datetime.timezone.utc)


def parse_units(value):
    """``unit``: None, or one or more systemd unit names (comma-separated or a list);
    a name without a suffix means NAME.service."""
    if value in (None, ""):
        return []
    names = value if isinstance(value, (list, tuple)) else str(value).split(",")
    units = []
    for name in names:
        name = str(name).strip()
        if not UNIT_RE.fullmatch(name):
            raise LogsError("unit: expected systemd unit names such as patroni or pgbouncer.service, "
                            "got %r" % name)
        units.append(name if "." in name else name + ".service")
    return units


def parse_grep(value):
    """``grep``: None or a Python regular expression (case-sensitive) matched in the message."""
    if value in (None, ""):
        return None
    try:
        return re.compile(str(value))
    except re.error as exc:
        raise LogsError("grep: not a valid regular expression (%s): %r" % (exc, value)) from None


def parse_limit(value):
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise LogsError("limit: expected a number of lines from 1 to %d, got %r" % (MAX_LIMIT, value))
    return limit


def hosts_of(inv_clusters, inv_nodes, cluster=None, ins=None):
    """The minion ids whose logs to read: a cluster's members, one instance's node, or (no
    cluster) every node of the inventory. ``inv_clusters``: name -> {instances: {ins: node
    id}}; ``inv_nodes``: the inventory's node ids."""
    if cluster is None:
        if ins is not None:
            raise LogsError("ins: give the cluster too (cluster=NAME ins=%s)" % ins)
        return sorted(inv_nodes)
    if cluster not in inv_clusters:
        raise LogsError("cluster: %r is not in the inventory (clusters: %s)" % (
            cluster, ", ".join(sorted(inv_clusters)) or "none"))
    members = inv_clusters[cluster]
    if ins is None:
        return sorted(set(members.values()))
    if ins not in members:
        raise LogsError("ins: %r is not an instance of %s (instances: %s)" % (
            ins, cluster, ", ".join(sorted(members))))
    return [members[ins]]


def files_of(hosts, directory=REMOTE_DIR):
    """(journal files of the hosts, by address: remote-IP.journal and its rotated
    remote-IP@....journal; the hosts that have none yet)."""
    files, missing = [], []
    for host in hosts:
        found = sorted(glob.glob(os.path.join(glob.escape(directory), "remote-%s.journal" % glob.escape(host)))
                       + glob.glob(os.path.join(glob.escape(directory), "remote-%s@*.journal" % glob.escape(host))))
        files += found
        if not found:
            missing.append(host)
    return files, missing


def journalctl_argv(files, since, units=()):
    """journalctl over the given journal files, JSON lines, oldest first: journalctl
    merges the files by time."""
    argv = ["journalctl", "--no-pager", "--output=json", "--output-fields="
            "MESSAGE,_HOSTNAME,SYSLOG_IDENTIFIER,_PID,_SYSTEMD_UNIT,PRIORITY",
            "--since=%s" % since.strftime("%Y-%m-%d %H:%M:%S UTC")]
    argv += ["--file=%s" % f for f in files]
    argv += ["--unit=%s" % unit for unit in units]
    return argv


def _message(value):
    if isinstance(value, list):          # journald gives non-UTF-8 messages as byte arrays
        value = bytes(v for v in value if isinstance(v, int) and 0 <= v < 256).decode("utf-8", "replace")
    text = str(value if value is not None else "")
    return text[:MAX_MESSAGE].replace("\n", " | ")


def format_lines(json_lines, grep=None, limit=500):
    """The entries as "TIME HOST IDENT[PID]: MESSAGE", in time order (journalctl merges
    files by time, but within one file keeps arrival order), the last ``limit`` matching
    ``grep``. Returns (lines, matched count)."""
    newest, matched = [], 0        # a heap of the newest ``limit``: (time, arrival, line)
    for arrival, raw in enumerate(json_lines):
        raw = raw.strip()
        if not raw:
            continue
        try:
            entry = json.loads(raw)
            micro = int(entry.get("__REALTIME_TIMESTAMP"))
        except (ValueError, TypeError, AttributeError):
            continue
        message = _message(entry.get("MESSAGE"))
        if grep is not None and not grep.search(message):
            continue
        matched += 1
        at = datetime.datetime.fromtimestamp(micro / 1e6, datetime.timezone.utc)
        ident = entry.get("SYSLOG_IDENTIFIER") or entry.get("_SYSTEMD_UNIT") or "-"
        pid = entry.get("_PID")
        line = "%s %s %s%s: %s" % (at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                                   entry.get("_HOSTNAME") or "-", ident, "[%s]" % pid if pid else "", message)
        item = (micro, arrival, line)
        if len(newest) < limit:
            heapq.heappush(newest, item)
        elif item > newest[0]:
            heapq.heapreplace(newest, item)
    return [line for _micro, _arrival, line in sorted(newest)], matched


def vacuum_argv(size, age, directory=REMOTE_DIR):
    """journalctl's vacuum of the collected files: total size and age."""
    return ["journalctl", "--directory=%s" % directory, "--vacuum-size=%s" % size,
            "--vacuum-time=%s" % age]
