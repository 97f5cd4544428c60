"""etcd's authentication, set up from the meta node (salt/dcs/init.sls):

    etcd-auth:
      pigsty_etcd.auth:
        - name: https://10.10.10.10:2379
        - ca_file: /etc/pki/pigsty/ca.crt

One v2 role and user per cluster of the inventory, allowed to read and write its own
Patroni prefix only (``<pg_namespace>/<cluster>``); one user per member node (named like the
node's certificate CN, its minion id) holding its cluster's role, which Patroni, vip-manager
and the hand-off log in as with the node certificate (no password: see _utils/pigsty_etcd.py
on bcrypt); a root user; the guest role closed; then v2 and v3 authentication enabled --
users and roles first, enabling only when it is off.
The passwords come from the meta node's pillar (pigsty:dcs, see pigsty_inventory.dcs_secrets),
never from the SLS, so they appear in no state argument, log line or return.
"""
# A util named like a module of this directory comes after one that is not: without the
# _utils, Salt's loader has this directory on sys.path and the import would find the module.
try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_inventory
    import pigsty_model
    import pigsty_etcd
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "pigsty_etcd"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__   # standard library only


def _inputs():
    inv = pigsty_inventory.inventory(__pillar__)
    problems = pigsty_inventory.validate_dcs_secrets(__pillar__)
    if problems:
        raise ValueError("; ".join(problems))
    secrets = pigsty_inventory.dcs_secrets(__pillar__)
    namespaces = {name: pigsty_inventory.cluster_vars(inv, name)["pg_namespace"] for name in secrets["users"]}
    idx = pigsty_model.index(inv)
    members = {name: sorted(m["minion"] for m in idx.cluster(name).members if m["minion"])
               for name in secrets["users"]}
    conflicts = pigsty_etcd.node_user_conflicts(secrets["users"], members)
    if conflicts:
        raise ValueError("; ".join(conflicts))
    return secrets["root_password"], secrets["users"], namespaces, members


def auth(name, ca_file, cert_file=None, key_file=None, timeout=5):
    """Make etcd at ``name`` (an https:// client URL) hold a user per cluster and per member
    node and require authentication. ``cert_file``/``key_file``: this node's client
    certificate (etcd asks every client for one)."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    gvars = pigsty_inventory.global_vars(pigsty_inventory.inventory(__pillar__))
    if not pigsty_inventory.etcd_auth_on(gvars):
        ret["comment"] = "etcd_auth is off: etcd's authentication is left as it is"
        return ret
    try:
        root, users, namespaces, members = _inputs()
    except ValueError as exc:
        ret.update(result=False, comment="refused before any change: %s" % exc)
        return ret
    try:
        client = pigsty_etcd.Client(name, cafile=ca_file, certfile=cert_file, keyfile=key_file, timeout=timeout)
    except (OSError, ValueError) as exc:       # ssl.SSLError is an OSError
        ret.update(result=False, comment="refused before any change: the CA file (ca_file %s) or this "
                   "node's certificate (cert_file %s, key_file %s) cannot be read: %s" % (
                       ca_file, cert_file, key_file, exc))
        return ret
    try:
        if __opts__["test"]:
            steps = pigsty_etcd.plan(client, root, users, namespaces, members)
            if steps:
                ret.update(result=None, changes={"would": steps},
                           comment="etcd at %s would get: %s" % (name, ", ".join(steps)))
            else:
                ret["comment"] = "etcd at %s: users of %d cluster(s) in place, authentication on" % (
                    name, len(users))
            return ret
        steps = pigsty_etcd.apply(client, root, users, namespaces, members)
    except pigsty_etcd.EtcdError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if steps:
        ret["changes"] = {"done": steps}
        ret["comment"] = "etcd at %s: %s" % (name, ", ".join(steps))
    else:
        ret["comment"] = "etcd at %s: users of %d cluster(s) in place, authentication on" % (name, len(users))
    return ret
