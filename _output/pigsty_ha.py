"""Readable tables for the HA runner's reports (pigsty_ha.status, and the dry runs of
pigsty_ha.switchover / reconcile / reconcile_all with test=True).

The runner returns ``{"outputter": "pigsty_ha", "data": ...}``: salt-run prints ``data``
with this outputter unless ``--out`` names another (``--out=json``: the dict itself). The
master finds it through ``outputter_dirs`` (master.d/pigsty.conf). Standard library only.

    salt-run pigsty_ha.status pg-test
    salt-run pigsty_ha.switchover pg-test test=True
"""
import json

__virtualname__ = "pigsty_ha"


def __virtual__():
    return __virtualname__


def _cell(value):
    if value is None:
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def table(rows, columns=None, headers=None):
    """Rows (dicts) as an aligned text table; ``columns``: which keys, in order (default:
    the first row's); ``headers``: {key: title}."""
    if not rows:
        return "  (none)"
    columns = columns or list(rows[0])
    headers = headers or {}
    cells = [[(headers.get(c) or c).upper() for c in columns]]
    cells += [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  " + "  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip() for line in cells)


def _result(data):
    res = data.get("result")
    word = {None: "WOULD ACT (test, nothing changed)", True: "OK", False: "REFUSED" if data.get("test") else "FAILED"}
    return "%s: %s" % (word.get(res, str(res)), data.get("comment", ""))


def status(data):
    out = ["cluster %s   leader %s" % (data.get("cluster"), _cell(data.get("leader")))]
    out.append(table(data.get("members") or [], ["instance", "ip", "pillar_role", "role", "state", "timeline",
                                                "lag", "vip", "haproxy_5433_up"],
                     {"pillar_role": "pillar", "haproxy_5433_up": "haproxy 5433 up"}))
    return "\n".join(out)


def switchover(data):
    out = ["switchover %s (dry run)" % data.get("cluster"),
           "  leader     %s" % _cell(data.get("leader")),
           "  candidate  %s%s" % (_cell(data.get("candidate")), ": " + data["chosen"] if data.get("chosen") else ""),
           "", "members:",
           table(data.get("members") or [], ["instance", "minion", "role", "state", "timeline", "lag", "streaming",
                                             "takeover"]),
           "", "checks:",
           table([{"ok": "ok" if c["ok"] else "REFUSE", "check": c["check"], "detail": c["detail"]}
                  for c in data.get("checks") or []], ["ok", "check", "detail"])]
    steps = data.get("steps") or []
    if steps:
        out += ["", "steps, in order:",
                table([{"#": i, "step": s["step"], "where": s.get("minions") or "master",
                        "call": s["fun"], "what": s.get("comment", "")} for i, s in enumerate(steps, 1)],
                      ["#", "step", "where", "call", "what"])]
        commands = [(s["step"], s["arg"][0]) for s in steps
                    if s["fun"] == "pigsty_haproxy.run" and s.get("arg")]
        if commands:
            out += ["", "HAProxy runtime commands:"]
            out += ["  %s: %s" % (step, "; ".join(cmds)) for step, cmds in commands]
    out += ["", _result(data)]
    return "\n".join(out)


def reconcile(data):
    plan = data.get("plan") or {}
    out = ["reconcile %s (dry run)%s" % (data.get("cluster"), "  -- a planned operation is in progress"
                                         if data.get("operation_in_progress") else ""),
           "", "live roles:",
           table([{"instance": i, "role": r} for i, r in sorted((data.get("roles") or {}).items())])]
    rows = []
    for minion, cmds in sorted((plan.get("haproxy") or {}).items()):
        rows += [{"step": "haproxy", "where": minion, "would": c} for c in cmds]
    for node, what in sorted((plan.get("targets_dns") or {}).items()):
        rows.append({"step": "targets_dns", "where": node, "would": "rewrite " + ", ".join(what)})
    for step in ("vip", "pgbouncer", "rejoin", "handoff"):
        rows += [{"step": step, "where": "", "would": a} for a in plan.get(step) or []]
    out += ["", "plan:", table(rows, ["step", "where", "would"]) if rows else "  nothing would change"]
    for node, ans in sorted(((data.get("steps") or {}).get("targets_dns") or {}).get("meta", {}).items()):
        if isinstance(ans, dict) and ans.get("labels"):
            out.append("  %s: targets' role labels %s; %s-primary -> %s" % (
                node, ", ".join("%s=%s" % kv for kv in sorted(ans["labels"].items())), data.get("cluster"),
                _cell(ans.get("primary_dns"))))
    out += ["", _result(data)]
    return "\n".join(out)


def clusters(data):
    rows = [{"cluster": name, "result": {None: "would change", True: "in line", False: "cannot tell"}.get(
        v.get("result"), v.get("result")) if isinstance(v, dict) else v,
        "comment": v.get("comment") if isinstance(v, dict) else ""} for name, v in sorted(data["clusters"].items())]
    return "reconcile_all (dry run)\n" + table(rows, ["cluster", "result", "comment"]) + "\n\n" + _result(data)


def output(data, **kwargs):  # pylint: disable=unused-argument
    """The table for a pigsty_ha report; anything else as indented JSON."""
    if isinstance(data, dict):
        if "members" in data and "haproxy_5433_up" in ((data.get("members") or [{}])[0] or {}):
            return status(data)
        if data.get("test") and "checks" in data:
            return switchover(data)
        if data.get("test") and "plan" in data:
            return reconcile(data)
        if data.get("test") and "clusters" in data:
            return clusters(data)
        if "members" in data and "leader" in data:
            return status(data)
    return json.dumps(data, indent=2, sort_keys=True, default=str)
