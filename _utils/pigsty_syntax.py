"""Field syntax of the pillar values that end up in a configuration file.

The inventory checks (``pigsty_inventory.validate``) check the topology: names, members,
ports, VIPs, passwords being there. This module checks that each value a template prints
into a file is valid for that file's syntax, so that a value cannot add a line, a keyword or
a server to it (an injected ``server`` line in ``haproxy.cfg``, a second key in vip-manager's
YAML, a broken pgpass line...):

- HAProxy (``haproxy.cfg``): the extra services of ``pg_services`` (every field, unknown
  ones refused: Pigsty's raw ``options`` string is not supported);
- pgbouncer: the pool fields of users and databases; user and database names are
  identifiers (checked by the inventory) and the userlist quotes them (pigsty_sql);
- the postgres exporter and Patroni: system passwords must fit a pgpass line (libpq's
  escaping covers ``\\`` and ``:``, nothing can carry a line break): ``pgpass_line``;
- vip-manager's YAML and Patroni's configuration: ``pg_vip_interface``, ``pg_namespace``,
  ``pg_data``;
- users and databases: the whole spec as pigsty_pg would check it at apply time.

Passwords are legitimately free text: they are quoted where they go (SQL: a SCRAM verifier;
pgpass: escaped; YAML: dumped), never refused for a space, a quote, ``%`` or ``;``, and never
shown in a message.

Pure Python (no Salt). ``validate(inv, private)`` is called once from
``pigsty_inventory.validate``.
"""
import re

import pigsty_crontab
import pigsty_defaults as D
import pigsty_gpg
import pigsty_node_admin
import pigsty_node_tune

SERVICE_KEYS = ("name", "port", "dest", "check", "selector", "backup", "balance", "maxconn")
SERVICE_DESTS = ("pgbouncer", "postgres")
SERVICE_SELECTORS = ("all", "primary", "replica", "offline", "standby")
SERVICE_BACKUPS = ("primary", "replica", "offline", "standby", "all")
# HAProxy's balance algorithms that take no argument and work in tcp mode.
HAPROXY_BALANCE = ("roundrobin", "static-rr", "leastconn", "first", "source", "random")
SERVICE_MAXCONN = (1, 100000)
# Patroni 3's health endpoints (GET/OPTIONS answer 200 or 503) and their query arguments.
PATRONI_CHECKS = ("/", "/primary", "/master", "/leader", "/standby-leader", "/standby_leader",
                  "/replica", "/read-only", "/read-write", "/synchronous", "/sync",
                  "/asynchronous", "/async", "/health", "/liveness", "/readiness")
CHECK_QUERY_RE = re.compile(r"^[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+(&[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+)*$")

POOL_MODES = ("session", "transaction", "statement")
# Patroni's watchdog modes (YAML's unquoted off reads as false: the same)
WATCHDOG_MODES = ("off", "automatic", "required")
# pgbouncer-side fields of a pg_users entry (pgsql.user leaves them out of the role spec).
USER_POOL_FIELDS = ("pgbouncer", "pool_mode", "pool_connlimit")

INTERFACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")          # Linux: IFNAMSIZ - 1
NAMESPACE_RE = re.compile(r"^/([A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*/?)?$")
PATH_RE = re.compile(r"^(/[A-Za-z0-9_.+-]+)+/?$")
# a DNS host name (portal domains, DNS records, a certificate's DNS subjectAltName)
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                         r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# What no configuration line can carry: every C0 control character (line breaks included),
# DEL and NUL.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _word(value):
    """repr of a value for a message, cut short (hostile values can be long)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------ quoting
def pgpass_line(user, password, host="*", port="*", dbname="*"):
    """One line of a libpq password file (``host:port:dbname:user:password``), ``\\`` and
    ``:`` escaped as libpq reads them. A value with a control character cannot be written
    (ValueError, without the value)."""
    fields = [str(host), str(port), str(dbname), user, password]
    if not all(isinstance(f, str) for f in fields) or any(CONTROL_RE.search(f) for f in fields):
        raise ValueError("pgpass: a field is not a single-line string without control characters")
    return ":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields)


# ------------------------------------------------------------------ field checks
def check_check(value):
    """None when ``value`` is a Patroni health endpoint for HAProxy's ``http-check send
    uri``, else what was expected."""
    expected = ("a Patroni health endpoint (%s), optionally with ?NAME=VALUE arguments "
                "of letters, digits, '_', '.', '-'" % ", ".join(PATRONI_CHECKS))
    if not isinstance(value, str):
        return expected
    path, _sep, query = value.partition("?")
    if path not in PATRONI_CHECKS or (_sep and not CHECK_QUERY_RE.fullmatch(query)):
        return expected
    return None


def service_problems(svc, spath):
    """Problems of one extra HAProxy service (``pg_services`` entry) at pillar path
    ``spath``; name and port are the inventory's (names, clashes)."""
    if not isinstance(svc, dict):
        return []                               # the inventory says it is not a mapping
    problems = []
    for key in sorted(set(svc) - set(SERVICE_KEYS), key=str):
        problems.append("%s:%s: unknown field (expected one of: %s)" % (
            spath, key, ", ".join(SERVICE_KEYS)))
    if "dest" in svc and svc["dest"] not in SERVICE_DESTS:
        problems.append("%s:dest: expected one of %s, got %s" % (
            spath, ", ".join(SERVICE_DESTS), _word(svc["dest"])))
    if "selector" in svc and svc["selector"] not in SERVICE_SELECTORS:
        problems.append("%s:selector: expected one of %s, got %s" % (
            spath, ", ".join(SERVICE_SELECTORS), _word(svc["selector"])))
    if svc.get("backup") is not None and svc["backup"] not in SERVICE_BACKUPS:
        problems.append("%s:backup: expected one of %s (or null), got %s" % (
            spath, ", ".join(SERVICE_BACKUPS), _word(svc["backup"])))
    if "check" in svc and check_check(svc["check"]) is not None:
        problems.append("%s:check: expected %s, got %s" % (
            spath, check_check(svc["check"]), _word(svc["check"])))
    if "balance" in svc and svc["balance"] not in HAPROXY_BALANCE:
        problems.append("%s:balance: expected one of HAProxy's algorithms %s, got %s" % (
            spath, ", ".join(HAPROXY_BALANCE), _word(svc["balance"])))
    low, high = SERVICE_MAXCONN
    if "maxconn" in svc and not (_is_int(svc["maxconn"]) and low <= svc["maxconn"] <= high):
        problems.append("%s:maxconn: expected an integer %d-%d, got %s" % (
            spath, low, high, _word(svc["maxconn"])))
    return problems


def _pool_problems(entry, path, fields):
    problems = []
    if "pgbouncer" in fields and "pgbouncer" in entry and not isinstance(entry["pgbouncer"], bool):
        problems.append("%s:pgbouncer: expected true or false, got %s" % (
            path, _word(entry["pgbouncer"])))
    if "pool_mode" in fields and "pool_mode" in entry and entry["pool_mode"] not in POOL_MODES:
        problems.append("%s:pool_mode: expected one of %s, got %s" % (
            path, ", ".join(POOL_MODES), _word(entry["pool_mode"])))
    if "pool_connlimit" in fields and "pool_connlimit" in entry and not (
            _is_int(entry["pool_connlimit"]) and entry["pool_connlimit"] >= -1):
        problems.append("%s:pool_connlimit: expected an integer >= -1 (-1: no limit), got %s" % (
            path, _word(entry["pool_connlimit"])))
    return problems


def secret_problems(conf, vpath):
    """System passwords that no pgpass or configuration line can carry (a control
    character: a line break would start a new line). The message never shows the value.
    A PGP message left encrypted is no password: pigsty_gpg reports it, not this."""
    problems = []
    for key in D.REQUIRED_SECRETS + (D.ETCD_SECRET,):
        value = conf.get(key)
        if isinstance(value, str) and CONTROL_RE.search(value) and not pigsty_gpg.is_ciphertext(value):
            problems.append("%s:%s: the password contains a control character (a line break, "
                            "tab, NUL...): it cannot be written to a pgpass or configuration "
                            "line; spaces, quotes and any other printable character are fine"
                            % (vpath, key))
    return problems


def _spec_problems(spec, path, normalize):
    """The spec as pigsty_pg checks it at apply time, reported now (before any change)."""
    try:
        normalize(spec)
    except ValueError as exc:
        # "user NAME: field: expected ...; field: ..." -> under the entry's pillar path
        return ["%s: %s" % (path, str(exc).split(": ", 1)[-1])]
    return []


def _named_entries(entries):
    """(name, entry) of the list's mappings with a valid name (the inventory reports the
    others)."""
    from pigsty_inventory import PG_NAME_RE  # pylint: disable=import-outside-toplevel
    return [(e["name"], e) for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, dict) and isinstance(e.get("name"), str)
            and PG_NAME_RE.fullmatch(e["name"])]


