"""The DCS that Patroni uses: where etcd's members run (salt/dcs reads ``layout``), health
of etcd (HTTPS /health, verified against the Pigsty CA) or of the user's Consul (py-consul,
the maintained fork of python-consul, same `import consul` API); and, on a meta node,
forgetting a removed cluster's keys in etcd.

    salt '*' pigsty_dcs.layout
    salt node-1 pigsty_dcs.initial
    salt meta pigsty_dcs.members
    salt meta pigsty_dcs.health
    salt meta pigsty_dcs.forget pg-test
"""
import os

import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_etcd
    import pigsty_etcd_members
    import pigsty_inventory
    import pigsty_model
    import pigsty_pki
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "pigsty_dcs"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def layout():
    """The etcd members (dcs_servers, or the meta nodes; the first bootstraps, the others
    join) and this node's part: ``name`` (its member, or None), ``manager`` (it runs the
    first member: it keeps the membership), ``initial`` (its ETCD_INITIAL_* settings),
    ``peer`` (its etcd peer certificate request), the ports and certificate paths. Reads
    the inventory only (the top file calls it).

    CLI example::

        salt '*' pigsty_dcs.layout
    """
    inv = pigsty_inventory.inventory(__pillar__)
    idx = pigsty_model.index(inv)
    conf = idx.gvars
    members = [dict(m) for m in idx.dcs_members] if conf["dcs_type"] == "etcd" else []
    me = next((m for m in members if m["node"] == __opts__["id"]), None)
    pki = pigsty_pki.paths(__salt__["config.get"]("pigsty_pki_dir", pigsty_pki.PKI_DIR))
    out = {"type": conf["dcs_type"], "consul_hosts": list(conf["consul_hosts"]), "members": members,
           "client_port": conf["etcd_port"], "peer_port": conf["etcd_peer_port"],
           "name": me["name"] if me else None, "manager": bool(me and me is members[0]),
           "meta": __opts__["id"] in idx.meta_nodes, "auth": pigsty_inventory.etcd_auth_on(conf),
           "ca": pki["ca_crt"], "cert": pki["node_crt"], "key": pki["node_key"],
           "peer_cert": pki["etcd_peer_crt"], "peer_key": pki["etcd_peer_key"],
           "peer_cn": pigsty_pki.ETCD_PEER_CN, "peer": None}
    if me:
        out["peer"] = pigsty_pki.etcd_peer_request(inv, __opts__["id"], pki["dir"])
    return out


DATA_DIR = "/var/lib/etcd/pigsty"


def initial(data_dir=DATA_DIR, timeout=3):
    """How this node's member starts the first time (salt/dcs writes it to
    /etc/default/etcd-initial): ``{"env": {ETCD_INITIAL_CLUSTER, ETCD_INITIAL_CLUSTER_STATE}}``;
    ``{"started": True}`` when its data directory holds a member already (etcd reads the
    settings no more); ``{"error": why}`` when it cannot join yet; ``{}`` on a node that
    runs no member. The first member starts a new cluster of itself; another one joins the
    cluster as the other members list it (GET /v2/members, with this node's certificate),
    which must list it already (added as a learner by the first member's node).

    CLI example::

        salt node-1 pigsty_dcs.initial
    """
    lay = layout()
    me = next((m for m in lay["members"] if m["name"] == lay["name"]), None)
    if me is None:
        return {}
    if os.path.isdir(os.path.join(data_dir, "member")):
        return {"started": True}
    if lay["manager"]:
        return {"env": pigsty_etcd_members.bootstrap_env(lay["members"], lay["peer_port"])}
    url = pigsty_etcd_members.peer_url(me["ip"], lay["peer_port"])
    errors = []
    for m in lay["members"]:
        if m is me:
            continue
        endpoint = pigsty_etcd_members.client_url(m["ip"], lay["client_port"])
        try:
            status, answer = _client(endpoint, timeout=timeout).request("GET", "/v2/members")
        except (pigsty_etcd.EtcdError, OSError, ValueError) as exc:
            errors.append(str(exc))
            continue
        if status != 200:
            errors.append("%s answered %s to GET /v2/members" % (endpoint, status))
            continue
        try:
            return {"env": pigsty_etcd_members.join_env(pigsty_etcd_members.parse_v2_members(answer),
                                                        me["name"], url)}
        except pigsty_etcd_members.MembersError as exc:
            return {"error": str(exc)}
    return {"error": "no other etcd member answered: %s" % "; ".join(errors)}


