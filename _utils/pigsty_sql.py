"""Pigsty's users and databases as SQL: validation, quoting, SCRAM verifiers, catalog diffs.

A user or database spec (Pigsty's ``pg_users`` / ``pg_databases`` entries) is first checked
and filled with defaults by ``normalize_user`` / ``normalize_database``; the ``*_plan``
functions then compare it with what the catalog holds (``current``, read by the execution
module) and return ``(changes, statements)``: a dict for Salt's ``changes`` and the SQL that
makes the catalog match. An empty plan means nothing to do, so applying twice is a no-op.

Fields left out of a spec (``None``) are not managed: ``roles``, ``parameters`` (of a user
or a database), ``comment``, ``password``, the expiry, ``schemas``, ``extensions``,
``revokeconn``; a given value is the whole truth (``roles: []`` revokes every membership,
``parameters: {}`` resets every setting). A database's ``baseline`` (a SQL file of the state
tree, pigsty_baseline) is run by the execution module once, right after it creates the
database. Boolean attributes and connection limits always have a value (Pigsty's defaults).

Passwords: SQL carries only a verifier, never the plain text: a plain password becomes a
SCRAM-SHA-256 verifier computed here with a random salt. Idempotence comes from verifying
what is stored: a stored verifier that the pillar password reproduces (with the stored salt
and iteration count) is kept, so applying twice changes nothing. An md5 or SCRAM hash given
as the password is stored as it is. Pgbouncer's userlist keeps the verifier Postgres stores
(``password_hash(..., keep=...)``), which SCRAM pass-through needs. No message, change or
log line carries a password or verifier (``redact``).

Pure Python (no Salt, no driver): the execution module and the unit tests import it.
"""
import base64
import datetime
import hashlib
import hmac
import os
import re
import stringprep
import unicodedata

import pigsty_baseline
import pigsty_defaults as D
from pigsty_inventory import PG_NAME_RE

EXTENSION_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
PARAMETER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
ENCODING_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
LOCALE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.@-]{0,63}$")
MD5_RE = re.compile(r"^md5[0-9a-f]{32}$")
SCRAM_RE = re.compile(r"^SCRAM-SHA-256\$([1-9][0-9]*):([A-Za-z0-9+/]+=*)"
                      r"\$([A-Za-z0-9+/]+=*):([A-Za-z0-9+/]+=*)$")
SCRAM_ITERATIONS = 4096
SCRAM_SALT_BYTES = 16            # as PostgreSQL (SCRAM_DEFAULT_SALT_LEN)
SCRAM_MAX_ITERATIONS = 1000000    # a stored verifier above this is replaced, not verified
_PASSWORD_LITERAL = re.compile(r"PASSWORD\s+E?'(?:[^']|'')*'?", re.IGNORECASE)


# ------------------------------------------------------------------ quoting
def _text(value, what):
    if not isinstance(value, str):
        raise TypeError("%s: expected a string, got %s" % (what, type(value).__name__))
    if "\x00" in value:
        raise ValueError("%s: NUL characters cannot be stored in PostgreSQL" % what)
    return value


def quote_ident(name):
    """A double-quoted identifier: exact spelling, safe for any string without NUL."""
    return '"%s"' % _text(name, "identifier").replace('"', '""')


def quote_literal(value):
    """A string constant, safe whatever standard_conforming_strings is (as PostgreSQL's own
    quote_literal: quotes doubled, and with a backslash an E'' string with it doubled)."""
    value = _text(value, "literal").replace("'", "''")
    if "\\" in value:
        return "E'%s'" % value.replace("\\", "\\\\")
    return "'%s'" % value


def redact(text):
    """``text`` (SQL or an error message quoting it) with every PASSWORD literal as '***'."""
    return _PASSWORD_LITERAL.sub("PASSWORD '***'", text)


def outside_transaction(statement):
    """True for the statements PostgreSQL refuses inside a transaction block."""
    return statement.startswith(("CREATE DATABASE ", "DROP DATABASE "))


# ------------------------------------------------------------------ passwords
_SASL_PROHIBITED = (stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
                    stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
                    stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
                    stringprep.in_table_c9, stringprep.in_table_a1)


