"""Access rules for Postgres and Pgbouncer in Pigsty's model, validated and rendered.

A rule: {user, db, addr, auth, title, order, role}
  user   all | NAME | +ROLE (members of ROLE)          db   all | replication | NAME
  addr   local (unix socket) | localhost | intra (private ranges) | infra (meta nodes)
         | world | a CIDR
  auth   pwd (scram-sha-256) | ssl (hostssl + scram) | cert | trust | deny | ident (peer)
  order  sort key (default 1000); role: common | primary | replica | offline (default common)

The protected rules (the dbsu's local socket and the replication paths that Patroni uses)
always come first, whatever the order of user rules: a rule in pillar cannot lock out the
admin or replication paths.

SSL (PostgreSQL and pgbouncer always offer it, with the node certificate): the admin user's
remote default rules always require it (as Pigsty's defaults do); with ``pg_ssl_required``
every remote default password rule does (business, offline, monitor and replication, as
Pigsty's security-minded template does), so a password never crosses the network in a
plain-text session. Loopback and the local socket stay ``pwd``: nothing crosses a network.
"""
import ipaddress
import re

INTRA = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
AUTH_METHODS = {"pwd": "scram-sha-256", "ssl": "scram-sha-256", "cert": "cert",
                "trust": "trust", "deny": "reject", "ident": "peer"}
PGBOUNCER_AUTH = ("pwd", "ssl", "trust", "deny", "ident")
ADDR_CLASSES = ("local", "localhost", "intra", "infra", "world")
ROLES = ("common", "primary", "replica", "offline", "standby")
FIELDS = {"user", "db", "addr", "auth", "title", "order", "role"}
NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
IDENT_MAP = "pigsty"   # pg_ident map: root (Salt) and the dbsu may log in as the dbsu


def rule_problems(rule, path, pgbouncer=False):
    """Problems of one rule, each naming ``path:field`` and what was expected."""
    if not isinstance(rule, dict):
        return ["%s: expected a mapping with user, db, addr, auth" % path]
    problems = ["%s:%s: unknown field (expected one of: %s)" % (path, k, ", ".join(sorted(FIELDS)))
                for k in sorted(set(rule) - FIELDS)]
    for key in ("user", "db", "addr", "auth"):
        if key not in rule:
            problems.append("%s:%s: missing (expected %s)" % (path, key, _expected(key, pgbouncer)))
    user, db, addr, auth = (rule.get(k) for k in ("user", "db", "addr", "auth"))
    if user is not None and not _user_ok(user, pgbouncer):
        problems.append("%s:user: %r is not a user (expected %s)" % (path, user, _expected("user", pgbouncer)))
    if db is not None and not (db in ("all", "replication", "pgbouncer") or
                               (isinstance(db, str) and NAME_RE.fullmatch(db))):
        problems.append("%s:db: %r is not a database (expected %s)" % (path, db, _expected("db", pgbouncer)))
    if addr is not None and not _addr_ok(addr):
        problems.append("%s:addr: %r is not an address (expected %s)" % (path, addr, _expected("addr", pgbouncer)))
    allowed = PGBOUNCER_AUTH if pgbouncer else tuple(AUTH_METHODS)
    if auth is not None and auth not in allowed:
        problems.append("%s:auth: unknown method %r (expected one of: %s)" % (path, auth, ", ".join(allowed)))
    if auth in ("ident",) and addr not in (None, "local"):
        problems.append("%s:auth: ident (peer) works on the local socket only (addr: local)" % path)
    if addr == "local" and auth in ("ssl", "cert"):
        problems.append("%s:auth: %s needs a network address, not addr: local" % (path, auth))
    if "order" in rule and (not isinstance(rule["order"], int) or isinstance(rule["order"], bool)):
        problems.append("%s:order: expected an integer, got %r" % (path, rule["order"]))
    if rule.get("role", "common") not in ROLES:
        problems.append("%s:role: unknown role %r (expected one of: %s)" % (path, rule.get("role"), ", ".join(ROLES)))
    if "title" in rule and (not isinstance(rule["title"], str) or "\n" in rule["title"]):
        problems.append("%s:title: expected a one-line string" % path)
    return problems


