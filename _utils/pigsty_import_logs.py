"""Pigsty's log parameters, for the inventory import: Loki and Promtail (v1-v3), VictoriaLogs
and Vector (v4).

Pigsty runs a log store on the meta (infra) nodes (Loki, later VictoriaLogs) and an agent on
every node (Promtail, later Vector) that tails log files and pushes them there. Ours (Debian
packages neither): ``systemd-journal-upload`` on every node sends the node's journal over
HTTPS to ``systemd-journal-remote`` on the first meta node (``pigsty_logs``), with one switch
for both (``log_collect``), kept within ``log_retention_time`` and ``log_retention_size``
(journalctl's vacuum). So:

- the switches (``loki_enabled``, ``promtail_enabled``, ``vlogs_enabled``,
  ``vector_enabled``) -> ``log_collect``: on only if every switch in force is on;
- ``loki_retention`` (a Prometheus duration) and ``vlogs_options``' ``-retentionPeriod`` and
  ``-retention.maxDiskSpaceUsageBytes`` -> ``log_retention_time`` / ``log_retention_size``,
  in the forms our validation accepts, or a row with the reason;
- ``loki_endpoint`` / ``vector_log_endpoint``: the first meta node, or not supported;
- paths, ports and options of the components we do not run: not supported, with the reason
  (``pigsty_import_catalog``).

Which value is in force follows Pigsty (Ansible): the store's parameters (``SERVER_SIDE``)
from the meta group's own vars when set there, else ``all.vars``; the agent's from
``all.vars``. A value set elsewhere (a cluster, a host) is compared with ours: ours is global.

``LogParams`` is a mixin of ``pigsty_import.Importer`` (its ``_p_<param>`` handlers); the
conversions are pure functions. Pure Python, no Salt imports.
"""
import json
import re
from urllib.parse import urlsplit

import pigsty_defaults as D
import pigsty_import_rules as R
import pigsty_inventory
import pigsty_logs

