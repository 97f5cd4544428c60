"""pigsty_sql: quoting, SCRAM verifiers, spec validation and the catalog diffs."""
import base64
import datetime
import hashlib
import hmac
import re

import pytest

import pigsty_sql as sql


# the plans' halves, with the spec normalized first (what the states do)
def user_sql(desired, current, today=None):
    return sql.user_plan(sql.normalize_user(desired), current, today)[1]


def user_changes(desired, current, today=None):
    return sql.user_plan(sql.normalize_user(desired), current, today)[0]


def database_sql(desired, current):
    return sql.database_plan(sql.normalize_database(desired), current)[1]


def database_changes(desired, current):
    return sql.database_plan(sql.normalize_database(desired), current)[0]


def database_inner_sql(desired, current_schemas, current_extensions):
    return sql.database_inner_plan(sql.normalize_database(desired), current_schemas, current_extensions)[1]


HOSTILE = ["pa'ss\"w;rd\\", "'; DROP ROLE postgres; --", '"', "'", "\\", "\\'", "a''b",
           "x\"y'z\\w", "tab\there", "new\nline", "caf\u00e9", ""]
SECRET = "Sup3r'Secret\\Pw"


# ------------------------------------------------------------------ quoting
@pytest.mark.parametrize("text", HOSTILE)
def test_quote_ident_doubles_quotes_and_encloses(text):
    quoted = sql.quote_ident(text)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert quoted[1:-1].replace('""', "").count('"') == 0
    assert quoted[1:-1].replace('""', '"') == text


@pytest.mark.parametrize("text", HOSTILE)
def test_quote_literal_round_trips(text):
    quoted = sql.quote_literal(text)
    escaped = quoted.startswith("E'")
    body = quoted[2:-1] if escaped else quoted[1:-1]
    assert quoted.endswith("'")
    assert body.replace("''", "").count("'") == 0        # no quote ends the literal early
    assert escaped == ("\\" in text)
    if escaped:
        body = body.replace("\\\\", "\\")
    assert body.replace("''", "'") == text


def test_quote_literal_examples():
    assert sql.quote_literal("it's") == "'it''s'"
    assert sql.quote_literal("a\\b") == "E'a\\\\b'"
    assert sql.quote_ident('we"ird') == '"we""ird"'


@pytest.mark.parametrize("fun", [sql.quote_ident, sql.quote_literal])
def test_quoting_rejects_nul_and_non_strings(fun):
    with pytest.raises(ValueError) as err:
        fun("pass\x00word")
    assert "NUL" in str(err.value) and "pass" not in str(err.value)
    with pytest.raises(TypeError):
        fun(5)


def test_redact_hides_password_literals():
    verifier = sql.scram_verifier("u", SECRET)
    for statement in ["CREATE ROLE \"u\" WITH LOGIN PASSWORD %s VALID UNTIL 'infinity'"
                      % sql.quote_literal(verifier),
                      "ALTER ROLE \"u\" WITH PASSWORD 'md5%s'" % ("0" * 32),
                      "LINE 1: ALTER ROLE \"u\" WITH PASSWORD 'SCRAM-SHA-256$4096:abc..."]:
        redacted = sql.redact(statement)
        assert "PASSWORD '***'" in redacted
        assert "SCRAM-SHA-256$" not in redacted and "md5" not in redacted
    assert sql.redact("VALID UNTIL 'infinity'") == "VALID UNTIL 'infinity'"


