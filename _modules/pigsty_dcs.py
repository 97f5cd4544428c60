"""The DCS that Patroni uses: health of etcd (HTTPS /health, verified against the Pigsty
CA) or of the user's Consul (py-consul, the maintained fork of python-consul, same
`import consul` API); and, on a meta node, forgetting a removed cluster's keys in etcd.

    salt meta pigsty_dcs.health
    salt meta pigsty_dcs.forget pg-test
"""
import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_etcd
    import pigsty_inventory
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


def _client(endpoint, **kwargs):
    """An etcd client with this node's certificate (etcd asks every client for one)."""
    pki = pigsty_pki.paths()
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
    nodes = pigsty_inventory.inventory(__pillar__).get("nodes") or {}
    endpoints = ["%s:%d" % (nodes[n]["ip"], gvars["etcd_port"])
                 for n in pigsty_inventory.meta_nodes(pigsty_inventory.inventory(__pillar__))]
    return {e: _etcd(e, timeout) for e in endpoints}


def forget(cluster, timeout=5):
    """Delete a removed cluster's keys (``<pg_namespace>/<cluster>``) from etcd, as root
    when etcd_auth is on (its password from this meta node's pillar); returns what was done.
    The cluster's etcd user and role stay: a cluster of the same name that comes back uses
    them (the meta node's state removes nothing of the inventory's clusters).

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
    username = password = None
    if pigsty_inventory.etcd_auth_on(gvars):
        problems = pigsty_inventory.validate_dcs_secrets(__pillar__, clusters=False)
        if problems:
            raise salt.exceptions.CommandExecutionError("; ".join(problems))
        username, password = pigsty_etcd.ROOT, pigsty_inventory.dcs_secrets(__pillar__)["root_password"]
    nodes = inv.get("nodes") or {}
    for name in pigsty_inventory.meta_nodes(inv):
        endpoint = "https://%s:%d" % (nodes[name]["ip"], gvars["etcd_port"])
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