# the importer's statuses (pigsty_import.MAPPED...; the unit tests check they agree)
MAPPED, CHANGED, UNSUPPORTED = "mapped", "changed", "unsupported"
PREFIXES = ("loki_", "promtail_", "vlogs_", "vector_")
SWITCHES = {  # switch -> what it becomes in ours
    "loki_enabled": "Loki -> systemd-journal-remote on the first meta node (%(meta)s), which "
                    "keeps every node's journal under /var/log/journal/remote (read it with "
                    "salt-run pigsty.logs)",
    "vlogs_enabled": "VictoriaLogs -> systemd-journal-remote on the first meta node (%(meta)s), "
                     "which keeps every node's journal under /var/log/journal/remote (read it "
                     "with salt-run pigsty.logs)",
    "promtail_enabled": "Promtail -> systemd-journal-upload on every node, which sends the "
                        "node's journal (PostgreSQL through Patroni, Patroni, Pgbouncer, HAProxy, "
                        "etcd...) over HTTPS to the first meta node (%(meta)s); it reads no log "
                        "files",
    "vector_enabled": "Vector -> systemd-journal-upload on every node, which sends the node's "
                      "journal (PostgreSQL through Patroni, Patroni, Pgbouncer, HAProxy, etcd...) "
                      "over HTTPS to the first meta node (%(meta)s); it reads no log files",
}
# the log store's parameters: Pigsty applies them on the meta nodes, so a meta group's own
# value wins over all.vars (Ansible's group precedence)
SERVER_SIDE = frozenset(("loki_enabled", "loki_retention", "vlogs_enabled", "vlogs_options"))
DURATION_HINT = "expected a duration such as 15d, 336h or 2w"
VM_BYTES = {None: 1, "KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12,
            "KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30, "TiB": 2 ** 40}
VM_BYTES_RE = re.compile(r"^(\d+)(KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$")
VM_OPTION_RE = re.compile(r"^--?([A-Za-z][\w.]*)(?:=(.*))?$")


def is_log_param(key):
    return isinstance(key, str) and key.startswith(PREFIXES)


def _show(value):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 70 else text[:67] + "..."


# ------------------------------------------------------------------ conversions
def _as_time(seconds, original):
    """(our duration, why it differs or None): the original when our validation (and
    journalctl) reads it the same, else whole days, hours, minutes or seconds."""
    if pigsty_logs.TIME_RE.fullmatch(original):
        return original, None
    why = "a year is 365 days in Loki" if "y" in original else \
        "log_retention_time takes one unit"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            return "%d%s" % (seconds // size, unit), why
    raise AssertionError("unreachable")


def retention_time(value):
    """Loki's ``loki_retention`` (a Prometheus duration: 15d, 336h, 2w, 1y, 1d12h) as our
    ``log_retention_time`` (journalctl's --vacuum-time): (ours, note or None). ValueError
    with the reason when there is no equivalent."""
    if isinstance(value, bool) or not isinstance(value, str) or not value.strip():
        raise ValueError(DURATION_HINT)
    text = value.strip()
    seconds = pigsty_inventory.duration_seconds(text)
    if seconds is None:
        raise ValueError("not a duration (%s)" % DURATION_HINT)
    if seconds == 0:
        raise ValueError("0 turns the retention off in Pigsty (logs are kept for ever); ours "
                         "always ages them out")
    if seconds != int(seconds):
        raise ValueError("not a whole number of seconds")
    return _as_time(int(seconds), text)


def vm_retention_time(value):
    """VictoriaLogs' ``-retentionPeriod`` (15d, 2w, 1y; a bare number counts months of 31
    days) as our ``log_retention_time``: (ours, note or None), or ValueError."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        days = int(text) * 31
        if not days:
            raise ValueError("0 is not a retention period")
        return "%dd" % days, "%s months of 31 days, as VictoriaLogs counts them" % text
    return retention_time(text)


def vm_retention_size(value):
    """VictoriaLogs' ``-retention.maxDiskSpaceUsageBytes`` (50GiB, 500MB, bytes) as our
    ``log_retention_size`` (journalctl's --vacuum-size, in 1024s), or ValueError."""
    m = VM_BYTES_RE.fullmatch(str(value).strip())
    if not m:
        raise ValueError("expected a size such as 50GiB or 500MB")
    size = int(m.group(1)) * VM_BYTES[m.group(2)]
    if not size:
        raise ValueError("0 means no size limit in VictoriaLogs; ours always has one")
    for unit, factor in (("T", 2 ** 40), ("G", 2 ** 30), ("M", 2 ** 20), ("K", 2 ** 10)):
        if size % factor == 0:
            return "%d%s" % (size // factor, unit)
    return str(size)


def vlogs_options(value):
    """(writes {our param: value}, notes, left out) of VictoriaLogs' command line options:
    the retention options become ours (or a note says why not), the others are left out."""
    if not isinstance(value, str):
        raise ValueError("expected VictoriaLogs' command line options (a string)")
    writes, notes, left = {}, [], []
    for token in value.split():
        m = VM_OPTION_RE.fullmatch(token)
        name, arg = (m.group(1), m.group(2)) if m else (None, None)
        ours = {"retentionPeriod": "log_retention_time",
                "retention.maxDiskSpaceUsageBytes": "log_retention_size"}.get(name)
        if ours is None or arg is None:
            left.append(token)
            continue
        try:
            if ours == "log_retention_time":
                text, why = vm_retention_time(arg)
            else:
                text, why = vm_retention_size(arg), None
        except ValueError as exc:
            notes.append("%s not carried over: %s" % (token, exc))
            continue
        writes[ours] = text
        notes.append("%s -> %s: %s%s" % (token, ours, text, " (%s)" % why if why else ""))
    return writes, notes, left


# ------------------------------------------------------------------ the importer's handlers
class LogParams:
    """Handlers of the log parameters (mixed into ``pigsty_import.Importer``, which provides
    ``row``, ``_write``, ``written``, ``gvars_in``, ``gvars_out``, ``nodes``, ``meta_groups``)."""

    def _log_first_meta(self):
        """(minion id, address) of the first meta node: the sink (pigsty_model's order)."""
        metas = sorted((n["id"], ip) for ip, n in self.nodes.items() if n["meta"])
        return metas[0] if metas else ("-", "-")

    def _log_in_force(self, key):
        """(value, scope) Pigsty applies: a meta group's own value of a store's parameter,
        else all.vars's; (None, None) when the inventory does not set it there."""
        if key in SERVER_SIDE:
            for g in getattr(self, "meta_groups", ()):
                if key in g["own_vars"]:
                    return g["own_vars"][key], "group " + g["name"]
        if key in self.gvars_in:
            return self.gvars_in[key], "all.vars"
        return None, None

    def _log_role(self, scope, where, key):
        """'force' (the value in force: carried over), 'overridden' (all.vars's, under a meta
        group's own) or 'local' (a group's or a host's own: compared with ours)."""
        _value, source = self._log_in_force(key)
        if where == "global":
            return "force" if source == "all.vars" else "overridden"
        if where == "meta" and source == scope:
            return "force"
        return "local"

    def _log_collect(self):
        """(log_collect, the switches in force that are off); log_collect is None when the
        inventory sets no switch where it is in force."""
        decided, off = False, []
        for key in sorted(SWITCHES):
            value, source = self._log_in_force(key)
            if source is None or not isinstance(value, bool):
                continue
            decided = True
            if not value:
                off.append(key)
        return (not off if decided else None), off

    def _log_write(self, key, value, row):
        self._write("global", key, value)
        self.written.setdefault(("global", key), []).append(row)

    def _log_switch(self, scope, where, key, value):
        shown = _show(value)
        if not isinstance(value, bool):
            return self.row(scope, key, UNSUPPORTED, "%s: expected true or false" % shown)
        role = self._log_role(scope, where, key)
        collect, off = self._log_collect()
        final = D.DEFAULTS["log_collect"] if collect is None else collect
        if "log_collect" in self.gvars_in:
            return self.row(scope, key, MAPPED, "%s: not used: the inventory sets our log_collect"
                            % shown)
        if role == "overridden":
            return self._log_overridden(scope, key, value)
        if role == "local":
            if value == final:
                return self.row(scope, key, MAPPED, "%s: same as ours for these nodes "
                                "(log_collect: %s)" % (shown, str(final).lower()))
            return self.row(scope, key, UNSUPPORTED, "%s here: ours has one switch for every "
                            "node, global (log_collect: %s)%s" % (
                                shown, str(final).lower(),
                                ": these nodes send their journal too" if final else ""))
        if value and collect:
            detail = "true -> log_collect: true: " + SWITCHES[key] % {
                "meta": self._log_first_meta()[0]}
        elif value:
            detail = "true, but %s %s false -> log_collect: false (ours has one switch for the " \
                     "collector and every node's uploader)" % (
                         ", ".join(off), "is" if len(off) == 1 else "are")
        else:
            detail = "false -> log_collect: false: no logs are collected (ours has one switch " \
                     "for the collector on the first meta node and every node's uploader)"
        r = self.row(scope, key, CHANGED, detail)
        self._log_write("log_collect", collect, r)
        return r

    _p_loki_enabled = _p_promtail_enabled = _p_vlogs_enabled = _p_vector_enabled = _log_switch

    def _log_overridden(self, scope, key, value):
        in_force, source = self._log_in_force(key)
        return self.row(scope, key, MAPPED, "%s: %s the value of %s (%s), which Pigsty applies "
                        "on the meta nodes (see its row)" % (
                            _show(value), "same as" if value == in_force else "not used: it is",
                            source, _show(in_force)))

    def _log_retention_local(self, scope, where, key, value, role):
        if role == "overridden":
            return self._log_overridden(scope, key, value)
        in_force, source = self._log_in_force(key)
        if source is not None and value == in_force:
            return self.row(scope, key, MAPPED, "same as the value in force (%s)" % source)
        return self.row(scope, key, UNSUPPORTED, "%s: global in ours (the logs are kept on the "
                        "first meta node); %s" % (_show(value), "the value in force applies (%s: %s)"
                                                  % (source, _show(in_force)) if source
                                                  else "our default applies"))

    def _p_loki_retention(self, scope, where, key, value):
        role = self._log_role(scope, where, key)
        if role != "force":
            return self._log_retention_local(scope, where, key, value, role)
        if "log_retention_time" in self.gvars_in:
            return self.row(scope, key, UNSUPPORTED, "%s: left out: the inventory sets our "
                            "log_retention_time" % _show(value))
        try:
            ours, note = retention_time(value)
        except ValueError as exc:
            return self.row(scope, key, UNSUPPORTED, "%s: %s; log_retention_time keeps its "
                            "default (%s)" % (_show(value), exc, D.DEFAULTS["log_retention_time"]))
        r = self.row(scope, key, CHANGED, "%s -> log_retention_time: %s%s; journalctl's vacuum "
                     "on the first meta node, hourly (Loki -> systemd-journal-remote); ours also "
                     "keeps at most log_retention_size (%s by default), which Loki does not" % (
                         _show(value), ours, " (%s)" % note if note else "",
                         D.DEFAULTS["log_retention_size"]))
        self._log_write("log_retention_time", ours, r)
        return r

    def _p_vlogs_options(self, scope, where, key, value):
        role = self._log_role(scope, where, key)
        if role != "force":
            return self._log_retention_local(scope, where, key, value, role)
        try:
            writes, notes, left = vlogs_options(value)
        except ValueError as exc:
            return self.row(scope, key, UNSUPPORTED, "%s: %s" % (_show(value), exc))
        for ours in sorted(writes):
            if ours in self.gvars_in:
                notes.append("%s not written: the inventory sets our %s" % (ours, ours))
                del writes[ours]
        if left:
            notes.append("left out %s (VictoriaLogs' own; ours runs systemd-journal-remote)"
                         % ", ".join(left))
        if not writes:
            return self.row(scope, key, UNSUPPORTED, "nothing carried over: %s" % "; ".join(notes))
        r = self.row(scope, key, CHANGED, "; ".join(notes) + " (journalctl's vacuum on the first "
                     "meta node, hourly)")
        for ours, text in sorted(writes.items()):
            self._log_write(ours, text, r)
        return r

    def _log_endpoint_to(self, value, what):
        """The row's (status, detail) for logs sent to ``value`` (a meta node's address, or
        the name of a meta group, is the first meta node in ours)."""
        meta_id, meta_ip = self._log_first_meta()
        port = self.gvars_out.get("log_port", D.DEFAULTS["log_port"])
        sink = "https://%s:%s" % (meta_ip, port)
        metas = {ip for ip, n in self.nodes.items() if n["meta"]}
        if what in metas:
            first = "" if what == meta_ip else "; ours collects on the first meta node only, " \
                                              "not %s" % what
            return CHANGED, "%s -> %s: systemd-journal-upload sends every node's journal to " \
                "systemd-journal-remote on the first meta node (%s), log_port%s; nothing written" % (
                    _show(value), sink, meta_id, first)
        return UNSUPPORTED, "%s: not a meta node: ours sends every node's journal to the first " \
            "meta node (%s, %s) and pushes to no other log store" % (_show(value), meta_id, sink)

    def _p_loki_endpoint(self, scope, where, key, value):
        text = value if isinstance(value, str) else ""
        admin = R.ipv4(self.gvars_in.get("admin_ip"))
        if admin:
            text = text.replace("${admin_ip}", admin)
        try:
            host = urlsplit(text).hostname if "://" in text else None
        except ValueError:
            host = None
        if not host:
            return self.row(scope, key, UNSUPPORTED, "%s: expected Loki's push URL, such as "
                            "http://10.10.10.10:3100/loki/api/v1/push" % _show(value))
        status, detail = self._log_endpoint_to(value, host)
        return self.row(scope, key, status, detail)

    def _p_vector_log_endpoint(self, scope, where, key, value):
        groups = {g["name"] for g in getattr(self, "meta_groups", ())}
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            return self.row(scope, key, UNSUPPORTED, "%s: expected a list of group names, such "
                            "as [infra]" % _show(value))
        others = [v for v in value if v not in groups]
        if others:
            return self.row(scope, key, UNSUPPORTED, "%s: %s %s not a meta (infra) group: ours "
                            "sends every node's journal to the first meta node (%s) only" % (
                                _show(value), ", ".join(others), "is" if len(others) == 1 else "are",
                                self._log_first_meta()[0]))
        status, detail = self._log_endpoint_to(value, self._log_first_meta()[1])
        return self.row(scope, key, status, detail)

