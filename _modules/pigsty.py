"""Pigsty inventory on a minion: identity, resolved configuration, local validation.

    salt-call pigsty.identity      grains derived from pillar (pg_cluster, pg_seq, ...)
    salt-call pigsty.config        this instance's resolved parameters (defaults + pillar)
    salt-call pigsty.validate      the inventory as this minion sees it
    salt-call pigsty.prometheus_targets   file_sd files (one per cluster) the meta node writes
    salt-call pigsty.dns_records   the records meta's dnsmasq serves
"""
import salt.exceptions

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_dns
    import pigsty_hba
    import pigsty_infra
    import pigsty_inventory
    import pigsty_monitor
    import pigsty_pgsql
    import pigsty_sql
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

__virtualname__ = "pigsty"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def identity():
    """Identity grains for this minion, derived from the pillar inventory.

    CLI example::

        salt-call pigsty.identity
    """
    return pigsty_inventory.identity(__pillar__, __opts__["id"])


def config():
    """Resolved configuration of this node's instance (None when it hosts none).

    Passwords are part of it: do not print it in logs; templates read it through map.jinja.

    CLI example::

        salt-call pigsty.config
    """
    return pigsty_inventory.instance_config(__pillar__, __opts__["id"])


def validate():
    """Problems in the inventory as this minion sees it (empty list when valid).

    CLI example::

        salt-call pigsty.validate
    """
    inv = pigsty_inventory.inventory(__pillar__)
    cluster, _member = pigsty_inventory.cluster_of_node(inv, __opts__["id"])
    return pigsty_inventory.validate(__pillar__, private={cluster} if cluster else set())


def _conf():
    conf = config()
    if conf is None:
        raise salt.exceptions.CommandExecutionError(
            "minion %s hosts no Postgres instance in the pillar inventory" % __opts__["id"])
    return conf


def _mem_mb():
    return int(__grains__.get("mem_total") or 1024)


def patroni_config():
    """Patroni's config.yml for this instance, as a dict (holds the replication password)."""
    return pigsty_pgsql.patroni_config(_conf(), _mem_mb())


def dcs_config():
    """Patroni's dynamic configuration that pillar asks for (timing plan, failover limits,
    sync mode, cluster-wide parameters)."""
    return pigsty_pgsql.patroni_config(_conf(), _mem_mb())["bootstrap"]["dcs"]


def haproxy_services():
    """HAProxy services of this cluster with their servers."""
    return {"services": pigsty_pgsql.haproxy_services(_conf())}   # each with its check timing


def pgbouncer(forward_to=None):
    """Pgbouncer's databases, HBA lines and userlist lines (SCRAM verifiers, not passwords).
    While a switchover hand-off is in progress (pgbouncer.forwarding), the databases point
    at the primary, so a state run does not undo the hand-off; ``forward_to`` asks what
    they would be when forwarding to that address."""
    conf = _conf()
    databases = pigsty_pgsql.pgbouncer_databases(conf, forward_to or __salt__["pgbouncer.forwarding"]())
    return {
        "databases": databases,
        "database_file": pigsty_pgsql.pgbouncer_database_file(databases),
        "hba": pigsty_hba.pgbouncer_lines(conf),
        "user_options": pigsty_pgsql.pgbouncer_user_options(conf),   # [users]: per-user pools
        # the dbsu logs in by peer authentication only (pgbouncer wants it listed)
        "userlist": ['"%s" ""' % conf["pg_dbsu"]] + [
            '"%s" "%s"' % (name, pigsty_sql.password_hash(name, password))
            for name, password in pigsty_pgsql.pgbouncer_users(conf)],
    }


def vip_manager():
    """vip-manager's settings for this instance's cluster VIP."""
    return pigsty_pgsql.vip_manager_config(_conf())


def patroni_role():
    """This member's role as its Patroni sees it: primary, replica, ... or 'unreachable'
    (Patroni not installed or not running yet). Catalog work keys off this, not pillar."""
    try:
        return __salt__["patroni.status"](port=_conf()["patroni_port"]).get("role") or "unknown"
    except Exception:  # pylint: disable=broad-except
        return "unreachable"


def pgsql_packages():
    """Packages of this database node (pgsql.install); the local repository carries the same."""
    return pigsty_infra.pgsql_packages(_conf())


# ------------------------------------------------------------------ infra (meta nodes)
def _inv():
    return pigsty_inventory.inventory(__pillar__)


def infra():
    """The global infra parameters (defaults < pigsty:vars) and the meta nodes' addresses."""
    inv = _inv()
    conf = pigsty_inventory.global_vars(inv)
    conf["meta_ips"] = pigsty_infra.meta_ips(inv)
    conf["node_ip"] = str(((inv.get("nodes") or {}).get(__opts__["id"]) or {}).get("ip"))
    return conf


def prometheus_targets(roles=None):
    """Prometheus file_sd files: {path: text}, one per cluster plus the infra targets.
    ``roles`` optionally maps instance -> live role.

    CLI example::

        salt-call pigsty.prometheus_targets
    """
    if roles is None and "pigsty_live.roles" in __salt__:
        roles = __salt__["pigsty_live.roles"]()      # the failover runner's latest view
    return pigsty_monitor.target_files(_inv(), roles, minion_id=__opts__["id"])


def prometheus_config():
    """prometheus.yml as text."""
    return pigsty_monitor.HEADER % "Prometheus config" + pigsty_monitor.dump(
        pigsty_monitor.prometheus_config(_inv()))


def prometheus_rules():
    """Pigsty's alerting and recording rules as text."""
    return pigsty_monitor.rules_file(_inv())


def alertmanager_config():
    """alertmanager.yml as text (route and receivers from pillar)."""
    return pigsty_monitor.HEADER % "Alertmanager config" + pigsty_monitor.dump(
        pigsty_monitor.alertmanager_config(_inv()))


def alertmanager_cluster():
    """This meta node's part of the Alertmanagers' gossip (None with one meta node)."""
    return pigsty_monitor.alertmanager_cluster(_inv(), __opts__["id"])


def dns_records(primaries=None):
    """The records meta's dnsmasq serves: list of [name, address].

    CLI example::

        salt-call pigsty.dns_records
    """
    return [list(r) for r in pigsty_dns.records(_inv(), primaries)]


def dns_hosts_file(primaries=None):
    """dnsmasq's addn-hosts file as text."""
    if primaries is None and "pigsty_live.primaries" in __salt__:
        primaries = __salt__["pigsty_live.primaries"]()   # the failover runner's latest view
    return pigsty_dns.hosts_file(pigsty_dns.records(_inv(), primaries))


def repo():
    """The local package repository: packages, directory, URL, apt source line."""
    return pigsty_infra.repo(_inv())


def nginx():
    """Nginx's virtual hosts, the portal's services and clusters, HAProxy admin pages."""
    return pigsty_infra.nginx(_inv())


def grafana():
    """Whether and from where Grafana is installed."""
    return pigsty_infra.grafana(_inv())


def chrony():
    """chrony for this node: server (meta) or client of the meta nodes."""
    return pigsty_infra.chrony(_inv(), __opts__["id"])


def node():
    """The node role's infra clients for this node: resolver, NTP, local repository."""
    return pigsty_infra.node(_inv(), __opts__["id"])


def repo_served(timeout=3):
    """True when the meta node's package repository answers over HTTPS verified with the
    Pigsty CA, as apt will fetch it (False while this node has no CA certificate yet)."""
    return pigsty_infra.repo_served(pigsty_infra.repo(_inv()), timeout)
