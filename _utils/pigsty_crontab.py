"""Pigsty's node_crontab / node_crontab_overwrite: lines of /etc/crontab.

Each line is ``MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK USER COMMAND`` (or
``@reboot|@hourly|@daily|... USER COMMAND``), the system crontab's format (crontab(5)).
Lines are checked here, field by field, before anything is written: a value must not add a
line (no line break, no control character but tab), and each time field must be cron's
syntax with its range.

What Salt does with them (salt/node/crontab.sls) is kept in a marked block, so that Salt
finds and replaces its own lines and nothing else:

- ``node_crontab_overwrite: false``: the block is appended to the node's /etc/crontab
  (``file.blockreplace``); the rest of the file is kept as it is.
- ``node_crontab_overwrite: true`` (Pigsty's default): /etc/crontab is rewritten as
  Debian 12's own (SHELL, PATH and the four run-parts lines of cron.hourly, daily, weekly
  and monthly, which Debian's packages rely on) followed by the block; every other line is
  dropped (the previous file is kept in the minion's file backup).
- ``node_crontab: []``: the block is removed if present (nothing else is touched).

Pure Python (no Salt).
"""
import re

MARKER_START = "# BEGIN node_crontab: managed by Salt (Pigsty on Salt), do not edit"
MARKER_END = "# END node_crontab"
# Debian 12's /etc/crontab (package cron 3.0pl1-162): what an overwrite keeps.
DEBIAN_CRONTAB = """\
# /etc/crontab: system-wide crontab
# Managed by Salt (Pigsty on Salt): node_crontab_overwrite is true, so this file is
# Debian's own header and run-parts lines followed by the node_crontab block below.
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

# Example of job definition:
# .---------------- minute (0 - 59)
# |  .------------- hour (0 - 23)
# |  |  .---------- day of month (1 - 31)
# |  |  |  .------- month (1 - 12) OR jan,feb,mar,apr ...
# |  |  |  |  .---- day of week (0 - 6) (Sunday=0 or 7) OR sun,mon,tue,wed,thu,fri,sat
# |  |  |  |  |
# *  *  *  *  * user-name command to be executed
17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly
25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }
47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }
52 6\t1 * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }
#
"""

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name in messages, low, high, names that stand for numbers)
FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, {n: i + 1 for i, n in enumerate(MONTHS)}),
    ("day of week", 0, 7, {n: i for i, n in enumerate(DAYS)}),
)
SPECIALS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
            "@hourly")
USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
# Every control character but tab (a field separator in crontab): a line break would start
# another crontab line.
BAD_CHAR_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ITEM_RE = re.compile(r"^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/([0-9]+))?$")


def _word(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(text, low, high, names):
    if text.isdigit():
        value = int(text)
    elif names and text.lower() in names:
        value = names[text.lower()]
    else:
        return None
    return value if low <= value <= high else None


def field_problem(text, low, high, names=None):
    """None when ``text`` is one cron time field (``*``, numbers or names in range, ranges
    ``a-b``, steps ``*/n`` and ``a-b/n``, lists ``x,y``), else what was expected."""
    expected = "'*', numbers %d-%d%s, ranges a-b, steps */n or a-b/n, lists x,y" % (
        low, high, " or names (%s...)" % ", ".join(sorted(names, key=names.get)[:3]) if names else "")
    for item in text.split(","):
        m = _ITEM_RE.fullmatch(item)
        if not m:
            return expected
        part, step = m.group(1), m.group(2)
        if step is not None and (int(step) < 1 or int(step) > high):
            return expected
        if part == "*":
            continue
        bounds = part.split("-")
        values = [_number(b, low, high, names) for b in bounds]
        if any(v is None for v in values):
            return expected
        if len(values) == 2 and values[0] > values[1]:
            return expected
        if step is not None and len(values) == 1:
            return expected         # n/step: cronie's, not Debian's cron
    return None


def line_problems(line, path):
    """Problems of one node_crontab line at pillar path ``path`` (e.g.
    ``pigsty:vars:node_crontab[0]``), naming the field."""
    if not isinstance(line, str):
        return ["%s: expected a crontab line \"MIN HOUR DOM MON DOW USER COMMAND\", got %s" % (
            path, _word(line))]
    if BAD_CHAR_RE.search(line):
        return ["%s: the line contains a line break or another control character (one crontab "
                "line per entry)" % path]
    fields = line.split(None, 1)
    if fields and fields[0].startswith("@"):
        if fields[0] not in SPECIALS:
            return ["%s: %s is not one of cron's special times (%s)" % (
                path, _word(fields[0]), ", ".join(SPECIALS))]
        rest = line.split(None, 2)[1:]
        times = []
    else:
        parts = line.split(None, 6)
        if len(parts) < 7:
            return ["%s: expected \"MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK USER COMMAND\" "
                    "(7 fields or more), got %d field(s): %s" % (path, len(parts), _word(line))]
        times, rest = parts[:5], parts[5:]
    problems = []
    for text, (what, low, high, names) in zip(times, FIELDS):
        expected = field_problem(text, low, high, names)
        if expected:
            problems.append("%s: %s field %s: expected %s" % (path, what, _word(text), expected))
    if len(rest) < 2:
        problems.append("%s: expected a user and a command after the time, got %s" % (
            path, _word(line)))
        return problems
    user, command = rest
    if not USER_RE.fullmatch(user):
        problems.append("%s: user field %s: expected a user name (letters, digits, '_', '.', "
                        "'-')" % (path, _word(user)))
    if not command.strip():
        problems.append("%s: command field: empty" % path)
    return problems


def problems(conf, vpath, keys=None):
    """node_crontab (a list of lines) and node_crontab_overwrite (true or false) of ``conf``
    at ``vpath``; ``keys``: only these (the ones a scope sets)."""
    out = []

    def has(key):
        return key in conf and (keys is None or key in keys)

    if has("node_crontab_overwrite") and not isinstance(conf["node_crontab_overwrite"], bool):
        out.append("%s:node_crontab_overwrite: expected true (overwrite /etc/crontab) or false "
                   "(append a block to it), got %s" % (vpath, _word(conf["node_crontab_overwrite"])))
    if has("node_crontab"):
        lines = conf["node_crontab"]
        if not isinstance(lines, list):
            return out + ["%s:node_crontab: expected a list of crontab lines \"MIN HOUR DOM MON "
                          "DOW USER COMMAND\", got %s" % (vpath, _word(lines))]
        for i, line in enumerate(lines):
            out += line_problems(line, "%s:node_crontab[%d]" % (vpath, i))
    return out


def block(lines):
    """The marked block of ``lines`` as file.blockreplace writes it (markers included)."""
    return "%s\n%s%s\n" % (MARKER_START, "".join("%s\n" % l for l in lines), MARKER_END)


def plan(conf):
    """What salt/node/crontab.sls does for the resolved parameters ``conf``:
    {"lines", "overwrite", "content" (the block's lines, for blockreplace), "file" (the whole
    file when overwriting), "marker_start", "marker_end", "absent_pattern" (a regular
    expression of the block, to remove it)}."""
    lines = [str(l).strip() for l in conf.get("node_crontab") or []]
    return {
        "lines": lines,
        "overwrite": bool(conf.get("node_crontab_overwrite")),
        "content": "\n".join(lines),
        "file": DEBIAN_CRONTAB + block(lines),
        "marker_start": MARKER_START,
        "marker_end": MARKER_END,
        "absent_pattern": "^%s\\n(?:.*\\n)*?%s\\n?" % (re.escape(MARKER_START), re.escape(MARKER_END)),
    }
