"""Password hashes for the web logins (HAProxy's userlist, Nginx's htpasswd): SHA-512
crypt (``$6$``), which HAProxy and Nginx check through the C library's crypt(3).

A hash gets a random salt when it is made. To keep a re-apply idempotent, the hash
already in place is kept when the password still verifies against it (as the SCRAM
verifiers are: docs/security.md), and replaced when it does not.
"""
import re
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt     # pylint: disable=deprecated-module  (Python 3.11: Debian 12's and Salt's)

HASH_RE = re.compile(r"\$6\$(rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}")


def verifies(password, hashed):
    """Whether ``password`` matches the SHA-512 crypt hash ``hashed``."""
    if not isinstance(hashed, str) or not HASH_RE.fullmatch(hashed):
        return False
    return crypt.crypt(password, hashed) == hashed


def sha512_crypt(password, existing=None):
    """``existing`` when the password verifies against it, else a new hash (random salt)."""
    if existing and verifies(password, existing):
        return existing
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))


def find_hash(text, before):
    """The first SHA-512 crypt hash in ``text`` that follows the literal ``before``
    (e.g. ``"user admin password "``), or None."""
    if not text:
        return None
    m = re.search(re.escape(before) + "(" + HASH_RE.pattern + ")", text)
    return m.group(1) if m else None