def user_problems(users, vpath):
    """pg_users entries: pgbouncer pool fields, and each spec as pigsty_pg checks it."""
    import pigsty_sql  # pylint: disable=import-outside-toplevel  (it imports pigsty_inventory)
    problems = []
    for name, user in _named_entries(users):
        upath = "%s:pg_users[%s]" % (vpath, name)
        problems += _pool_problems(user, upath, USER_POOL_FIELDS)
        spec = {k: v for k, v in user.items() if k not in USER_POOL_FIELDS}
        problems += _spec_problems(spec, upath, pigsty_sql.normalize_user)
    return problems


def database_problems(dbs, vpath):
    """pg_databases entries, each spec as pigsty_pg checks it (``pgbouncer`` included)."""
    import pigsty_sql  # pylint: disable=import-outside-toplevel
    problems = []
    for name, db in _named_entries(dbs):
        problems += _spec_problems(db, "%s:pg_databases[%s]" % (vpath, name),
                                   pigsty_sql.normalize_database)
    return problems


def node_problems(conf, vpath):
    """Values of a cluster's configuration that vip-manager's YAML and Patroni's config
    print as they are."""
    problems = []
    if "pg_vip_interface" in conf and not (isinstance(conf["pg_vip_interface"], str)
                                           and INTERFACE_RE.fullmatch(conf["pg_vip_interface"])):
        problems.append("%s:pg_vip_interface: expected a network interface name (letters, "
                        "digits, '_', '.', '-', at most 15), got %s" % (
                            vpath, _word(conf["pg_vip_interface"])))
    if "pg_namespace" in conf and not (isinstance(conf["pg_namespace"], str)
                                       and NAMESPACE_RE.fullmatch(conf["pg_namespace"])):
        problems.append("%s:pg_namespace: expected a DCS namespace such as /service (names of "
                        "letters, digits, '_', '.', '-' between slashes), got %s" % (
                            vpath, _word(conf["pg_namespace"])))
    data = conf.get("pg_data")
    if "pg_data" in conf and not (isinstance(data, str) and PATH_RE.fullmatch(data)
                                  and "/../" not in data + "/" and "/./" not in data + "/"):
        problems.append("%s:pg_data: expected an absolute path of letters, digits, '_', '.', "
                        "'+', '-' (no '..'), got %s" % (vpath, _word(data)))
    return problems


# ------------------------------------------------------------------ Pigsty's parameters
# PostgreSQL's server encodings (initdb -E): names as PostgreSQL spells them, upper case.
SERVER_ENCODINGS = frozenset((
    "SQL_ASCII UTF8 EUC_JP EUC_CN EUC_KR EUC_TW EUC_JIS_2004 LATIN1 LATIN2 LATIN3 LATIN4 "
    "LATIN5 LATIN6 LATIN7 LATIN8 LATIN9 LATIN10 ISO_8859_5 ISO_8859_6 ISO_8859_7 ISO_8859_8 "
    "KOI8R KOI8U MULE_INTERNAL WIN866 WIN874 WIN1250 WIN1251 WIN1252 WIN1253 WIN1254 WIN1255 "
    "WIN1256 WIN1257 WIN1258").split())
# Locales every Debian node has without the locales package; others are generated by
# pgsql.install (locale.present) before Patroni's initdb.
BUILTIN_LOCALES = ("C", "POSIX", "C.UTF-8", "C.utf8")
LOCALE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9-]+)?(@[A-Za-z0-9]+)?$")
LIBRARY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")             # a Debian package name
TIMEZONE_RE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
SYSCTL_KEY_RE = re.compile(r"^[a-z0-9_]+([./][A-Za-z0-9_-]+)+$")
SYSCTL_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:/ \t,+-]{1,256}$")


def encoding_name(value):
    """PostgreSQL's name of an encoding given as Pigsty does (UTF8, utf-8, ...), or None."""
    name = str(value).upper().replace("UTF-8", "UTF8")
    return name if isinstance(value, str) and name in SERVER_ENCODINGS else None


def preload_libraries(value):
    """pg_libs ("a, b") as a list of names."""
    return [x.strip() for x in str(value).split(",") if x.strip()]


def initdb_problems(conf, vpath):
    """What initdb would refuse in the resolved pg_encoding / pg_lc_collate / pg_lc_ctype:
    UTF8 with a locale of another codeset, or another encoding with a UTF-8 locale (C and
    POSIX go with any encoding, SQL_ASCII with any locale)."""
    encoding = encoding_name(conf.get("pg_encoding", ""))
    if encoding in (None, "SQL_ASCII"):
        return []
    problems = []
    for key in ("pg_lc_collate", "pg_lc_ctype"):
        locale = conf.get(key)
        if not isinstance(locale, str) or locale in ("C", "POSIX") or "." not in locale:
            continue
        utf8 = locale.split(".", 1)[1].split("@")[0].lower().replace("-", "") == "utf8"
        if utf8 != (encoding == "UTF8"):    # (other codesets' names differ from PostgreSQL's)
            problems.append("%s:pg_encoding: %s does not match %s %s (initdb refuses it: use "
                            "a locale of that encoding, or C)" % (vpath, encoding, key, locale))
    return problems