def saslprep(password):
    """The password as PostgreSQL's pg_saslprep() prepares it for SCRAM (RFC 4013).

    ASCII passwords are used unchanged. Otherwise: non-ASCII spaces become spaces, characters
    "commonly mapped to nothing" go, NFKC; when a prohibited or unassigned (Unicode 3.2)
    character or a bidi violation remains, PostgreSQL (and so this function) falls back to
    the raw password. Limitation: NFKC comes from Python's Unicode tables, PostgreSQL's from
    its own; both keep the stability guarantees, so they agree on every code point that
    Unicode 3.2 assigns (the others are prohibited anyway).
    """
    if password.isascii():
        return password
    mapped = "".join(" " if stringprep.in_table_c12(ch) else ch
                     for ch in password if not stringprep.in_table_b1(ch))
    if not mapped:
        return password
    prepped = unicodedata.normalize("NFKC", mapped)
    if any(check(ch) for ch in prepped for check in _SASL_PROHIBITED):
        return password
    if any(stringprep.in_table_d1(ch) for ch in prepped):
        if (any(stringprep.in_table_d2(ch) for ch in prepped)
                or not stringprep.in_table_d1(prepped[0])
                or not stringprep.in_table_d1(prepped[-1])):
            return password
    return prepped


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def scram_verifier(username, password, iterations=SCRAM_ITERATIONS, salt=None):
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it in pg_authid.rolpassword.

    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (RFC 5802 / RFC 7677):
    SaltedPassword = PBKDF2-HMAC-SHA256(saslprep(password), salt, iterations),
    StoredKey = SHA256(HMAC(SaltedPassword, "Client Key")),
    ServerKey = HMAC(SaltedPassword, "Server Key").
    The salt defaults to 16 random bytes, as PostgreSQL's own: the same password gives a
    different verifier each time, for each user and in each cluster. ``username`` does not
    enter the computation (SCRAM does not salt with it); it names the role for readers.
    """
    del username
    if salt is None:
        salt = os.urandom(SCRAM_SALT_BYTES)
    stored_key, server_key = _scram_keys(password, salt, iterations)
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, _b64(salt), _b64(stored_key),
                                          _b64(server_key))


def _scram_keys(password, salt, iterations):
    """(StoredKey, ServerKey) of ``password`` with this salt and iteration count."""
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def scram_verifies(verifier, password, min_iterations=SCRAM_ITERATIONS):
    """True when ``verifier`` (a stored SCRAM-SHA-256 verifier) was computed from the plain
    ``password``: ClientKey, StoredKey and ServerKey are computed again with the verifier's
    own salt and iteration count and compared (in constant time). A verifier with fewer than
    ``min_iterations`` PBKDF2 rounds, or that is not a well-formed SCRAM verifier (md5,
    None, garbage), does not verify: it is replaced by a stronger one."""
    match = SCRAM_RE.fullmatch(verifier) if isinstance(verifier, str) else None
    if match is None or not isinstance(password, str):
        return False
    iterations = int(match.group(1))
    if iterations < min_iterations or iterations > SCRAM_MAX_ITERATIONS:
        return False
    try:
        salt, stored, server = (base64.b64decode(match.group(i), validate=True)
                                for i in (2, 3, 4))
    except ValueError:
        return False
    stored_key, server_key = _scram_keys(password, salt, iterations)
    return hmac.compare_digest(stored_key, stored) and hmac.compare_digest(server_key, server)


def is_hashed(password):
    """True for what PostgreSQL stores as given: ``md5`` + 32 lowercase hex digits, or a
    well-formed SCRAM-SHA-256 verifier."""
    return isinstance(password, str) and bool(MD5_RE.fullmatch(password)
                                              or SCRAM_RE.fullmatch(password))


def password_matches(stored, password):
    """True when what pg_authid (or pgbouncer's userlist) holds, ``stored``, already stands
    for the pillar's ``password``: the same hash when the pillar gives a hash, else a SCRAM
    verifier that the plain password reproduces (see scram_verifies). An md5 hash of a plain
    password does not match: it is upgraded to SCRAM."""
    if stored is None or password is None:
        return False
    if is_hashed(password):
        return stored == password
    return scram_verifies(stored, password)


def password_hash(username, password, keep=()):
    """What to store for ``password``: a hash as given; for a plain password the first of
    ``keep`` (verifiers already stored: pg_authid's, the userlist's) that it reproduces, else
    a new verifier with a random salt. So a re-apply keeps what is there, and pgbouncer's
    userlist can carry exactly the verifier Postgres stores (SCRAM pass-through needs the same
    salt, iteration count and keys on both sides)."""
    if is_hashed(password):
        return password
    for stored in keep:
        if password_matches(stored, password):
            return stored
    return scram_verifier(username, password)


# ------------------------------------------------------------------ pgbouncer's userlist
_USERLIST_FIELD = r'"((?:[^"]|"")*)"'
_USERLIST_LINE = re.compile(r"^\s*%s\s+%s" % (_USERLIST_FIELD, _USERLIST_FIELD))


def parse_userlist(text):
    """{user: secret} of a pgbouncer auth_file (``"user" "secret"`` lines, ``""`` inside a
    field for a quote, anything else ignored, as pgbouncer reads it)."""
    out = {}
    for line in (text or "").splitlines():
        match = _USERLIST_LINE.match(line)
        if match:
            out[match.group(1).replace('""', '"')] = match.group(2).replace('""', '"')
    return out


def userlist_line(name, secret):
    """One auth_file line; refuses what pgbouncer's line format cannot carry."""
    for value in (name, secret):
        if not isinstance(value, str) or any(c in value for c in "\x00\r\n"):
            raise ValueError("pgbouncer userlist: a name or secret is not a single-line string")
    return '"%s" "%s"' % (name.replace('"', '""'), secret.replace('"', '""'))


def _check_password(value):
    if not isinstance(value, str) or not value:
        return "a non-empty string (plain text, or an md5/SCRAM-SHA-256 hash)"
    if "\x00" in value:
        return "a password without NUL characters"
    if value.startswith("SCRAM-SHA-256$") and not SCRAM_RE.fullmatch(value):
        return ("a well-formed verifier SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:"
                "<ServerKey> (it starts like one but is malformed)")
    if re.fullmatch(r"md5[0-9a-fA-F]{32}", value) and not MD5_RE.fullmatch(value):
        return "an md5 hash in lowercase hex (PostgreSQL takes any other case as plain text)"
    return None


# ------------------------------------------------------------------ validation
def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _bool(value):
    return None if isinstance(value, bool) else "true or false"


def _ident(value):
    if isinstance(value, str) and PG_NAME_RE.fullmatch(value):
        return None
    return ("a safe identifier (lowercase letters, digits, '_', not starting with a digit, "
            "at most 63 characters)")


def _ident_list(value):
    if (isinstance(value, list) and all(_ident(v) is None for v in value)
            and len(set(value)) == len(value)):
        return None
    return "a list of distinct names (lowercase letters, digits, '_')"


def _matching(regex, expected):
    return lambda value: None if isinstance(value, str) and regex.fullmatch(value) else expected


def _connlimit(value):
    return None if _is_int(value) and value >= -1 else "an integer >= -1 (-1: no limit)"


def _text_field(value):
    return None if isinstance(value, str) and "\x00" not in value else "a string"


def _state(value):
    return None if value in ("present", "absent") else "'present' or 'absent'"


def _expire_in(value):
    return None if _is_int(value) and value >= 0 else "a number of days >= 0"


def _expire_at(value):
    if value == "infinity" or (isinstance(value, datetime.date)
                               and not isinstance(value, datetime.datetime)):
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            datetime.date.fromisoformat(value)
            return None
        except ValueError:
            pass
    return "a date 'YYYY-MM-DD' or 'infinity'"


def _parameter_value(value):
    if isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return "\x00" not in value
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, str) and v and "\x00" not in v for v in value))


