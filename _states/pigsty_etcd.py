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
And its membership, from the first member's node (a meta node):

    etcd-members:
      pigsty_etcd.members:
        - name: https://127.0.0.1:2379

adds the inventory's members (dcs_servers) that the cluster lacks as learners and promotes
the learners that have started (_utils/pigsty_etcd_members.py).

The passwords come from the meta node's pillar (pigsty:dcs, see pigsty_inventory.dcs_secrets),
never from the SLS, so they appear in no state argument, log line or return.
"""
# A util named like a module of this directory comes after one that is not: without the
# _utils, Salt's loader has this directory on sys.path and the import would find the module.
try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_inventory
    import pigsty_model
    import pigsty_etcd
    import pigsty_etcd_members
    import pigsty_ha_shared_lock
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
    return (secrets["root_password"], secrets["users"], namespaces, members,
            pigsty_ha_shared_lock.masters(idx.meta_nodes))


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
        root, users, namespaces, members, masters = _inputs()
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
            steps = pigsty_etcd.plan(client, root, users, namespaces, members, masters)
            if steps:
                ret.update(result=None, changes={"would": steps},
                           comment="etcd at %s would get: %s" % (name, ", ".join(steps)))
            else:
                ret["comment"] = "etcd at %s: users of %d cluster(s) in place, authentication on" % (
                    name, len(users))
            return ret
        steps = pigsty_etcd.apply(client, root, users, namespaces, members, masters)
    except pigsty_etcd.EtcdError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if steps:
        ret["changes"] = {"done": steps}
        ret["comment"] = "etcd at %s: %s" % (name, ", ".join(steps))
    else:
        ret["comment"] = "etcd at %s: users of %d cluster(s) in place, authentication on" % (name, len(users))
    return ret


def members(name, ca_file, cert_file, key_file, wait=60):
    """etcd at ``name`` (this node's member, an https:// client URL) lists every member of
    the inventory (dcs_servers, or the meta nodes): the missing ones are added as learners,
    the learners that have started are promoted once they have caught up (at most ``wait``
    seconds). A learner that has not started yet (its node's dcs state joins it) is left,
    and said. Members the inventory does not have are reported, not removed."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    inv = pigsty_inventory.inventory(__pillar__)
    idx = pigsty_model.index(inv)
    gvars = idx.gvars
    wanted = [{"name": m["name"], "ip": m["ip"]} for m in idx.dcs_members]
    user = password = None
    if pigsty_inventory.etcd_auth_on(gvars):
        problems = pigsty_inventory.validate_dcs_secrets(__pillar__, clusters=False)
        if problems:
            ret.update(result=False, comment="refused before any change: %s" % "; ".join(problems))
            return ret
        user, password = pigsty_etcd.ROOT, pigsty_inventory.dcs_secrets(__pillar__)["root_password"]
    ctl = pigsty_etcd_members.Etcdctl([name], ca_file, cert_file, key_file, user=user, password=password)
    port = gvars["etcd_peer_port"]
    try:
        changes, steps = pigsty_etcd_members.converge(ctl, wanted, port, dry=__opts__["test"], wait=wait)
    except (pigsty_etcd_members.MembersError, ValueError) as exc:
        ret.update(result=False, comment="etcd membership at %s: %s" % (name, exc))
        return ret
    notes = []
    if steps["waiting"]:
        notes.append("learner %s has not started yet (its node's dcs state starts it)" % ", ".join(
            steps["waiting"]))
    if steps["pending"]:
        notes.append("%s join%s next, one at a time (etcd takes one learner at a time: run the dcs "
                     "state of the new member's node, then this again; orch.dcs does both)" % (
                         ", ".join(steps["pending"]), "s" if len(steps["pending"]) == 1 else ""))
    if steps["unknown"]:
        notes.append("member(s) %s are not in the inventory: left (etcdctl member remove, if meant)" % ", ".join(
            steps["unknown"]))
    done = [("promoted" if k == "promoted" else "added as a learner") + " " + ", ".join(v)
            for k, v in sorted(changes.items(), key=lambda kv: kv[0] != "promoted")]
    if __opts__["test"] and changes:
        ret.update(result=None, changes={"would": changes},
                   comment="; ".join(["would have " + ", ".join(done)] + notes))
        return ret
    ret["changes"] = changes
    ret["comment"] = "; ".join([", ".join(done) if done else "%d member(s) as the inventory says" % (
        len(wanted) - len(steps["pending"]) - len(steps["add"]))] + notes)
    return ret
    ret["changes"] = changes
    head = ("added %s as learner(s), promoted %s" % (", ".join(changes.get("added", [])) or "none",
                                                    ", ".join(changes.get("promoted", [])) or "none")
            if changes else "%d member(s) as the inventory says" % len(wanted))
    ret["comment"] = "; ".join([head] + notes)
    return ret