# ------------------------------------------------------------------ SCRAM
# Verifiers that PostgreSQL 15 itself computed (ALTER ROLE ... PASSWORD 'plain' with
# password_encryption = scram-sha-256, random salt), read back from pg_authid.
POSTGRES_VERIFIERS = {
    "pa'ss\"w;rd\\":
        "SCRAM-SHA-256$4096:rofalWoZswyDml+Brsb3yg==$S2LKbjwx00eEATfepy4e957eIUmW9oUXMK5zKgeUqLI="
        ":LwOUkO8gEmcYCHpa//9fbblgipT1twvrmMNsM5ywweM=",
    "I\u00adX":         # soft hyphen: mapped to nothing by SASLprep
        "SCRAM-SHA-256$4096:vCY8E72G1fL8c71BSlgZog==$WvwVrNe3InBG13lJVTLOGEmXuQrEqJL32sto0CaD5IA="
        ":c6onmday+sMNLOmsY40dsIYso1aQL90E1HuXarV6c9w=",
    "\u2168":           # ROMAN NUMERAL NINE: NFKC gives "IX"
        "SCRAM-SHA-256$4096:x/WIA/DoI1toIz/yIRVAxQ==$VvyEbNEWBWhjDaMsnWcFol/KOcZDh7+B6CN7M2iP7Y4="
        ":jsgjaZVVOYjcx2NxYU6/5rFPJm89xeARfhgUnezMg0w=",
    "caf\u00e9 \u00a0x":  # non-ASCII space: mapped to a space
        "SCRAM-SHA-256$4096:cpGJZHKu7bheYk/nZF/F8g==$KJ1+ger3DcPhic1Co5ei6hH4SwAScbmAf6qt+GyKvb4="
        ":a6ijG8d878I3X3GPjejAT1Pa7GfM0mlHN+CbbhD7hwE=",
}


@pytest.mark.parametrize("password", sorted(POSTGRES_VERIFIERS))
def test_scram_verifier_matches_postgresql(password):
    stored = POSTGRES_VERIFIERS[password]
    salt = base64.b64decode(sql.SCRAM_RE.match(stored).group(2))
    assert sql.scram_verifier("any", password, 4096, salt) == stored
    assert sql.scram_verifier("any", password + "x", 4096, salt) != stored


def test_saslprep_mappings():
    assert sql.saslprep("I\u00adX") == "IX"
    assert sql.saslprep("\u2168") == "IX"
    assert sql.saslprep("a\u00a0b") == "a b"
    assert sql.saslprep("tab\there") == "tab\there"          # ASCII: unchanged
    assert sql.saslprep("\u00e9\x07") == "\u00e9\x07"         # prohibited: raw password


def test_scram_verifier_rfc7677_exchange():
    """RFC 7677's example exchange authenticates against the verifier (as a server does)."""
    verifier = sql.scram_verifier("user", "pencil", 4096,
                                  base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="))
    _it, _salt, stored, server = sql.SCRAM_RE.match(verifier).groups()
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = ("n=user,r=rOprNGfwEbeRWgbNEkqO,r=%s,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
            "c=biws,r=%s" % (nonce, nonce)).encode()
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    signature = hmac.new(base64.b64decode(stored), auth, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, signature))
    assert hashlib.sha256(client_key).digest() == base64.b64decode(stored)
    assert base64.b64encode(hmac.new(base64.b64decode(server), auth, hashlib.sha256).digest()) \
        == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_verifier_salt_is_random():
    one = sql.scram_verifier("dbuser_a", SECRET)
    assert sql.SCRAM_RE.match(one) and one.startswith("SCRAM-SHA-256$4096:")
    assert len(base64.b64decode(sql.SCRAM_RE.match(one).group(2))) == 16
    salts = {sql.SCRAM_RE.match(sql.scram_verifier(user, SECRET)).group(2)
             for user in ("dbuser_a", "dbuser_a", "dbuser_b", "dbuser_c")}
    assert len(salts) == 4                          # same password, same or other user
    old_salt = hmac.new(SECRET.encode(), b"pigsty-scram:dbuser_a", hashlib.sha256).digest()[:16]
    assert base64.b64decode(sql.SCRAM_RE.match(one).group(2)) != old_salt
    assert SECRET not in one


def test_scram_verifies_recomputes_the_keys_with_the_stored_salt():
    verifier = sql.scram_verifier("u", SECRET)
    assert sql.scram_verifies(verifier, SECRET)
    assert not sql.scram_verifies(verifier, SECRET + "x")
    assert not sql.scram_verifies(verifier, SECRET.upper())
    for password, stored in POSTGRES_VERIFIERS.items():           # PostgreSQL's own
        assert sql.scram_verifies(stored, password)
        assert not sql.scram_verifies(stored, "other")