def _parameters(value):
    if (isinstance(value, dict)
            and all(isinstance(k, str) and PARAMETER_RE.fullmatch(k) for k in value)
            and all(_parameter_value(v) for v in value.values())
            and len({k.lower() for k in value}) == len(value)):
        return None
    return ("a mapping of parameter name -> value (a string, number, true/false, or a list "
            "of strings for list parameters such as search_path)")


def _extensions(value):
    if isinstance(value, list):
        names = []
        for ext in value:
            if isinstance(ext, str):
                names.append(ext)
            elif (isinstance(ext, dict) and set(ext) <= {"name", "schema"}
                  and (ext.get("schema") is None or _ident(ext["schema"]) is None)):
                names.append(ext.get("name"))
            else:
                break
        else:
            if (all(isinstance(n, str) and EXTENSION_RE.fullmatch(n) for n in names)
                    and len(set(names)) == len(names)):
                return None
    return "a list of distinct extension names or {name: NAME, schema: SCHEMA} mappings"


def _baseline(value):
    return pigsty_baseline.name_problem(value)


# field -> (default, check returning None or what was expected). ``None`` default: unmanaged.
USER_FIELDS = {
    "password": (None, _check_password),
    "login": (True, _bool),
    "superuser": (False, _bool),
    "createdb": (False, _bool),
    "createrole": (False, _bool),
    "inherit": (True, _bool),
    "replication": (False, _bool),
    "bypassrls": (False, _bool),
    "connlimit": (-1, _connlimit),
    "expire_in": (None, _expire_in),
    "expire_at": (None, _expire_at),
    "roles": (None, _ident_list),
    "parameters": (None, _parameters),
    "comment": (None, _text_field),
    "pgbouncer": (False, _bool),
    "state": ("present", _state),
}
SECRET_FIELDS = {"password"}