def members(timeout=10):
    """etcd's members as etcd lists them (name, id, peer URLs, learner or voting), asked
    with etcdctl as root (password from this meta node's pillar, in etcdctl's environment)
    through every member's client URL.

    CLI example::

        salt meta pigsty_dcs.members
    """
    inv = pigsty_inventory.inventory(__pillar__)
    gvars = pigsty_inventory.global_vars(inv)
    if gvars["dcs_type"] != "etcd":
        raise salt.exceptions.CommandExecutionError("dcs_type is %s: no etcd members" % gvars["dcs_type"])
    user, password = _root(gvars)
    pki = pigsty_pki.paths(__salt__["config.get"]("pigsty_pki_dir", pigsty_pki.PKI_DIR))
    ctl = pigsty_etcd_members.Etcdctl(["https://" + e for e in _endpoints(inv)], pki["ca_crt"], pki["node_crt"],
                                      pki["node_key"], user=user, password=password, timeout=timeout)
    try:
        found = ctl.members()
    except pigsty_etcd_members.MembersError as exc:
        raise salt.exceptions.CommandExecutionError(str(exc)) from None
    return [{"name": m["name"], "id": "%x" % m["id"], "peer_urls": m["peer_urls"],
             "role": "learner" if m["learner"] else "voting"} for m in found]


def _root(gvars):
    """(user, password) of etcd's root from this meta node's pillar when etcd_auth is on,
    else (None, None); refused, naming the field, when the password is missing."""
    if not pigsty_inventory.etcd_auth_on(gvars):
        return None, None
    problems = pigsty_inventory.validate_dcs_secrets(__pillar__, clusters=False)
    if problems:
        raise salt.exceptions.CommandExecutionError("; ".join(problems))
    return pigsty_etcd.ROOT, pigsty_inventory.dcs_secrets(__pillar__)["root_password"]


def _endpoints(inv):
    idx = pigsty_model.index(inv)
    return ["%s:%d" % (m["ip"], idx.gvars["etcd_port"]) for m in idx.dcs_members]


def _client(endpoint, **kwargs):
    """An etcd client with this node's certificate (etcd asks every client for one)."""
    pki = pigsty_pki.paths(__salt__["config.get"]("pigsty_pki_dir", pigsty_pki.PKI_DIR))
    return pigsty_etcd.Client(endpoint, cafile=pki["ca_crt"], certfile=pki["node_crt"],
                              keyfile=pki["node_key"], **kwargs)


def _etcd(endpoint, timeout):
    try:
        return _client("https://" + endpoint, timeout=timeout).health()
    except (pigsty_etcd.EtcdError, OSError, ValueError):
        return False


def _consul(endpoint, timeout):
    try:
        import consul  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise salt.exceptions.CommandExecutionError(
            "dcs_type consul needs py-consul in Salt's Python (requirements.txt)")
    host, port = endpoint.rsplit(":", 1)
    try:
        return bool(consul.Consul(host=host, port=int(port), timeout=timeout).status.leader())
    except Exception:  # pylint: disable=broad-except
        return False


def health(timeout=2):
    """{endpoint: healthy} for every DCS endpoint of the inventory."""
    gvars = pigsty_inventory.global_vars(pigsty_inventory.inventory(__pillar__))
    if gvars["dcs_type"] == "consul":
        return {e: _consul(e, timeout) for e in gvars["consul_hosts"]}
    return {e: _etcd(e, timeout) for e in _endpoints(pigsty_inventory.inventory(__pillar__))}


def forget(cluster, timeout=5):
    """Delete a removed cluster's keys (``<pg_namespace>/<cluster>``) from etcd, as root
    when etcd_auth is on (its password from this meta node's pillar); returns what was done.
    The cluster's etcd user and role stay while it is in the inventory (a cluster of the
    same name that comes back uses them); once it has left the inventory, the meta node's
    dcs state removes them (pigsty_etcd.removed_clusters: only with its keys gone).

    CLI example::

        salt meta pigsty_dcs.forget pg-test
    """
    inv = pigsty_inventory.inventory(__pillar__)
    gvars = pigsty_inventory.global_vars(inv)
    if gvars["dcs_type"] != "etcd":
        return "DCS is %s: nothing to forget in etcd" % gvars["dcs_type"]
    if cluster not in (inv.get("clusters") or {}):
        raise salt.exceptions.CommandExecutionError(
            "cluster: %r is not a cluster of the inventory (expected one of: %s)" % (
                cluster, ", ".join(sorted(inv.get("clusters") or {}))))
    key = pigsty_etcd.prefix(pigsty_inventory.cluster_vars(inv, cluster)["pg_namespace"], cluster)
    username, password = _root(gvars)
    for hostport in _endpoints(inv):
        endpoint = "https://" + hostport
        client = _client(endpoint, username=username, password=password, timeout=timeout)
        try:
            status, _ = client.delete(key, recursive=True)
        except pigsty_etcd.EtcdError:
            continue
        if status in (200, 201):
            return "deleted %s" % key
        if status == 404:
            return "%s: no such keys" % key
        raise salt.exceptions.CommandExecutionError("etcd %s answered %s to deleting %s" % (endpoint, status, key))
    raise salt.exceptions.CommandExecutionError("no etcd endpoint answered")