def test_scram_verifies_checks_both_keys():
    verifier = sql.scram_verifier("u", SECRET)
    head, keys = verifier.rsplit("$", 1)
    stored, server = keys.split(":")
    other = sql.scram_verifier("u", "other").rsplit("$", 1)[1].split(":")
    assert not sql.scram_verifies("%s$%s:%s" % (head, stored, other[1]), SECRET)
    assert not sql.scram_verifies("%s$%s:%s" % (head, other[0], server), SECRET)


@pytest.mark.parametrize("stored", [
    None, "", "md5" + "0" * 32, "SCRAM-SHA-256$4096:abc", "SCRAM-SHA-256$4096:!!$x:y",
    "SCRAM-SHA-256$4096:YWJj$YWJj:YWJj", 42])
def test_scram_verifies_refuses_what_is_not_a_matching_verifier(stored):
    assert not sql.scram_verifies(stored, SECRET)


def test_scram_verifies_refuses_weak_iteration_counts():
    weak = sql.scram_verifier("u", SECRET, 1024)
    assert not sql.scram_verifies(weak, SECRET)
    assert sql.scram_verifies(weak, SECRET, min_iterations=1024)
    assert sql.scram_verifies(sql.scram_verifier("u", SECRET, 8192), SECRET)


def test_is_hashed_password_matches_and_password_hash():
    md5 = "md5" + hashlib.md5(b"secretdbuser_a").hexdigest()
    scram = sql.scram_verifier("dbuser_a", "secret")
    assert sql.is_hashed(md5) and sql.is_hashed(scram)
    for plain in ["secret", "md5secret", "md5" + "A" * 32, "SCRAM-SHA-256$nope", md5 + "\n",
                  scram + "\n", None]:
        assert not sql.is_hashed(plain)
    assert sql.password_hash("dbuser_a", md5) == md5
    assert sql.password_hash("dbuser_a", scram) == scram
    fresh = sql.password_hash("dbuser_a", "secret")
    assert fresh != scram and sql.scram_verifies(fresh, "secret")
    # what is stored is kept when the password reproduces it, first match first
    other = sql.scram_verifier("dbuser_a", "secret")
    assert sql.password_hash("dbuser_a", "secret", keep=[scram, other]) == scram
    assert sql.password_hash("dbuser_a", "secret", keep=[None, md5, other]) == other
    assert sql.password_hash("dbuser_a", "changed", keep=[scram]) != scram
    # a hash in pillar matches only itself; md5 of a plain password does not (upgraded)
    assert sql.password_matches(md5, md5) and not sql.password_matches(scram, md5)
    assert not sql.password_matches(md5, "secret")
    assert sql.password_matches(scram, "secret") and not sql.password_matches(None, "secret")


USERLIST_NAMES = ["dbuser_a", 'we"ird', "sp ace", "semi;colon", "per%cent", "back\\slash"]


def test_userlist_lines_round_trip():
    secrets = {name: sql.scram_verifier(name, SECRET) for name in USERLIST_NAMES}
    text = "\n".join(sql.userlist_line(n, v) for n, v in secrets.items()) + "\n"
    assert sql.userlist_line('we"ird', "x") == '"we""ird" "x"'
    assert sql.parse_userlist(text) == secrets
    assert sql.parse_userlist('\n;; comment\n"postgres" ""\n"u" "s" trailing\nbad line\n') == \
        {"postgres": "", "u": "s"}
    assert sql.parse_userlist("") == {} and sql.parse_userlist(None) == {}


@pytest.mark.parametrize("name, secret", [("u\n\"x\" \"y", "s"), ("u", "s\r\n\"evil\" \"z"),
                                          ("u", "a\x00b"), (None, "s"), ("u", 5)])
def test_userlist_line_refuses_what_breaks_the_format(name, secret):
    with pytest.raises(ValueError) as err:
        sql.userlist_line(name, secret)
    assert "single-line" in str(err.value) and "evil" not in str(err.value)


# ------------------------------------------------------------------ validation
def _error(normalize, spec):
    with pytest.raises(ValueError) as err:
        normalize(spec)
    return str(err.value)


def test_normalize_user_defaults():
    user = sql.normalize_user({"name": "dbuser_a"})
    assert user["login"] is True and user["inherit"] is True and user["superuser"] is False
    assert user["connlimit"] == -1 and user["state"] == "present"
    assert user["roles"] is None and user["parameters"] is None and user["password"] is None