def _expected(key, pgbouncer):
    return {
        "user": "all, a user name" + ("" if pgbouncer else " or +ROLE"),
        "db": "all, replication or a database name",
        "addr": "local, localhost, intra, infra, world or a CIDR",
        "auth": ", ".join(PGBOUNCER_AUTH if pgbouncer else AUTH_METHODS),
    }[key]


def _user_ok(user, pgbouncer):
    if not isinstance(user, str):
        return False
    if user == "all":
        return True
    name = user[1:] if user.startswith("+") and not pgbouncer else user
    return bool(NAME_RE.fullmatch(name))


def _addr_ok(addr):
    if addr in ADDR_CLASSES:
        return True
    try:
        ipaddress.ip_network(str(addr), strict=False)
        return "/" in str(addr)
    except ValueError:
        return False


def validate(conf, path):
    """Problems of a cluster's pg_hba_rules and pgb_hba_rules."""
    problems = []
    for key, pgb in (("pg_hba_rules", False), ("pgb_hba_rules", True)):
        rules = conf.get(key)
        if not isinstance(rules, list):
            problems.append("%s:%s: expected a list of rules" % (path, key))
            continue
        for i, rule in enumerate(rules):
            problems += rule_problems(rule, "%s:%s[%d]" % (path, key, i), pgbouncer=pgb)
    return problems


def _remote(conf):
    """The auth of a remote default password rule: ssl with pg_ssl_required, else pwd."""
    return "ssl" if conf.get("pg_ssl_required") else "pwd"


def default_postgres_rules(conf):
    """Pigsty's default rules; ``protected`` ones are always rendered first."""
    dbsu, repl = conf["pg_dbsu"], conf["pg_replication_username"]
    mon, adm = conf["pg_monitor_username"], conf["pg_admin_username"]
    remote = _remote(conf)
    return [
        {"user": dbsu, "db": "all", "addr": "local", "auth": "ident", "title": "dbsu via local socket", "order": 100, "protected": True},
        {"user": dbsu, "db": "replication", "addr": "local", "auth": "ident", "title": "dbsu replication", "order": 150, "protected": True},
        {"user": repl, "db": "replication", "addr": "localhost", "auth": "pwd", "title": "replication from localhost (Patroni)", "order": 200, "protected": True},
        {"user": repl, "db": "replication", "addr": "intra", "auth": remote, "title": "replication from intranet", "order": 250, "protected": True},
        {"user": repl, "db": "postgres", "addr": "intra", "auth": remote, "title": "rewind / status from intranet", "order": 300, "protected": True},
        {"user": repl, "db": "postgres", "addr": "localhost", "auth": "pwd", "title": "rewind from localhost", "order": 310, "protected": True},
        {"user": dbsu, "db": "all", "addr": "world", "auth": "deny", "title": "dbsu never over the network", "order": 320, "protected": True},
        {"user": mon, "db": "all", "addr": "localhost", "auth": "pwd", "title": "monitor from localhost", "order": 400},
        {"user": mon, "db": "all", "addr": "local", "auth": "pwd", "title": "monitor via local socket", "order": 410},
        {"user": mon, "db": "all", "addr": "infra", "auth": remote, "title": "monitor from infra nodes", "order": 450},
        {"user": adm, "db": "all", "addr": "infra", "auth": "ssl", "title": "admin from infra nodes, over SSL", "order": 500},
        {"user": adm, "db": "all", "addr": "intra", "auth": "ssl", "title": "admin from intranet, over SSL", "order": 550},
        {"user": "+dbrole_readonly", "db": "all", "addr": "local", "auth": "pwd", "title": "business via local socket (pgbouncer)", "order": 600},
        {"user": "+dbrole_readonly", "db": "all", "addr": "localhost", "auth": "pwd", "title": "business from localhost", "order": 650},
        {"user": "+dbrole_readonly", "db": "all", "addr": "intra", "auth": remote, "title": "business from intranet", "order": 700},
        {"user": "+dbrole_offline", "db": "all", "addr": "intra", "auth": remote, "title": "offline (ETL) on offline instances", "order": 800, "role": "offline"},
    ]