def grantee_problems(conf, vpath):
    """pg_default_privileges' grantees that are no role of the cluster (its private part
    known: pg_users)."""
    import pigsty_sql  # pylint: disable=import-outside-toplevel
    try:
        granted = pigsty_sql.parse_default_privileges(conf.get("pg_default_privileges"))
    except ValueError:
        return []                   # reported by parameter_problems where it is set
    users = conf.get("pg_users") if isinstance(conf.get("pg_users"), list) else []
    known = {r["name"] for r in pigsty_sql.DEFAULT_ROLES}
    known |= {u.get("name") for u in users if isinstance(u, dict)}
    known |= {conf.get(k) for k in ("pg_dbsu", "pg_admin_username", "pg_monitor_username",
                                    "pg_replication_username")}
    return ["%s:pg_default_privileges: %s is not a role of this cluster (expected a dbrole_* "
            "role, a system user or one of pg_users)" % (vpath, grantee)
            for grantee in sorted({g for g, _k, _p in granted} - known)]


def parameter_problems(conf, vpath, keys=None):
    """The parameters taken over from Pigsty (initdb options, pg_libs, pg_extensions, the
    pg_default_* lists, pgbouncer's pool settings, node tuning, packages and admin user),
    each checked for what the
    file or command it goes to accepts. ``keys``: only these (the ones a scope sets)."""
    import pigsty_sql  # pylint: disable=import-outside-toplevel
    problems = []

    def has(key):
        return key in conf and (keys is None or key in keys)

    if has("pg_encoding") and encoding_name(conf["pg_encoding"]) is None:
        problems.append("%s:pg_encoding: expected a PostgreSQL server encoding such as UTF8, "
                        "got %s" % (vpath, _word(conf["pg_encoding"])))
    for key in ("pg_locale", "pg_lc_collate", "pg_lc_ctype"):
        if has(key) and not (isinstance(conf[key], str) and LOCALE_RE.fullmatch(conf[key])):
            problems.append("%s:%s: expected a locale name such as C.UTF-8 or en_US.UTF-8, got "
                            "%s" % (vpath, key, _word(conf[key])))
    for key in ("pg_checksum",):
        if has(key) and not isinstance(conf[key], bool):
            problems.append("%s:%s: expected true or false, got %s" % (vpath, key, _word(conf[key])))
    if has("pg_libs"):
        libs = preload_libraries(conf["pg_libs"]) if isinstance(conf["pg_libs"], str) else None
        if libs is None or not all(LIBRARY_RE.fullmatch(x) for x in libs):
            problems.append("%s:pg_libs: expected library names separated by commas, such as "
                            "'pg_stat_statements, auto_explain', got %s" % (vpath, _word(conf["pg_libs"])))
        elif "pg_stat_statements" not in libs:
            problems.append("%s:pg_libs: must include pg_stat_statements (the postgres "
                            "exporter reads its view), got %s" % (vpath, _word(conf["pg_libs"])))
    for key, example in (("pg_extensions", "postgresql-15-postgis-3"), ("node_packages", "htop")):
        if not has(key):
            continue
        pkgs = conf[key]
        if not isinstance(pkgs, list):
            problems.append("%s:%s: expected a list of Debian package names, got %s"
                            % (vpath, key, _word(pkgs)))
            pkgs = []
        for i, pkg in enumerate(pkgs):
            if not isinstance(pkg, str) or not PACKAGE_RE.fullmatch(pkg):
                problems.append("%s:%s[%d]: expected a Debian package name such as %s, got %s"
                                % (vpath, key, i, example, _word(pkg)))
    for key, field in (("pg_default_schemas", "schemas"), ("pg_default_extensions", "extensions")):
        if has(key):
            try:
                pigsty_sql.normalize_database({"name": "template1", field: conf[key]})
            except ValueError as exc:
                problems.append("%s:%s: %s" % (vpath, key, str(exc).split(": ", 1)[-1]))
    if has("pg_weight") and not (_is_int(conf["pg_weight"]) and 0 <= conf["pg_weight"] <= 256):
        problems.append("%s:pg_weight: expected HAProxy's server weight, an integer 0-256 (0: "
                        "no new connections), got %s" % (vpath, _word(conf["pg_weight"])))
    if has("pg_default_privileges"):
        try:
            pigsty_sql.parse_default_privileges(conf["pg_default_privileges"])
        except ValueError as exc:
            problems.append("%s:pg_default_privileges: %s" % (vpath, exc))
    if has("pgbouncer_poolmode") and conf["pgbouncer_poolmode"] not in POOL_MODES:
        problems.append("%s:pgbouncer_poolmode: expected one of %s, got %s" % (
            vpath, ", ".join(POOL_MODES), _word(conf["pgbouncer_poolmode"])))
    if has("pgbouncer_max_db_conn") and not (_is_int(conf["pgbouncer_max_db_conn"])
                                             and 0 <= conf["pgbouncer_max_db_conn"] <= 100000):
        problems.append("%s:pgbouncer_max_db_conn: expected a number of connections 0-100000 "
                        "(0: no limit), got %s" % (vpath, _word(conf["pgbouncer_max_db_conn"])))
    if has("node_timezone") and not (isinstance(conf["node_timezone"], str) and (
            conf["node_timezone"] == "" or TIMEZONE_RE.fullmatch(conf["node_timezone"]))):
        problems.append("%s:node_timezone: expected a time zone name such as Asia/Hong_Kong "
                        "(or '': keep the node's), got %s" % (vpath, _word(conf["node_timezone"])))
    if has("patroni_watchdog_mode") and conf["patroni_watchdog_mode"] is not False \
            and conf["patroni_watchdog_mode"] not in WATCHDOG_MODES:
        problems.append("%s:patroni_watchdog_mode: expected one of %s, got %s" % (
            vpath, ", ".join(WATCHDOG_MODES), _word(conf["patroni_watchdog_mode"])))
    problems += pigsty_crontab.problems(conf, vpath, keys)
    problems += pigsty_node_tune.problems(conf, vpath, keys)
    problems += pigsty_node_admin.problems(conf, vpath, keys)
    if has("node_sysctl_params"):
        params = conf["node_sysctl_params"]
        if not isinstance(params, dict):
            problems.append("%s:node_sysctl_params: expected a mapping of kernel parameter -> "
                            "value, got %s" % (vpath, _word(params)))
            params = {}
        for key, value in sorted(params.items(), key=lambda kv: str(kv[0])):
            if not isinstance(key, str) or not SYSCTL_KEY_RE.fullmatch(key):
                problems.append("%s:node_sysctl_params: %s is not a kernel parameter name "
                                "(such as vm.swappiness)" % (vpath, _word(key)))
            elif isinstance(value, bool) or not isinstance(value, (str, int, float)) \
                    or not SYSCTL_VALUE_RE.fullmatch(str(value)):
                problems.append("%s:node_sysctl_params:%s: expected a number or a word, got %s"
                                % (vpath, key, _word(value)))
    return problems