def test_normalize_user_converts_dates_and_parameters():
    user = sql.normalize_user({"name": "u", "expire_at": datetime.date(2030, 1, 2),
                               "parameters": {"DateStyle": "ISO", "jit": False,
                                              "work_mem": 65536,
                                              "search_path": ["$user", "public"]}})
    assert user["expire_at"] == "2030-01-02"
    assert user["parameters"] == {"datestyle": "ISO", "jit": "off", "work_mem": "65536",
                                  "search_path": ["$user", "public"]}
    assert sql.normalize_user(user) == user                        # idempotent


@pytest.mark.parametrize("spec,fragments", [
    ({"name": "Bad-Name"}, ["name:", "safe identifier", "'Bad-Name'"]),
    ({"name": "trailing\n"}, ["name:", "safe identifier"]),
    ({"name": "u", "colour": "red"}, ["colour: unknown field", "expected one of"]),
    ({"name": "u", "login": "yes"}, ["login: expected true or false", "'yes'"]),
    ({"name": "u", "connlimit": -2}, ["connlimit: expected an integer >= -1"]),
    ({"name": "u", "connlimit": True}, ["connlimit:"]),
    ({"name": "u", "expire_in": 3, "expire_at": "2030-01-01"},
     ["expire_in: conflicts with expire_at"]),
    ({"name": "u", "expire_at": "2030-02-30"}, ["expire_at: expected a date 'YYYY-MM-DD'"]),
    ({"name": "u", "expire_in": -1}, ["expire_in: expected a number of days"]),
    ({"name": "u", "roles": ["dbrole_readonly", "dbrole_readonly"]}, ["roles: expected a list"]),
    ({"name": "u", "roles": ["x;y"]}, ["roles:"]),
    ({"name": "u", "roles": ["u"]}, ["roles: a role cannot be a member of itself"]),
    ({"name": "u", "parameters": {"work mem": "1"}}, ["parameters: expected a mapping"]),
    ({"name": "u", "parameters": {"a": {"b": 1}}}, ["parameters:"]),
    ({"name": "u", "state": "gone"}, ["state: expected 'present' or 'absent'"]),
    ({"name": "u", "comment": 5}, ["comment: expected a string"]),
])
def test_normalize_user_rejections_name_the_field(spec, fragments):
    message = _error(sql.normalize_user, spec)
    assert message.startswith("user ")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("password", [
    12345678, "", "bad\x00" + SECRET, "SCRAM-SHA-256$" + SECRET, "md5" + "ABCDEF0123" * 3 + "AB",
])
def test_password_problems_never_show_the_password(password):
    message = _error(sql.normalize_user, {"name": "u", "password": password, "bogus": 1})
    assert "password:" in message and "bogus: unknown field" in message
    assert SECRET not in message and "12345678" not in message and "ABCDEF" not in message


def test_normalize_rejects_non_mapping():
    assert "expected a mapping" in _error(sql.normalize_user, ["u"])
    assert "expected a mapping" in _error(sql.normalize_database, "db")


@pytest.mark.parametrize("spec,fragments", [
    ({"name": "db-1"}, ["name:", "'db-1'"]),
    ({"name": "d", "owner": "Bob"}, ["owner: expected a safe identifier"]),
    ({"name": "d", "encoding": "UTF8; DROP"}, ["encoding: expected an encoding name"]),
    ({"name": "d", "locale": "C'"}, ["locale: expected a locale name"]),
    ({"name": "d", "schemas": "app"}, ["schemas: expected a list"]),
    ({"name": "d", "extensions": ["pgcrypto", {"name": "x", "version": "1"}]},
     ["extensions: expected a list"]),
    ({"name": "d", "extensions": ["bad ext"]}, ["extensions:"]),
    ({"name": "d", "allowconn": False, "schemas": ["app"]}, ["allowconn: false conflicts"]),
    ({"name": "d", "revokeconn": "yes"}, ["revokeconn: expected true or false"]),
    ({"name": "d", "pool_mode": "session"}, ["pool_mode: unknown field"]),
])
def test_normalize_database_rejections_name_the_field(spec, fragments):
    message = _error(sql.normalize_database, spec)
    assert message.startswith("database ")
    for fragment in fragments:
        assert fragment in message