def default_pgbouncer_rules(conf):
    mon, adm, dbsu = conf["pg_monitor_username"], conf["pg_admin_username"], conf["pg_dbsu"]
    remote = _remote(conf)
    return [
        {"user": dbsu, "db": "pgbouncer", "addr": "local", "auth": "ident", "title": "dbsu admin console", "order": 100, "protected": True},
        {"user": dbsu, "db": "all", "addr": "world", "auth": "deny", "title": "dbsu never over the network", "order": 150, "protected": True},
        {"user": mon, "db": "pgbouncer", "addr": "localhost", "auth": "pwd", "title": "monitor console from localhost", "order": 200},
        {"user": mon, "db": "pgbouncer", "addr": "intra", "auth": remote, "title": "monitor console from intranet", "order": 250},
        {"user": adm, "db": "all", "addr": "intra", "auth": "ssl", "title": "admin from intranet, over SSL", "order": 300},
        {"user": "all", "db": "all", "addr": "localhost", "auth": "pwd", "title": "business from localhost", "order": 400},
        {"user": "all", "db": "all", "addr": "intra", "auth": remote, "title": "business from intranet", "order": 500},
    ]


def _addresses(addr, conf):
    if addr == "local":
        return [None]
    if addr == "localhost":
        return ["127.0.0.1/32", "::1/128"]
    if addr == "intra":
        return INTRA
    if addr == "infra":
        return ["%s/32" % ip for ip in conf.get("pigsty_meta_ips", [])]
    if addr == "world":
        return ["0.0.0.0/0", "::/0"]
    return [str(ipaddress.ip_network(addr, strict=False))]


def applies(rule, conf):
    """Whether a rule's role filter matches this instance (offline also matches replicas
    that take offline queries)."""
    want = rule.get("role", "common")
    return (want == "common" or want == conf["pg_role"] or
            (want == "offline" and bool(conf.get("pg_offline_query"))))


def ordered(rules):
    """Protected rules first (in their order), then every other rule by order, title."""
    key = lambda r: (0 if r.get("protected") else 1, r.get("order", 1000), r.get("title", ""))
    return sorted(rules, key=key)


def lines(rules, conf, ident_map=IDENT_MAP, comments=True):
    """Render rules to HBA lines for this instance. ``ident`` uses the pg_ident map
    (pgbouncer has no maps: ident_map=None)."""
    out = []
    for rule in ordered(rules):
        if not applies(rule, conf):
            continue
        method = AUTH_METHODS[rule["auth"]]
        if rule["auth"] == "ident" and ident_map:
            method = "%s map=%s" % (method, ident_map)
        if comments and rule.get("title"):
            out.append("# %s" % rule["title"])
        for addr in _addresses(rule["addr"], conf):
            if addr is None:
                out.append("local %s %s %s" % (rule["db"], rule["user"], method))
            else:
                kind = "hostssl" if rule["auth"] in ("ssl", "cert") else "host"
                out.append("%s %s %s %s %s" % (kind, rule["db"], rule["user"], addr, method))
    return out


def postgres_lines(conf):
    """pg_hba.conf lines of this instance: defaults + pg_hba_rules."""
    return lines(default_postgres_rules(conf) + list(conf.get("pg_hba_rules") or []), conf)


def pgbouncer_lines(conf):
    """pgbouncer HBA lines (auth_type = hba): defaults + pgb_hba_rules."""
    return lines(default_pgbouncer_rules(conf) + list(conf.get("pgb_hba_rules") or []), conf,
                 ident_map=None, comments=False)


def ident_lines(conf):
    dbsu = conf["pg_dbsu"]
    return ["%s root %s" % (IDENT_MAP, dbsu), "%s %s %s" % (IDENT_MAP, dbsu, dbsu)]