DATABASE_FIELDS = {
    "owner": (None, _ident),
    "template": (None, _ident),
    "encoding": (None, _matching(ENCODING_RE, "an encoding name such as UTF8")),
    "locale": (None, _matching(LOCALE_RE, "a locale name such as C.UTF-8")),
    "lc_collate": (None, _matching(LOCALE_RE, "a locale name such as C.UTF-8")),
    "lc_ctype": (None, _matching(LOCALE_RE, "a locale name such as C.UTF-8")),
    "tablespace": (None, _ident),
    "allowconn": (True, _bool),
    "revokeconn": (None, _bool),
    "connlimit": (-1, _connlimit),
    "comment": (None, _text_field),
    "schemas": (None, _ident_list),
    "extensions": (None, _extensions),
    "parameters": (None, _parameters),
    "baseline": (None, _baseline),
    "pgbouncer": (True, _bool),
    "state": ("present", _state),
}


def _normalize(kind, spec, fields):
    """(normalized spec, problems); the spec's name is checked like every other field."""
    if not isinstance(spec, dict):
        raise ValueError("%s: expected a mapping of fields, got %s" % (kind, type(spec).__name__))
    name = spec.get("name")
    problems = []
    if _ident(name) is not None:
        problems.append("name: expected %s, got %r" % (_ident(name), name))
    for key in sorted(set(spec) - set(fields) - {"name"}, key=str):
        problems.append("%s: unknown field (expected one of: %s)" % (
            key, ", ".join(["name"] + sorted(fields))))
    out = {"name": name}
    for key, (default, check) in fields.items():
        value = spec.get(key, default)
        if value is None and default is None:
            out[key] = None
            continue
        expected = check(value)
        if expected is not None:
            got = "" if key in SECRET_FIELDS else ", got %r" % (value,)
            problems.append("%s: expected %s%s" % (key, expected, got))
        out[key] = value
    return out, problems


def _raise(kind, name, problems):
    if problems:
        raise ValueError("%s %s: %s" % (kind, name if isinstance(name, str) else repr(name),
                                        "; ".join(problems)))


