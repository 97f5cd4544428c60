"""Logins of the meta node's web pages: the portal's htpasswd file (Nginx basic
authentication) and Grafana's admin password, from the meta node's private pillar
(pigsty:infra, pillar/dcs.sls). Never returns a password.

    salt meta pigsty_web.portal_htpasswd
"""
import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_crypt
    import pigsty_inventory
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "pigsty_web"

HTPASSWD = "/etc/nginx/pigsty.htpasswd"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _secrets():
    problems = pigsty_inventory.validate_web_secrets(__pillar__)
    if problems:
        raise salt.exceptions.CommandExecutionError("; ".join(problems))
    return pigsty_inventory.web_secrets(__pillar__)


def portal_htpasswd(path=HTPASSWD):
    """The text of Nginx's htpasswd file for the portal: ``user:$6$...`` (SHA-512 crypt),
    keeping the hash in ``path`` while the pillar password verifies against it."""
    secrets = _secrets()
    user = secrets["portal_username"]
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
    except OSError:
        current = ""
    existing = pigsty_crypt.find_hash(current, "%s:" % user)
    return "%s:%s\n" % (user, pigsty_crypt.sha512_crypt(secrets["portal_password"], existing))
