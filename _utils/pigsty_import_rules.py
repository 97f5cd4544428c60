"""Pigsty's member selectors and access rules, translated into ours (for the inventory import).

- Selectors: Pigsty picks a service's members with JMESPath filters on the inventory
  (``[? pg_role == `primary` || pg_offline_query ]``) and marks the backup selector's members
  ``backup``; ours names one of ``all | primary | replica | offline`` plus a backup selector.
  ``translate_selectors`` finds the pair of ours that routes every kind of member the same.
- HBA: Pigsty v1 writes raw ``pg_hba.conf`` lines (``parse_hba_line``); v2+ writes
  ``{user, db, addr, auth, title, role, order}`` (``convert_v2_rule``). Both become our rule
  model (``pigsty_hba``), or raise ValueError with the reason.

Pure Python: the importer and the unit tests call it.
"""
import ipaddress
import json
import re

import pigsty_hba

def ipv4(value):
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        return None


# ------------------------------------------------------------------ JMESPath selectors
class SelectorError(ValueError):
    pass


_TOKEN_RE = re.compile(r"\s*(\|\||&&|==|!=|!|\(|\)|`[^`]*`|'[^']*'|[A-Za-z_][A-Za-z0-9_]*)")


def _tokens(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise SelectorError("cannot read %r" % text[pos:])
        out.append(m.group(1))
        pos = m.end()
    return out


def selector(text):
    """A predicate over a member (``{"pg_role", "pg_offline_query"}``) for the JMESPath
    filters Pigsty uses (``[]``, ``[? pg_role == `primary` || pg_offline_query ]``, with
    ``&&``, ``||``, ``!``, ``==``, ``!=`` and parentheses on pg_role / pg_offline_query);
    None for an empty selector (no members). SelectorError for anything else."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise SelectorError("expected a JMESPath string, got %r" % (text,))
    body = text.strip()
    if body in ("[]", "[*]"):
        return lambda m: True
    if not (body.startswith("[?") and body.endswith("]")):
        raise SelectorError("%r is not a filter [? ...]" % text)
    toks = _tokens(body[2:-1])
    pos = [0]

    def peek():
        return toks[pos[0]] if pos[0] < len(toks) else None

    def take():
        pos[0] += 1
        return toks[pos[0] - 1]

    def literal(tok):
        raw = tok[1:-1]
        if tok.startswith("`"):
            try:
                return json.loads(raw)
            except ValueError:
                return raw
        return raw

    def atom():
        tok = take() if peek() is not None else None
        if tok == "(":
            inner = disj()
            if take() != ")":
                raise SelectorError("unbalanced parentheses")
            return inner
        if tok == "!":
            inner = atom()
            return lambda m: not inner(m)
        if tok not in ("pg_role", "pg_offline_query"):
            raise SelectorError("only pg_role and pg_offline_query can be translated, got %r" % tok)
        field = tok
        if peek() in ("==", "!="):
            op = take()
            lit = take() if peek() is not None else None
            if lit is None or lit[0] not in "`'":
                raise SelectorError("expected a literal after %s" % op)
            value = literal(lit)
            if op == "==":
                return lambda m: m.get(field) == value
            return lambda m: m.get(field) != value
        return lambda m: bool(m.get(field))

    def conj():
        left = atom()
        while peek() == "&&":
            take()
            right, prev = atom(), left
            left = (lambda a, b: lambda m: a(m) and b(m))(prev, right)
        return left

    def disj():
        left = conj()
        while peek() == "||":
            take()
            right, prev = conj(), left
            left = (lambda a, b: lambda m: a(m) or b(m))(prev, right)
        return left

    pred = disj()
    if peek() is not None:
        raise SelectorError("unexpected %r" % peek())
    return pred


KINDS = [{"pg_role": r, "pg_offline_query": q} for r in ("primary", "replica", "offline")
         for q in (False, True)]
OUR_SELECTORS = ("all", "primary", "replica", "offline")


def _kind_name(k):
    return k["pg_role"] + (" with pg_offline_query" if k["pg_offline_query"] else "")


def _ours(name):
    def pred(m):
        role = m["pg_role"]
        return {"all": True, "primary": role == "primary", "replica": role == "replica",
                "offline": role == "offline" or m["pg_offline_query"]}[name]
    return pred


def pigsty_membership(sel, backup):
    """Pigsty's routing per kind of member: servers are selector + backup members, and the
    backup selector's members are marked backup (its HAProxy template)."""
    out = []
    for k in KINDS:
        is_backup = bool(backup and backup(k))
        out.append("backup" if is_backup else "normal" if sel and sel(k) else None)
    return out


def our_membership(sel_name, backup_name):
    sel, bk = _ours(sel_name), _ours(backup_name) if backup_name else None
    return ["normal" if sel(k) else "backup" if bk and bk(k) else None for k in KINDS]


def translate_selectors(sel_text, backup_text, present=None):
    """(selector, backup, differs) of ours routing as Pigsty's pair does: for every kind of
    member (differs empty), or else for the kinds of member ``present`` in the cluster
    (``differs``: the kinds, absent today, that would be routed differently).
    SelectorError when none does."""
    want = pigsty_membership(selector(sel_text), selector(backup_text))
    candidates = [(s, b) for s in OUR_SELECTORS for b in (None,) + OUR_SELECTORS]
    for s, b in candidates:
        if our_membership(s, b) == want:
            return s, b, []
    if present:
        idx = [i for i, k in enumerate(KINDS) if (k["pg_role"], k["pg_offline_query"]) in present]
        for s, b in candidates:
            mine = our_membership(s, b)
            if all(mine[i] == want[i] for i in idx):
                return s, b, [_kind_name(KINDS[i]) for i in range(len(KINDS))
                              if i not in idx and mine[i] != want[i]]
    raise SelectorError("no selector of ours (all, primary, replica, offline, with a backup "
                         "selector) routes the same members (%s)" % ", ".join(
                             "%s: %s" % (_kind_name(k), w or "none") for k, w in zip(KINDS, want)))


def membership_difference(sel_text, backup_text, ours_sel, ours_backup):
    """What differs between Pigsty's selection and one of ours, per kind of member."""
    theirs = pigsty_membership(selector(sel_text), selector(backup_text))
    mine = our_membership(ours_sel, ours_backup)
    return ["%s: Pigsty %s, ours %s" % (_kind_name(k), t or "not a server", o or "not a server")
            for k, t, o in zip(KINDS, theirs, mine) if t != o]


# ------------------------------------------------------------------ HBA
PG_METHODS = {"md5": ("pwd", "md5 -> scram-sha-256 (we store SCRAM verifiers only)"),
              "scram-sha-256": ("pwd", None), "password": ("pwd", "password -> scram-sha-256"),
              "trust": ("trust", None), "reject": ("deny", None), "peer": ("ident", None),
              "cert": ("cert", None)}
V2_AUTH = {"pwd": ("pwd", None), "md5": ("pwd", "md5 -> scram-sha-256 (we store SCRAM verifiers only)"),
           "sha": ("pwd", None), "scram": ("pwd", None), "scram-sha-256": ("pwd", None),
           "ssl": ("ssl", None), "ssl-md5": ("ssl", "ssl-md5 -> ssl with scram-sha-256"),
           "ssl-sha": ("ssl", None), "cert": ("cert", None), "trust": ("trust", None),
           "deny": ("deny", None), "reject": ("deny", None), "ident": ("ident", None),
           "peer": ("ident", None), "os": ("ident", None)}
V2_ADDR = {"local": "local", "localhost": "localhost", "intra": "intra", "intranet": "intra",
           "infra": "infra", "world": "world"}


def cidr(addr, mask=None):
    try:
        if mask is not None:
            return str(ipaddress.ip_network("%s/%s" % (addr, mask), strict=False))
        if "/" in str(addr):
            return str(ipaddress.ip_network(str(addr), strict=False))
    except ValueError:
        return None
    return None


def parse_hba_line(line, pgbouncer=False):
    """(rules, notes) for one raw HBA line, or raise ValueError with the reason."""
    text = str(line).split("#", 1)[0].strip()
    toks = text.split()
    if not toks:
        raise ValueError("empty line")
    kind = toks[0]
    if kind == "local":
        if len(toks) < 4:
            raise ValueError("expected: local DATABASE USER METHOD")
        dbs, users, addr, rest = toks[1], toks[2], "local", toks[3:]
    elif kind in ("host", "hostssl"):
        if len(toks) < 5:
            raise ValueError("expected: %s DATABASE USER ADDRESS METHOD" % kind)
        dbs, users = toks[1], toks[2]
        if ipv4(toks[3]) and len(toks) >= 6 and ipv4(toks[4]):
            addr, rest = cidr(toks[3], toks[4]), toks[5:]
        elif toks[3] == "all":
            addr, rest = "world", toks[4:]
        else:
            addr, rest = cidr(toks[3]), toks[4:]
        if addr is None:
            raise ValueError("address %r: only CIDR addresses (or all) can be translated" % toks[3])
    else:
        raise ValueError("connection type %r: only local, host and hostssl can be translated" % kind)
    method, options = rest[0], rest[1:]
    if options:
        raise ValueError("authentication options %r are not supported" % " ".join(options))
    if method not in PG_METHODS:
        raise ValueError("method %r: expected one of %s" % (method, ", ".join(sorted(PG_METHODS))))
    auth, note = PG_METHODS[method]
    notes = [note] if note else []
    if kind == "hostssl":
        if auth == "pwd":
            auth = "ssl"
        elif auth != "cert":
            raise ValueError("hostssl with %s: ours renders hostssl only for ssl and cert" % method)
    elif auth == "cert":
        raise ValueError("cert needs hostssl")
    if auth == "ident" and addr != "local":
        raise ValueError("peer works on the local socket only")
    if pgbouncer and auth not in pigsty_hba.PGBOUNCER_AUTH:
        raise ValueError("pgbouncer rules take %s only" % ", ".join(pigsty_hba.PGBOUNCER_AUTH))
    rules = []
    for db in dbs.split(","):
        for user in users.split(","):
            if db.startswith("@") or user.startswith("@") or db in ("sameuser", "samerole"):
                raise ValueError("%s: file includes and sameuser/samerole are not supported" % (
                    db if db.startswith("@") or db in ("sameuser", "samerole") else user))
            rules.append({"user": user, "db": db, "addr": addr, "auth": auth})
    return rules, notes


def substitute(value, names):
    if not isinstance(value, str):
        return value
    for key, name in names.items():
        value = value.replace("${%s}" % key, name)
    return value


def convert_v2_rule(rule, names, ctx, pgbouncer=False):
    """(rules, notes) for one ``{user, db, addr, auth, title, role, order}`` rule."""
    unknown = sorted(set(rule) - {"user", "db", "addr", "auth", "title", "role", "order"})
    if unknown:
        raise ValueError("unknown field(s) %s" % ", ".join(unknown))
    notes = []
    user = substitute(rule.get("user", "all"), names)
    db = substitute(rule.get("db", "all"), names)
    addr = rule.get("addr", "world")
    auth_in = rule.get("auth", "pwd")
    if auth_in not in V2_AUTH:
        raise ValueError("auth %r: expected one of %s" % (auth_in, ", ".join(sorted(V2_AUTH))))
    auth, note = V2_AUTH[auth_in]
    if note:
        notes.append(note)
    if pgbouncer and auth not in pigsty_hba.PGBOUNCER_AUTH:
        raise ValueError("pgbouncer rules take %s only" % ", ".join(pigsty_hba.PGBOUNCER_AUTH))
    addrs = []
    if addr in V2_ADDR:
        addrs = [V2_ADDR[addr]]
        if addr == "intranet":
            notes.append("addr intranet -> intra")
    elif addr == "admin":
        if not ctx.get("admin_ip"):
            raise ValueError("addr admin: the inventory has no admin_ip")
        addrs = ["%s/32" % ctx["admin_ip"]]
        notes.append("addr admin -> %s/32 (admin_ip)" % ctx["admin_ip"])
    elif addr == "cluster":
        addrs = ["%s/32" % ip for ip in ctx.get("members", [])]
        notes.append("addr cluster -> one rule per member address")
    elif ipv4(addr):
        addrs = ["%s/32" % ipv4(addr)]
    elif cidr(addr):
        addrs = [cidr(addr)]
    else:
        raise ValueError("addr %r: expected local, localhost, intra, infra, admin, cluster, "
                         "world or a CIDR" % (addr,))
    role = rule.get("role", "common")
    out = []
    for a in addrs:
        r = {"user": user, "db": db, "addr": a, "auth": auth}
        if role != "common":
            r["role"] = role
        if "order" in rule:
            r["order"] = rule["order"]
        out.append(r)
    return out, notes


def collapse_intra(rules):
    """Rules that differ only in the three private ranges become one rule with addr intra."""
    intra = set(pigsty_hba.INTRA)
    out, done = [], set()
    for i, r in enumerate(rules):
        if i in done:
            continue
        if r["addr"] in intra:
            same = [j for j, o in enumerate(rules) if j not in done and o["addr"] in intra and
                    {k: v for k, v in o.items() if k != "addr"} == {k: v for k, v in r.items() if k != "addr"}]
            if {rules[j]["addr"] for j in same} == intra:
                done |= set(same)
                out.append(dict(r, addr="intra"))
                continue
        done.add(i)
        out.append(r)
    return out

def rule_text(r):
    text = "%s %s %s %s" % (r["user"], r["db"], r["addr"], r["auth"])
    if r.get("role", "common") != "common":
        text += " (%s)" % r["role"]
    return text