# ------------------------------------------------------------------ user diffs
TODAY = datetime.date(2025, 1, 1)


def _current_of(user, **overrides):
    """The catalog view of a role created exactly as ``user`` asks."""
    user = sql.normalize_user(user)
    current = {key: user[key] for key, _kw in sql.ROLE_ATTRIBUTES}
    current.update(connlimit=user["connlimit"], valid_until=None, roles=user["roles"] or [],
                   parameters={}, comment=user["comment"],
                   password=user["password"] and sql.password_hash(user["name"], user["password"]))
    current.update(overrides)
    return current


def test_user_create_statements():
    spec = {"name": "dbuser_a", "password": SECRET, "roles": ["dbrole_readonly"],
            "parameters": {"work_mem": "64MB"}, "comment": "it's a user", "connlimit": 5,
            "expire_in": 10}
    statements = user_sql(spec, None, TODAY)
    assert statements[0].startswith('CREATE ROLE "dbuser_a" WITH NOSUPERUSER NOCREATEDB')
    assert "LOGIN" in statements[0] and "CONNECTION LIMIT 5" in statements[0]
    verifier = re.search(r"PASSWORD '(SCRAM-SHA-256\$[^']+)'", statements[0]).group(1)
    assert sql.scram_verifies(verifier, SECRET)
    assert "VALID UNTIL '2025-01-11'" in statements[0]
    assert statements[1:] == ['GRANT "dbrole_readonly" TO "dbuser_a"',
                              'ALTER ROLE "dbuser_a" SET "work_mem" = \'64MB\'',
                              'COMMENT ON ROLE "dbuser_a" IS \'it\'\'s a user\'']
    changes = user_changes(spec, None, TODAY)
    assert changes["role"] == "created" and changes["password"] == "changed"
    assert changes["roles"] == {"granted": ["dbrole_readonly"]}
    assert SECRET not in repr(changes)


def test_user_no_op_when_catalog_matches():
    spec = {"name": "dbuser_a", "password": SECRET, "roles": ["dbrole_readonly"],
            "comment": "c", "parameters": {"search_path": ["$user", "public"]},
            "expire_at": "infinity"}
    current = _current_of(spec, valid_until="infinity",
                          parameters={"search_path": '"$user", public'})
    assert user_sql(spec, current) == []
    assert user_changes(spec, current) == {}


def test_user_alter_statements():
    spec = {"name": "dbuser_a", "password": SECRET, "roles": ["dbrole_readwrite"],
            "createdb": True, "parameters": {"DateStyle": "ISO"}, "comment": ""}
    current = _current_of({"name": "dbuser_a", "password": "old", "roles": ["dbrole_readonly"],
                           "comment": "old"},
                          parameters={"DateStyle": "ISO, MDY", "work_mem": "1MB"})
    changes, statements = sql.user_plan(sql.normalize_user(spec), current)
    head, verifier = re.fullmatch(r"(.* PASSWORD )'(.*)'", statements[0]).groups()
    assert head == 'ALTER ROLE "dbuser_a" WITH CREATEDB PASSWORD '
    assert sql.scram_verifies(verifier, SECRET)
    assert statements[1:] == ['GRANT "dbrole_readwrite" TO "dbuser_a"',
                              'REVOKE "dbrole_readonly" FROM "dbuser_a"',
                              'ALTER ROLE "dbuser_a" SET "datestyle" = \'ISO\'',
                              'ALTER ROLE "dbuser_a" RESET "work_mem"',
                              'COMMENT ON ROLE "dbuser_a" IS NULL']
    assert changes == {"createdb": {"old": False, "new": True}, "password": "changed",
                       "roles": {"granted": ["dbrole_readwrite"], "revoked": ["dbrole_readonly"]},
                       "parameters": {"set": {"datestyle": "ISO"}, "reset": ["work_mem"]},
                       "comment": {"old": "old", "new": ""}}


def test_user_unmanaged_fields_are_left_alone():
    current = _current_of({"name": "u", "password": "x", "roles": ["r1"], "comment": "kept"},
                          parameters={"work_mem": "1MB"}, valid_until="2030-01-01")
    assert user_sql({"name": "u"}, current) == []