def _parameter_text(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def normalize_user(spec):
    """The user spec with every field, defaults filled in; ValueError naming each bad field."""
    user, problems = _normalize("user", spec, USER_FIELDS)
    if user["expire_in"] is not None and user["expire_at"] is not None:
        problems.append("expire_in: conflicts with expire_at (give one of them)")
    if isinstance(user["roles"], list) and user["name"] in user["roles"]:
        problems.append("roles: a role cannot be a member of itself")
    _raise("user", user["name"], problems)
    if isinstance(user["expire_at"], datetime.date):
        user["expire_at"] = user["expire_at"].isoformat()
    _lower_parameters(user)
    return user


def _lower_parameters(spec):
    """Parameter names as PostgreSQL stores them (lower case), values as text."""
    if spec["parameters"] is not None:
        spec["parameters"] = {k.lower(): _parameter_text(v) for k, v in spec["parameters"].items()}


def normalize_database(spec):
    """The database spec with every field, defaults filled in; ValueError naming each bad
    field. Extensions become ``{"name", "schema"}`` mappings (schema None: the default)."""
    db, problems = _normalize("database", spec, DATABASE_FIELDS)
    if db["allowconn"] is False and (db["schemas"] or db["extensions"]):
        problems.append("allowconn: false conflicts with schemas/extensions (nobody can "
                        "connect to create them)")
    if db["baseline"] is not None and db["allowconn"] is False:
        problems.append("baseline: conflicts with allowconn: false (nobody can connect to "
                        "run it)")
    _raise("database", db["name"], problems)
    _lower_parameters(db)
    if db["extensions"] is not None:
        db["extensions"] = [{"name": e, "schema": None} if isinstance(e, str)
                            else {"name": e["name"], "schema": e.get("schema")}
                            for e in db["extensions"]]
    return db


# ------------------------------------------------------------------ role parameters
def role_parameters(setconfig):
    """pg_db_role_setting.setconfig (['name=value', ...] or None) as {name: value}."""
    return dict((item.split("=", 1) + [""])[:2] for item in (setconfig or []))


_LIST_ITEM = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([^,"]*?))\s*(,|\Z)')


def _split_list(text):
    """A stored list setting ('"$user", public') as its elements, as PostgreSQL splits it."""
    items, pos = [], 0
    while True:
        match = _LIST_ITEM.match(text, pos)
        if match is None:
            return [text]
        quoted, plain, separator = match.groups()
        items.append(plain if quoted is None else quoted.replace('""', '"'))
        if separator != ",":
            return items
        pos = match.end()


def _parameter_matches(stored, wanted):
    if stored is None:
        return False
    if isinstance(wanted, list):
        return _split_list(stored) == wanted
    return stored == wanted or _split_list(stored) == [wanted]


def _parameter_sql(value):
    if isinstance(value, list):
        return ", ".join(quote_literal(v) for v in value)
    return quote_literal(value)


# ------------------------------------------------------------------ roles
ROLE_ATTRIBUTES = (("superuser", "SUPERUSER"), ("createdb", "CREATEDB"),
                   ("createrole", "CREATEROLE"), ("inherit", "INHERIT"), ("login", "LOGIN"),
                   ("replication", "REPLICATION"), ("bypassrls", "BYPASSRLS"))


def _expiry(user, today):
    if user["expire_at"] is not None:
        return user["expire_at"]
    if user["expire_in"] is not None:
        return (today + datetime.timedelta(days=user["expire_in"])).isoformat()
    return None


def _change(changes, key, old, new):
    if old != new:
        changes[key] = {"old": old, "new": new}


def user_plan(desired, current, today=None):
    """(changes, statements) that make the role ``current`` match the normalized spec.

    ``current``: None when the role does not exist, else a dict with the USER_FIELDS'
    attribute keys (superuser ... bypassrls, connlimit) plus ``valid_until``
    ('YYYY-MM-DD', 'infinity' or None), ``roles`` (the roles it is a member of),
    ``parameters`` ({name: stored value}, see role_parameters), ``comment`` and
    ``password`` (the stored verifier or None). ``today`` anchors ``expire_in``.
    The password changes only when the stored verifier does not verify against the spec's
    password (password_matches); a new one gets a random salt.
    """
    role = quote_ident(desired["name"])
    if desired["state"] == "absent":
        return ({"role": "dropped"}, ["DROP ROLE %s" % role]) if current else ({}, [])
    cur = current or {}
    changes = {"role": "created"} if current is None else {}
    options = []
    for key, keyword in ROLE_ATTRIBUTES:
        if current is None or cur.get(key) != desired[key]:
            options.append(keyword if desired[key] else "NO" + keyword)
            _change(changes, key, cur.get(key), desired[key])
    if current is None or cur.get("connlimit") != desired["connlimit"]:
        options.append("CONNECTION LIMIT %d" % desired["connlimit"])
        _change(changes, "connlimit", cur.get("connlimit"), desired["connlimit"])
    if desired["password"] is not None and not password_matches(cur.get("password"),
                                                                 desired["password"]):
        verifier = password_hash(desired["name"], desired["password"])
        options.append("PASSWORD %s" % quote_literal(verifier))
        changes["password"] = "changed"
    expiry = _expiry(desired, today or datetime.date.today())
    if expiry is not None and cur.get("valid_until") != expiry:
        options.append("VALID UNTIL %s" % quote_literal(expiry))
        _change(changes, "valid_until", cur.get("valid_until"), expiry)
    statements = []
    if current is None:
        statements.append("CREATE ROLE %s WITH %s" % (role, " ".join(options)))
    elif options:
        statements.append("ALTER ROLE %s WITH %s" % (role, " ".join(options)))
    statements += _membership_plan(desired, cur, changes)
    statements += _parameters_plan(desired, cur, changes)
    if desired["comment"] is not None and (cur.get("comment") or "") != desired["comment"]:
        statements.append("COMMENT ON ROLE %s IS %s" % (
            role, quote_literal(desired["comment"]) if desired["comment"] else "NULL"))
        _change(changes, "comment", cur.get("comment"), desired["comment"])
    return changes, statements


def _membership_plan(desired, cur, changes):
    if desired["roles"] is None:
        return []
    role = quote_ident(desired["name"])
    have = cur.get("roles") or []
    granted = [r for r in desired["roles"] if r not in have]
    revoked = [r for r in have if r not in desired["roles"]]
    if granted or revoked:
        changes["roles"] = {k: v for k, v in (("granted", granted), ("revoked", revoked)) if v}
    return (["GRANT %s TO %s" % (quote_ident(r), role) for r in granted]
            + ["REVOKE %s FROM %s" % (quote_ident(r), role) for r in revoked])


def _parameters_plan(desired, cur, changes, kind="ROLE"):
    """ALTER ROLE|DATABASE name SET/RESET: the spec's ``parameters`` (None: unmanaged) are
    the whole truth, so a stored setting the spec no longer names is reset. ``cur``: the
    object's ``parameters`` as pg_db_role_setting holds them (see role_parameters)."""
    if desired["parameters"] is None:
        return []
    target = "%s %s" % (kind, quote_ident(desired["name"]))
    have = {k.lower(): v for k, v in (cur.get("parameters") or {}).items()}
    wanted = desired["parameters"]
    to_set = {k: v for k, v in sorted(wanted.items()) if not _parameter_matches(have.get(k), v)}
    to_reset = sorted(k for k in have if k not in wanted)
    if to_set or to_reset:
        changes["parameters"] = {k: v for k, v in (("set", to_set), ("reset", to_reset)) if v}
    return (["ALTER %s SET %s = %s" % (target, _guc_name(k), _parameter_sql(v))
             for k, v in to_set.items()]
            + ["ALTER %s RESET %s" % (target, _guc_name(k)) for k in to_reset])


def _guc_name(name):
    return ".".join(quote_ident(part) for part in name.split("."))


# ------------------------------------------------------------------ Pigsty's default roles
DEFAULT_ROLES = [
    {"name": "dbrole_readonly", "login": False, "comment": "role for global read-only access"},
    {"name": "dbrole_offline", "login": False,
     "comment": "role for restricted read-only access"},
    {"name": "dbrole_readwrite", "login": False, "roles": ["dbrole_readonly"],
     "comment": "role for global read-write access"},
    {"name": "dbrole_admin", "login": False, "roles": ["pg_monitor", "dbrole_readwrite"],
     "comment": "role for object creation"},
]

# pg_default_acl.defaclobjtype -> the object kind's keyword in ALTER DEFAULT PRIVILEGES
DEFAULT_ACL_KINDS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "n": "SCHEMAS",
                     "T": "TYPES"}
# What ALTER DEFAULT PRIVILEGES can grant on each kind of object.
DEFAULT_ACL_PRIVILEGES = {
    "TABLES": ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"),
    "SEQUENCES": ("USAGE", "SELECT", "UPDATE"), "FUNCTIONS": ("EXECUTE",),
    "SCHEMAS": ("USAGE", "CREATE"), "TYPES": ("USAGE",),
}
_DEFAULT_PRIVILEGE_RE = re.compile(r"\s*GRANT\s+(.+?)\s+ON\s+(\w+)\s+TO\s+(\S+)\s*", re.I)


def parse_default_privileges(lines):
    """Pigsty's pg_default_privileges ("GRANT SELECT, INSERT ON TABLES TO role", ...) as
    (grantee, kind, privilege) triples; ValueError naming each line it cannot read."""
    if not isinstance(lines, list):
        raise ValueError("expected a list of \"GRANT PRIVILEGE[, ...] ON KIND TO ROLE\" lines")
    out, problems = [], []
    for i, line in enumerate(lines):
        m = _DEFAULT_PRIVILEGE_RE.fullmatch(line) if isinstance(line, str) else None
        kind = m.group(2).upper() if m else None
        privs = [p.strip().upper() for p in m.group(1).split(",")] if m else []
        if m is None or kind not in DEFAULT_ACL_PRIVILEGES or not PG_NAME_RE.fullmatch(m.group(3)) \
                or not privs or any(p not in DEFAULT_ACL_PRIVILEGES[kind] for p in privs):
            problems.append("[%d] %r: expected \"GRANT PRIVILEGE[, ...] ON KIND TO ROLE\" with KIND "
                            "one of %s and its privileges (e.g. SELECT, INSERT on TABLES; USAGE, "
                            "CREATE on SCHEMAS), ROLE a role name" % (
                                i, line, ", ".join(DEFAULT_ACL_PRIVILEGES)))
            continue
        out += [(m.group(3), kind, p) for p in privs if (m.group(3), kind, p) not in out]
    if problems:
        raise ValueError("; ".join(problems))
    return out


# (grantee, object kind, privilege): Pigsty's pg_default_privileges, ours by default.
DEFAULT_PRIVILEGES = parse_default_privileges(D.DEFAULTS["pg_default_privileges"])


def default_privileges_sql(admin_user, current=(), privileges=None):
    """Pigsty's default privileges on objects that ``admin_user`` will create, in every
    schema (so also in the schemas that ``schemas:`` adds; schema privileges cannot be
    limited to one schema anyway). ``current``: the (grantee, kind, privilege) triples that
    pg_default_acl already holds for that role; only the missing ones are granted.
    ``privileges``: the triples to grant (parse_default_privileges); ours by default.
    Default privileges live in each database: run them where objects will be created
    (template1 passes them on to the databases created from it)."""
    have = set(current)
    return ["ALTER DEFAULT PRIVILEGES FOR ROLE %s GRANT %s ON %s TO %s" % (
        quote_ident(admin_user), priv, kind, quote_ident(grantee))
        for grantee, kind, priv in (DEFAULT_PRIVILEGES if privileges is None else privileges)
        if (grantee, kind, priv) not in have]


# ------------------------------------------------------------------ databases
def _encoding_key(value):
    return value.upper().replace("-", "").replace("_", "")


def _locale_key(value):
    return value.lower().replace("utf-8", "utf8")


def _fixed_at_creation(db):
    """(field, asked value, comparison key) of what only CREATE DATABASE can set."""
    return [("encoding", db["encoding"], _encoding_key),
            ("lc_collate", db["lc_collate"] or db["locale"], _locale_key),
            ("lc_ctype", db["lc_ctype"] or db["locale"], _locale_key),
            ("tablespace", db["tablespace"], str)]


def database_plan(desired, current):
    """(changes, statements) run in the maintenance database: CREATE/DROP DATABASE (run
    them outside a transaction, see outside_transaction) and ALTER/COMMENT/GRANT.

    ``current``: None, or a dict with owner, encoding, lc_collate, lc_ctype, tablespace,
    allowconn, connlimit, comment, public_connect (whether PUBLIC may connect) and
    parameters (the database's own settings, {name: stored value}: ALTER DATABASE SET,
    managed as a user's are: a name the spec drops is reset).
    ValueError when the existing database differs in what cannot be altered (encoding,
    locale, tablespace). The template is not recorded by PostgreSQL: it is used only at
    creation and cannot be checked afterwards.
    """
    name = desired["name"]
    db = quote_ident(name)
    if desired["state"] == "absent":
        # WITH (FORCE): pgbouncer's idle server connections (and the clients') would make
        # a plain DROP fail; pillar asks for the database to go, so its sessions end
        return ({"database": "dropped"}, ["DROP DATABASE %s WITH (FORCE)" % db]) if current else ({}, [])
    fixed = _fixed_at_creation(desired)
    changes, statements = {}, []
    if current is None:
        changes["database"] = "created"
        options = [] if desired["owner"] is None else ["OWNER %s" % quote_ident(desired["owner"])]
        if desired["template"] is not None:
            options.append("TEMPLATE %s" % quote_ident(desired["template"]))
        for field, value, _key in fixed:
            if value is not None:
                options.append("%s %s" % (field.upper(), quote_ident(value) if field ==
                                          "tablespace" else quote_literal(value)))
                changes[field] = value
        options.append("ALLOW_CONNECTIONS %s" % str(desired["allowconn"]).lower())
        options.append("CONNECTION LIMIT %d" % desired["connlimit"])
        statements.append("CREATE DATABASE %s WITH %s" % (db, " ".join(options)))
        _change(changes, "owner", None, desired["owner"])
        current = {"allowconn": desired["allowconn"], "connlimit": desired["connlimit"],
                   "public_connect": True, "parameters": {}}
    else:
        wrong = ["%s is %r (asked: %r)" % (field, current.get(field), value)
                 for field, value, key in fixed
                 if value is not None and key(value) != key(current.get(field) or "")]
        if wrong:
            raise ValueError("database %s: %s; encoding, locale and tablespace are fixed when a "
                             "database is created (dump it, drop it and create it again to "
                             "change them)" % (name, "; ".join(wrong)))
        if desired["owner"] is not None and current.get("owner") != desired["owner"]:
            statements.append("ALTER DATABASE %s OWNER TO %s" % (db, quote_ident(desired["owner"])))
            _change(changes, "owner", current.get("owner"), desired["owner"])
        if current.get("allowconn") != desired["allowconn"]:
            statements.append("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %s" % (
                db, str(desired["allowconn"]).lower()))
            _change(changes, "allowconn", current.get("allowconn"), desired["allowconn"])
        if current.get("connlimit") != desired["connlimit"]:
            statements.append("ALTER DATABASE %s WITH CONNECTION LIMIT %d" % (
                db, desired["connlimit"]))
            _change(changes, "connlimit", current.get("connlimit"), desired["connlimit"])
    if desired["comment"] is not None and (current.get("comment") or "") != desired["comment"]:
        statements.append("COMMENT ON DATABASE %s IS %s" % (
            db, quote_literal(desired["comment"]) if desired["comment"] else "NULL"))
        _change(changes, "comment", current.get("comment"), desired["comment"])
    if desired["revokeconn"] is not None and current.get("public_connect") is desired["revokeconn"]:
        statements.append("%s CONNECT ON DATABASE %s %s PUBLIC" % (
            ("REVOKE", db, "FROM") if desired["revokeconn"] else ("GRANT", db, "TO")))
        _change(changes, "revokeconn", not desired["revokeconn"], desired["revokeconn"])
    statements += _parameters_plan(desired, current, changes, "DATABASE")
    return changes, statements


def database_inner_plan(desired, current_schemas, current_extensions):
    """(changes, statements) run inside the database: missing schemas (owned by the
    database's owner) and extensions. Nothing is ever dropped here.

    ``current_schemas``: names of the schemas; ``current_extensions``: {name: schema}.
    """
    owner = desired["owner"]
    authorization = "" if owner is None else " AUTHORIZATION %s" % quote_ident(owner)
    changes, statements = {}, []
    schemas = [s for s in desired["schemas"] or [] if s not in set(current_schemas)]
    if schemas:
        changes["schemas"] = {"created": schemas}
    statements += ["CREATE SCHEMA IF NOT EXISTS %s%s" % (quote_ident(s), authorization)
                   for s in schemas]
    created, moved = [], {}
    for ext in desired["extensions"] or []:
        name, schema = ext["name"], ext["schema"]
        target = "" if schema is None else " WITH SCHEMA %s" % quote_ident(schema)
        if name not in current_extensions:
            created.append(name)
            statements.append("CREATE EXTENSION IF NOT EXISTS %s%s" % (quote_ident(name), target))
        elif schema is not None and current_extensions[name] != schema:
            moved[name] = {"old": current_extensions[name], "new": schema}
            statements.append("ALTER EXTENSION %s SET SCHEMA %s" % (
                quote_ident(name), quote_ident(schema)))
    if created or moved:
        changes["extensions"] = {k: v for k, v in (("created", created), ("moved", moved)) if v}
    return changes, statements