# ------------------------------------------------------------------ the inventory
def validate(inv, private=None):
    """Problems of every field a configuration file prints, for every cluster of the
    inventory ``inv`` (the ``pigsty`` pillar key); the private part (users, databases,
    passwords) only of the clusters named in ``private`` (None: all). Messages name the
    pillar path and never carry a password. Malformed structures are left to the inventory
    checks (they report them)."""
    clusters = inv.get("clusters") if isinstance(inv, dict) else None
    if not isinstance(clusters, dict):
        return []
    problems = []
    for name in sorted(clusters, key=str):
        problems += cluster_problems(inv, name, private is None or name in private)
    return problems


def cluster_problems(inv, name, full=True):
    """The problems of cluster ``name`` (its private part too when ``full``)."""
    import pigsty_inventory  # pylint: disable=import-outside-toplevel  (it imports this module)
    cls = (inv.get("clusters") or {}).get(name)
    if not isinstance(inv.get("vars") or {}, dict) or not isinstance(cls, dict) \
            or not isinstance(cls.get("vars") or {}, dict):
        return []
    problems = []
    vpath = "pigsty:clusters:%s:vars" % name
    conf = pigsty_inventory.cluster_vars(inv, name)
    problems += node_problems(conf, vpath)
    problems += parameter_problems(conf, vpath, keys=set(cls.get("vars") or {}))
    problems += initdb_problems(conf, vpath)
    services = conf.get("pg_services")
    for i, svc in enumerate(services if isinstance(services, list) else []):
        problems += service_problems(svc, "%s:pg_services[%d]" % (vpath, i))
    if full:
        problems += secret_problems(conf, vpath)
        problems += user_problems(conf.get("pg_users"), vpath)
        problems += database_problems(conf.get("pg_databases"), vpath)
        problems += grantee_problems(conf, vpath)
    return problems