def test_user_password_kept_when_the_stored_verifier_verifies():
    """Whatever salt the stored verifier has (ours, PostgreSQL's, psql's \\password), the
    pillar password reproducing it means no change: a re-apply is a no-op."""
    for stored in (sql.scram_verifier("u", SECRET, 4096, b"0123456789abcdef"),
                   sql.scram_verifier("u", SECRET, 8192)):
        current = _current_of({"name": "u"}, password=stored)
        assert user_sql({"name": "u", "password": SECRET}, current) == []
        assert user_changes({"name": "u", "password": SECRET}, current) == {}


@pytest.mark.parametrize("stored", [
    sql.scram_verifier("u", "old password"),                       # another password
    sql.scram_verifier("u", SECRET, 1024),                         # too few iterations
    "md5" + hashlib.md5((SECRET + "u").encode()).hexdigest(),     # same password as md5
    None])
def test_user_password_reset_unless_stored_verifier_verifies(stored):
    current = _current_of({"name": "u"}, password=stored)
    changes, statements = sql.user_plan(sql.normalize_user({"name": "u", "password": SECRET}),
                                        current)
    assert changes == {"password": "changed"}
    verifier = re.fullmatch(r"ALTER ROLE \"u\" WITH PASSWORD '(.*)'", statements[0]).group(1)
    assert verifier != stored and sql.scram_verifies(verifier, SECRET)
    assert len(statements) == 1


def test_user_hashed_password_is_sent_as_is():
    md5 = "md5" + hashlib.md5(b"secretu").hexdigest()
    statements = user_sql({"name": "u", "password": md5}, _current_of({"name": "u"}))
    assert statements == ["ALTER ROLE \"u\" WITH PASSWORD '%s'" % md5]
    current = _current_of({"name": "u"}, password=md5)
    assert user_sql({"name": "u", "password": md5}, current) == []


def test_user_absent():
    assert user_sql({"name": "u", "state": "absent"}, None) == []
    assert user_sql({"name": "u", "state": "absent"}, _current_of({"name": "u"})) == \
        ['DROP ROLE "u"']
    assert user_changes({"name": "u", "state": "absent"}, _current_of({"name": "u"})) == \
        {"role": "dropped"}


def test_default_roles_and_privileges():
    names = [r["name"] for r in sql.DEFAULT_ROLES]
    assert names == ["dbrole_readonly", "dbrole_offline", "dbrole_readwrite", "dbrole_admin"]
    roles = {r["name"]: sql.normalize_user(r) for r in sql.DEFAULT_ROLES}
    assert all(r["login"] is False for r in roles.values())
    assert roles["dbrole_readwrite"]["roles"] == ["dbrole_readonly"]
    assert roles["dbrole_admin"]["roles"] == ["pg_monitor", "dbrole_readwrite"]
    statements = sql.default_privileges_sql("dbuser_dba")
    assert len(statements) == len(sql.DEFAULT_PRIVILEGES) == 17
    assert ('ALTER DEFAULT PRIVILEGES FOR ROLE "dbuser_dba" GRANT SELECT ON TABLES TO '
            '"dbrole_readonly"') in statements
    assert ('ALTER DEFAULT PRIVILEGES FOR ROLE "dbuser_dba" GRANT CREATE ON SCHEMAS TO '
            '"dbrole_admin"') in statements
    assert sql.default_privileges_sql("dbuser_dba", sql.DEFAULT_PRIVILEGES) == []
    missing = sql.default_privileges_sql("dbuser_dba", sql.DEFAULT_PRIVILEGES[1:])
    assert missing == ['ALTER DEFAULT PRIVILEGES FOR ROLE "dbuser_dba" GRANT USAGE ON SCHEMAS '
                       'TO "dbrole_readonly"']


# ------------------------------------------------------------------ database diffs
DB_SPEC = {"name": "meta", "owner": "dbuser_meta", "template": "template0", "encoding": "UTF8",
           "locale": "C.UTF-8", "comment": "pigsty meta database", "revokeconn": True,
           "connlimit": 50, "schemas": ["app"],
           "extensions": ["pgcrypto", {"name": "uuid-ossp", "schema": "app"}]}
