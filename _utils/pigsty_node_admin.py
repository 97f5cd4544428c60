"""Pigsty's node_admin_*: an administrator account on every node (salt/node/admin.sls).

- ``node_admin_enabled``: create it (user and group of the same name and id, home
  /home/NAME, bash), with passwordless sudo (/etc/sudoers.d/pigsty-admin, checked with
  ``visudo -c -f`` before it is written) and the keys of ``node_admin_pk_list`` as its whole
  ``~/.ssh/authorized_keys`` (a key removed from the list is removed from the file).
  Turned off again: the sudoers file goes; the account and its keys stay (as in Pigsty,
  nothing removes a user).
- ``node_admin_uid``: the uid and gid (Pigsty's 88); ``node_admin_username``: its name
  (``dba``), which (when enabled) may be neither one of the system's own accounts nor the
  dbsu: the account would be taken over.
- ``node_admin_pk_list``: OpenSSH public key lines (``TYPE BASE64 [comment]``).

Not here, refused by validation when true (pigsty_defaults.FIXED):
``node_admin_ssh_exchange`` (Pigsty's exchange of the admin's keys among the nodes) and
``node_admin_pk_current`` (the Ansible operator's own ~/.ssh/id_rsa.pub): Salt reaches every
node through its minion, with no operator's key and no ssh between the nodes; the keys that
may log in are the ones listed in node_admin_pk_list.

A cluster's values apply to its members, pigsty:vars' to the other nodes. Pure Python.
"""
import base64
import re

import pigsty_defaults as D

SUDOERS_FILE = "/etc/sudoers.d/pigsty-admin"   # no '.' in it: sudo skips such names
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# accounts of Debian 12 and of the packages we install: never taken over
RESERVED = frozenset((
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc "
    "gnats nobody _apt systemd-network systemd-resolve systemd-timesync systemd-coredump "
    "messagebus sshd postgres etcd prometheus haproxy _chrony ntp dnsmasq grafana salt "
    "nginx sudo admin adm staff users ssl-cert").split())
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
             "sk-ecdsa-sha2-nistp256@openssh.com")
KEY_RE = re.compile(r"^(%s) ([A-Za-z0-9+/]+={0,2})( [\x20-\x7e]{0,200})?$" % "|".join(
    re.escape(t) for t in KEY_TYPES))
UID_RANGE = (1, 65533)      # not root, not nobody (65534), not (uid_t) -1


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def key_problem(line):
    """None for an OpenSSH public key line whose body is the key it says it is."""
    m = KEY_RE.fullmatch(line) if isinstance(line, str) else None
    if m:
        try:
            blob = base64.b64decode(m.group(2), validate=True)
        except ValueError:
            blob = b""
        # the blob starts with the key type as an SSH string: 4-byte length, then the name
        name = m.group(1).encode()
        if blob[:4] == len(name).to_bytes(4, "big") and blob[4:4 + len(name)] == name:
            return None
    return ("an OpenSSH public key line 'TYPE BASE64 [comment]' (TYPE one of %s; no options, "
            "one line)" % ", ".join(KEY_TYPES))


def problems(conf, vpath, keys=None):
    """Each node_admin_* value a scope sets, checked; the username also against the
    resolved pg_dbsu."""
    def has(key):
        return key in conf and (keys is None or key in keys)

    out = []
    if has("node_admin_enabled") and not isinstance(conf["node_admin_enabled"], bool):
        out.append("%s:node_admin_enabled: expected true or false, got %r" % (
            vpath, conf["node_admin_enabled"]))
    uid = conf.get("node_admin_uid")
    if has("node_admin_uid") and not (_is_int(uid) and UID_RANGE[0] <= uid <= UID_RANGE[1]):
        out.append("%s:node_admin_uid: expected a uid (and gid) %d-%d (not root's 0 or nobody's "
                   "65534), got %r" % (vpath, UID_RANGE[0], UID_RANGE[1], uid))
    name = conf.get("node_admin_username", D.DEFAULTS["node_admin_username"])
    enabled = conf.get("node_admin_enabled", D.DEFAULTS["node_admin_enabled"]) is True
    if has("node_admin_username") or has("pg_dbsu") or has("node_admin_enabled"):
        if not (isinstance(name, str) and USERNAME_RE.fullmatch(name)):
            out.append("%s:node_admin_username: expected a user name (lowercase letters, "
                       "digits, '_', '-', at most 32), got %r" % (vpath, name))
        elif enabled and (name in RESERVED or name == conf.get("pg_dbsu", D.DEFAULTS["pg_dbsu"])):
            out.append("%s:node_admin_username: %s is an account of the system or of the "
                       "database (pg_dbsu): expected a name of its own, such as dba" % (vpath, name))
    if has("node_admin_pk_list"):
        pks = conf["node_admin_pk_list"]
        if not isinstance(pks, list):
            out.append("%s:node_admin_pk_list: expected a list of OpenSSH public key lines, got "
                       "%r" % (vpath, pks))
            pks = []
        for i, line in enumerate(pks):
            problem = key_problem(line)
            if problem:
                shown = repr(line) if len(repr(line)) <= 60 else repr(line)[:57] + "..."
                out.append("%s:node_admin_pk_list[%d]: expected %s, got %s" % (
                    vpath, i, problem, shown))
    return out


def plan(conf):
    """What salt/node/admin.sls makes of a node's resolved configuration."""
    name = conf["node_admin_username"]
    keys = [k.strip() for k in conf.get("node_admin_pk_list") or []]
    home = "/home/%s" % name
    return {
        "enabled": bool(conf["node_admin_enabled"]),
        "username": name,
        "uid": conf["node_admin_uid"],
        "home": home,
        "authorized_keys_file": home + "/.ssh/authorized_keys",
        "authorized_keys": "# Managed by Salt (Pigsty on Salt): node_admin_pk_list\n" + "".join(
            k + "\n" for k in keys),
        "sudoers_file": SUDOERS_FILE,
        "sudoers": "# Managed by Salt (Pigsty on Salt): node_admin_username, passwordless "
                   "sudo\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n" % name,
    }
