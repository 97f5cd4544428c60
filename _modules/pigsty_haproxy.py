"""HAProxy on this node through its runtime API (stats socket); the admin page's login.

    salt -G 'pg_cluster:pg-test' pigsty_haproxy.servers
    salt node-1 pigsty_haproxy.apply_health '{"pg-test-primary": {"pg-test-2": "up", "pg-test-1": "down"}}'
"""
import logging

import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_crypt
    import pigsty_haproxy
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty_haproxy"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def _socket():
    return __salt__["config.option"]("pigsty_haproxy.socket", pigsty_haproxy.SOCKET)


def servers():
    """Every backend's servers: operational state (UP/DOWN...), admin state, address."""
    try:
        return pigsty_haproxy.servers_state(_socket())
    except pigsty_haproxy.HAProxyError as exc:
        raise salt.exceptions.CommandExecutionError(str(exc))


def apply_health(want, test=False):
    """Set servers' health at once where it differs from ``want``
    ({backend: {server: "up"|"down"}}); returns the commands run (or that would run)."""
    if not isinstance(want, dict) or not all(
            isinstance(s, dict) and all(h in ("up", "down") for h in s.values()) for s in want.values()):
        raise salt.exceptions.SaltInvocationError(
            "want: expected {backend: {server: up|down}}, got %r" % (want,))
    current = servers()
    cmds = pigsty_haproxy.plan(current, want)
    held = pigsty_haproxy.held_servers(current)
    if test:
        return {"commands": cmds, "held": held, "test": True}
    _send(cmds)
    return {"commands": cmds, "held": held}


def run(commands):
    """Send runtime commands (server health, admin state, health-check switches only),
    in order; stops at the first one HAProxy refuses.

    CLI example::

        salt node-2 pigsty_haproxy.run '["set server pg-test-primary/pg-test-1 state drain"]'
    """
    if isinstance(commands, str):
        commands = [commands]
    if not isinstance(commands, list):
        raise salt.exceptions.SaltInvocationError("commands: expected a list of runtime commands, got %r" % (commands,))
    bad = [c for c in commands if not isinstance(c, str) or not pigsty_haproxy.RUNTIME_COMMAND.fullmatch(c)]
    if bad:
        raise salt.exceptions.SaltInvocationError(
            "commands: %r not allowed (expected 'set server BACKEND/SERVER health up|down', "
            "'set server BACKEND/SERVER state ready|drain|maint' or 'enable|disable health BACKEND/SERVER')" % (bad,))
    _send(commands)
    return {"commands": commands}


def _send(cmds):
    for cmd in cmds:
        answer = pigsty_haproxy.command(cmd, _socket()).strip()
        log.info("haproxy runtime: %s -> %s", cmd, answer or "ok")
        if answer:
            raise salt.exceptions.CommandExecutionError("haproxy refused %r: %s" % (cmd, answer))


CONFIG = "/etc/haproxy/haproxy.cfg"


def admin_login(path=CONFIG):
    """The admin page's login for haproxy.cfg's userlist: {"username", "hash"} -- the hash
    (SHA-512 crypt) already in ``path`` when the pillar password still verifies against it,
    so a re-apply changes nothing; a new one otherwise. Never the password.

    CLI example::

        salt node-1 pigsty_haproxy.admin_login
    """
    conf = __salt__["pigsty.config"]()
    if not conf:
        raise salt.exceptions.CommandExecutionError("this node hosts no PostgreSQL instance (pillar)")
    user, password = conf["haproxy_admin_username"], conf["haproxy_admin_password"]
    if not isinstance(password, str) or not password:
        raise salt.exceptions.CommandExecutionError(
            "haproxy_admin_password: missing (expected it in the cluster's private pillar file)")
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
    except OSError:
        current = ""
    existing = pigsty_crypt.find_hash(current, "user %s password " % user)
    return {"username": user, "hash": pigsty_crypt.sha512_crypt(password, existing)}
