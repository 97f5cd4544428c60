"""Patroni's REST API, secured: the server's settings (the ``restapi`` and ``ctl`` sections of
Patroni's config.yml) and every client's ``pigsty_patroni.Access``, from one configuration.

- HTTPS with the node's certificate from the Pigsty CA (_utils/pigsty_pki.py): clients
  verify it against the CA and the address they ask (the certificate names the node's IP).
- Basic authentication for the unsafe methods (POST, PUT, PATCH, DELETE: switchover,
  failover, restart, reinitialise, config changes): one user per cluster,
  ``patroni_username`` / ``patroni_password`` from the cluster's private pillar file.
  Patroni answers GET (status, health checks, /metrics) without it.
- An allow-list for the unsafe methods: the cluster's members (also as Patroni sees them in
  the DCS: ``allowlist_include_members``), the meta nodes (the runner) and the node itself
  over loopback. A host outside it gets 403 even with the password.
"""
import pigsty_patroni
import pigsty_pki

LOOPBACK = "127.0.0.1"


def allowlist(conf):
    """Addresses allowed to call unsafe endpoints: members, meta nodes, loopback."""
    ips = {m["ip"] for m in conf["pg_members"]} | set(conf["pigsty_meta_ips"]) | {LOOPBACK}
    return sorted(ips)


def restapi_config(conf):
    """Patroni's ``restapi`` section for this instance."""
    p = pigsty_pki.paths()
    return {
        "listen": "0.0.0.0:%d" % conf["patroni_port"],
        "connect_address": "%s:%d" % (conf["node_ip"], conf["patroni_port"]),
        "certfile": p["node_crt"],
        "keyfile": p["node_key"],
        "cafile": p["ca_crt"],
        "authentication": {"username": conf["patroni_username"],
                           "password": conf["patroni_password"]},
        "allowlist": allowlist(conf),
        "allowlist_include_members": True,
    }


def ctl_config():
    """Patroni's ``ctl`` section: patronictl (and Patroni's own calls to other members)
    verify the members' certificates against the Pigsty CA."""
    return {"insecure": False, "cacert": pigsty_pki.paths()["ca_crt"]}


def access(conf):
    """How a client reaches this cluster's Patroni: HTTPS verified against the CA, with the
    cluster's login. ``conf``: an instance's or the cluster's resolved parameters. Without a
    password (an invalid inventory) it has no login: Patroni refuses the unsafe methods."""
    if not conf.get("patroni_password"):
        return read_access()
    return pigsty_patroni.Access(ca_file=pigsty_pki.paths()["ca_crt"],
                                 username=conf["patroni_username"],
                                 password=conf["patroni_password"])


def read_access(ca_file=None):
    """HTTPS verified against the CA, without credentials: enough for every GET."""
    return pigsty_patroni.Access(ca_file=ca_file or pigsty_pki.paths()["ca_crt"])


def node_access(salt_funcs):
    """The Access of a client on a node (execution modules, states): the cluster's login
    from the instance's configuration (``pigsty.config``, from pillar) when the node hosts
    an instance, else HTTPS with the CA alone (enough for GET)."""
    conf = None
    fun = salt_funcs.get("pigsty.config") if hasattr(salt_funcs, "get") else None
    if fun is not None:
        try:
            conf = fun()
        except Exception:  # pylint: disable=broad-except  (no inventory in pillar: no login)
            conf = None
    return access(conf) if conf else read_access()