DB_CURRENT = {"owner": "dbuser_meta", "encoding": "UTF8", "lc_collate": "C.utf8",
              "lc_ctype": "C.utf8", "tablespace": "pg_default", "allowconn": True,
              "connlimit": 50, "comment": "pigsty meta database", "public_connect": False}


def test_database_create_statements():
    statements = database_sql(DB_SPEC, None)
    assert statements == [
        'CREATE DATABASE "meta" WITH OWNER "dbuser_meta" TEMPLATE "template0" ENCODING \'UTF8\' '
        "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' ALLOW_CONNECTIONS true CONNECTION LIMIT 50",
        "COMMENT ON DATABASE \"meta\" IS 'pigsty meta database'",
        'REVOKE CONNECT ON DATABASE "meta" FROM PUBLIC']
    assert sql.outside_transaction(statements[0])
    assert not sql.outside_transaction(statements[1])
    assert database_changes(DB_SPEC, None)["database"] == "created"


def test_database_no_op_and_alter():
    assert database_sql(DB_SPEC, DB_CURRENT) == []
    current = dict(DB_CURRENT, owner="postgres", connlimit=-1, comment=None, public_connect=True,
                   allowconn=False)
    assert database_sql(DB_SPEC, current) == [
        'ALTER DATABASE "meta" OWNER TO "dbuser_meta"',
        'ALTER DATABASE "meta" WITH ALLOW_CONNECTIONS true',
        'ALTER DATABASE "meta" WITH CONNECTION LIMIT 50',
        "COMMENT ON DATABASE \"meta\" IS 'pigsty meta database'",
        'REVOKE CONNECT ON DATABASE "meta" FROM PUBLIC']
    assert database_sql(dict(DB_SPEC, revokeconn=False), DB_CURRENT) == [
        'GRANT CONNECT ON DATABASE "meta" TO PUBLIC']
    assert database_sql({"name": "meta"}, DB_CURRENT) == [
        'ALTER DATABASE "meta" WITH CONNECTION LIMIT -1']


@pytest.mark.parametrize("field,value", [("encoding", "SQL_ASCII"), ("lc_collate", "C"),
                                         ("lc_ctype", "en_US.UTF-8"), ("tablespace", "fast")])
def test_database_fixed_fields_cannot_change(field, value):
    with pytest.raises(ValueError) as err:
        database_sql(dict(DB_SPEC, tablespace="pg_default"),
                         dict(DB_CURRENT, **{field: value}))
    assert "database meta: %s is %r" % (field, value) in str(err.value)
    assert "fixed when a database is created" in str(err.value)


def test_database_absent():
    assert database_sql({"name": "meta", "state": "absent"}, None) == []
    assert database_sql({"name": "meta", "state": "absent"}, DB_CURRENT) == \
        ['DROP DATABASE "meta" WITH (FORCE)']


def test_database_inner_statements():
    statements = database_inner_sql(DB_SPEC, ["public"], {"plpgsql": "pg_catalog"})
    assert statements == ['CREATE SCHEMA IF NOT EXISTS "app" AUTHORIZATION "dbuser_meta"',
                          'CREATE EXTENSION IF NOT EXISTS "pgcrypto"',
                          'CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA "app"']
    assert database_inner_sql(DB_SPEC, ["public", "app"],
                                  {"pgcrypto": "public", "uuid-ossp": "app"}) == []
    assert database_inner_sql(DB_SPEC, ["public", "app"],
                                  {"pgcrypto": "public", "uuid-ossp": "public"}) == \
        ['ALTER EXTENSION "uuid-ossp" SET SCHEMA "app"']


def test_role_parameters_and_list_settings():
    assert sql.role_parameters(None) == {}
    assert sql.role_parameters(['search_path="$user", public', "work_mem=64MB"]) == \
        {"search_path": '"$user", public', "work_mem": "64MB"}
    assert sql._split_list('"$user", public') == ["$user", "public"]
    assert sql._split_list('"a, ""b"""') == ['a, "b"']
    assert sql._parameter_matches("a, b", "a, b")          # a plain setting with a comma
    assert sql._parameter_matches('"$user"', "$user")      # a one-element list setting
    assert not sql._parameter_matches("public", ["$user", "public"])
