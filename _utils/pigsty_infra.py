"""The infra role (meta nodes) and the node role's infra clients, from the inventory:
the local package repository, the Nginx portal and virtual hosts, chrony, resolv.conf.

Pure Python (no Salt imports): _modules/pigsty.py exposes these to the templates, and the
unit tests call them directly.
"""
import pigsty_crontab
import pigsty_defaults as D
import pigsty_live_files
import pigsty_model
import pigsty_node_admin
import pigsty_node_tune
import pigsty_pgsql
import pigsty_pki

REPO_NAME = "pigsty"                    # served at https://META/pigsty/
REPO_CACHE = "/var/cache/pigsty-repo"   # apt's download cache for the repository
REPO_LIST = "/var/lib/pigsty-repo/packages.list"   # what the repository must carry


def meta_ips(inv):
    return list(pigsty_model.index(inv).meta_ips)


# ------------------------------------------------------------------ local repository
def repo_packages(inv):
    """The packages the local repository carries (their dependencies are added when it is
    built): what pgsql.install, dcs and the node role install, plus repo_packages_extra."""
    idx = pigsty_model.index(inv)
    gvars = idx.gvars
    versions = {cls.conf["pg_version"] for cls in idx.clusters()} or {gvars["pg_version"]}
    pkgs = set(D.DCS_PACKAGES) | set(D.NODE_PACKAGES) | set(D.BACKUP_REPO_PACKAGES)
    for version in versions:
        pkgs |= {p.format(pg_version=version) for p in D.PGSQL_PACKAGES}
    for cls in idx.clusters():      # what pgsql_packages adds for the cluster's settings
        pkgs |= set(pgsql_packages(dict(cls.conf, pg_version=cls.conf["pg_version"])))
    scopes = [gvars] + [cls.conf for cls in idx.clusters()]     # node role: every node's
    if any(conf.get("node_crontab") for conf in scopes):
        pkgs.add("cron")            # node.crontab: the daemon that reads /etc/crontab
    if any(conf.get("node_admin_enabled") is True for conf in scopes):
        pkgs |= set(D.NODE_ADMIN_PACKAGES)                      # node.admin: sudo
    for conf in scopes:
        pkgs |= {str(p) for p in conf.get("node_packages") or []}   # node.packages
    pkgs |= {str(p) for p in gvars.get("repo_packages_extra") or []}
    return sorted(pkgs)


def pgsql_packages(conf):
    """Packages of a database node (pgsql.install), for its resolved configuration (Patroni's
    Consul client only when the DCS is Consul)."""
    pkgs = [p.format(pg_version=conf["pg_version"]) for p in D.PGSQL_PACKAGES]
    if conf.get("dcs_type") == "consul":
        pkgs.append("python3-consul")
    if pigsty_pgsql.locales(conf):
        pkgs.append("locales")          # locale-gen, for initdb's locales
    pkgs += [p for p in conf.get("pg_extensions") or [] if p not in pkgs]
    return pkgs


def repo_url(inv):
    """The repository over HTTPS (the meta node's certificate from the Pigsty CA names its
    address): apt verifies it with the CA (``repo()['ca']``), so what a node installs cannot
    be changed on the way."""
    inv = pigsty_model.index(inv)
    gvars = inv.gvars
    ips = meta_ips(inv)
    port = gvars["nginx_ssl_port"]
    return "https://%s%s/%s" % (ips[0], "" if port == 443 else ":%d" % port, REPO_NAME)


def repo(inv):
    inv = pigsty_model.index(inv)
    gvars = inv.gvars
    return {
        "packages": repo_packages(inv),
        "dir": "%s/%s" % (gvars["nginx_home"].rstrip("/"), REPO_NAME),
        "cache": REPO_CACHE,
        "list": REPO_LIST,
        "url": repo_url(inv),
        # unsigned (trusted=yes): its integrity comes from TLS with the Pigsty CA
        "source": "deb [trusted=yes] %s ./" % repo_url(inv),
        "ca": pigsty_pki.paths()["ca_crt"],
    }


def repo_served(repo, timeout=3):
    """True when the repository's Packages index answers over HTTPS verified with the CA
    (``repo``: what repo() returns), directly (no proxy); False on any failure, and while
    the CA certificate is not on this node yet."""
    import ssl               # pylint: disable=import-outside-toplevel
    import urllib.request   # pylint: disable=import-outside-toplevel
    try:
        context = ssl.create_default_context(cafile=repo["ca"])
    except (OSError, ssl.SSLError):
        return False
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(urllib.request.Request(repo["url"] + "/Packages", method="HEAD"),
                         timeout=timeout) as resp:
            return resp.status == 200
    except Exception:  # pylint: disable=broad-except
        return False


# ------------------------------------------------------------------ nginx and the portal
def _domain(gvars, name):
    """The domain of a portal entry (one of D.PORTAL_SERVICES), or None."""
    entry = (gvars.get("infra_portal") or {}).get(name) or {}
    return entry.get("domain")


def grafana(inv):
    """How Grafana is installed: {'enabled', 'repo', 'package_url', 'port', 'reason'}."""
    inv = pigsty_model.index(inv)
    gvars = inv.gvars
    repo_line, url = gvars.get("grafana_repo"), gvars.get("grafana_package_url")
    return {
        "enabled": bool(repo_line or url),
        "repo": repo_line,
        "package_url": url,
        "port": gvars["grafana_port"],
        "reason": None if (repo_line or url) else (
            "Grafana skipped: Debian 12 has no Grafana package and pillar names no source "
            "(set pigsty:vars:grafana_repo or pigsty:vars:grafana_package_url)"),
    }


def nginx(inv):
    """Everything the Nginx config and the portal pages print. O(N): indexed once."""
    inv = pigsty_model.index(inv)
    gvars = inv.gvars
    ips = meta_ips(inv)
    gf = grafana(inv)
    proxies = []
    for name, port, enabled in (("prometheus", gvars["prometheus_port"], True),
                                ("alertmanager", gvars["alertmanager_port"], True),
                                ("grafana", gvars["grafana_port"], gf["enabled"])):
        domain = _domain(gvars, name)
        if domain:
            proxies.append({"name": name, "domain": domain, "upstream": "127.0.0.1:%d" % port,
                            "enabled": enabled,
                            "reason": None if enabled else gf["reason"]})
    haproxy, patroni = [], []
    clusters = []
    for cls in inv.clusters():
        cluster, conf, members = cls.name, cls.conf, cls.members
        vip = cls.vip.ip if cls.vip else None
        clusters.append({"name": cluster, "vip": vip, "members": [
            {"ins": m["pg_instance"], "ip": m["ip"], "role": m["pg_role"], "node": m["minion"]}
            for m in members]})
        for m in members:     # HTTPS, verified against the CA for the node's name (its SAN)
            haproxy.append({"ins": m["pg_instance"], "cls": cluster, "ip": m["ip"],
                            "upstream": "%s:%d" % (m["ip"], conf["haproxy_admin_port"]),
                            "ssl_name": m["minion"]})
            patroni.append({"ins": m["pg_instance"], "cls": cluster,
                            "upstream": "%s:%d" % (m["ip"], conf["patroni_port"]),
                            "ssl_name": m["minion"]})
    services = [{"name": p["name"], "domain": p["domain"], "enabled": p["enabled"]}
                for p in proxies]
    if _domain(gvars, "haproxy"):
        services.append({"name": "haproxy", "domain": _domain(gvars, "haproxy"), "enabled": True})
    ssl_port = gvars["nginx_ssl_port"]
    pki = pigsty_pki.paths()
    return {
        "port": gvars["nginx_port"],              # plain HTTP: 301 to HTTPS, nothing else
        "ssl_port": ssl_port,                     # the portal and its virtual hosts
        "https_suffix": "" if ssl_port == 443 else ":%d" % ssl_port,   # in https:// links
        "cert": pki["node_crt"],                  # the meta node's, from the Pigsty CA: its
        "key": pki["node_key"],                   # SANs name the portal's domains
        "ca": pki["ca_crt"],                      # verifies the HAProxy pages' upstreams
        "home": gvars["nginx_home"].rstrip("/"),
        "home_domain": _domain(gvars, "home") or "pigsty",
        "haproxy_domain": _domain(gvars, "haproxy"),
        "proxies": proxies,
        "haproxy": haproxy,
        "patroni": patroni,                       # the live portal reads each member's GET /cluster
        "alertmanager": "127.0.0.1:%d" % gvars["alertmanager_port"],   # ... and the firing alerts
        "live_dir": pigsty_live_files.LIVE_DIR,   # ... and the runner's live roles and HA events
        "clusters": clusters,
        "services": services,
        "meta_ip": ips[0] if ips else None,
        "repo": repo(inv),
    }


# ------------------------------------------------------------------ chrony and resolv.conf
def chrony(inv, minion_id):
    """chrony for one node: the meta nodes serve time (from ntp_upstream, or their local
    clock), the others sync from them."""
    inv = pigsty_model.index(inv)
    gvars = inv.gvars
    node = (inv.get("nodes") or {}).get(minion_id) or {}
    is_meta = bool(node.get("meta"))
    if is_meta:
        sources = [str(s) for s in gvars.get("ntp_upstream") or []]
        allow = [str(a) for a in gvars.get("ntp_allow") or []]
    else:
        sources = ["server %s iburst" % ip for ip in meta_ips(inv)]
        allow = []
    return {
        "meta": is_meta,
        "enabled": is_meta or bool(gvars["node_ntp_enabled"]),
        "sources": sources,
        "allow": allow,
        "local_stratum": 10 if is_meta else None,   # serve time even without upstream
        "no_clock_control": bool(gvars["ntp_no_clock_control"]),
    }


def node(inv, minion_id):
    """The node role's infra clients: resolver, NTP, local repository."""
    inv = pigsty_model.index(inv)
    gvars = inv.gvars
    n = (inv.get("nodes") or {}).get(minion_id) or {}
    is_meta = bool(n.get("meta"))
    cluster, _member = inv.cluster_of_node(minion_id)
    conf = inv.cluster(cluster).conf if cluster else gvars    # node tuning: the cluster's
    return {
        "timezone": conf["node_timezone"],
        "tune": conf["node_tune"],
        "sysctl": pigsty_node_tune.sysctl(conf),     # the profile's, node_sysctl_params over them
        "packages": list(conf["node_packages"]),
        "admin": pigsty_node_admin.plan(conf),
        "crontab": pigsty_crontab.plan(conf),
        "meta": is_meta,
        "dns_method": gvars["node_dns_method"],
        "nameservers": meta_ips(inv),
        "ntp": chrony(inv, minion_id),
        "repo_local": bool(gvars["node_repo_local"]) and not is_meta,
        "repo": repo(inv),
        "repo_hosts": meta_ips(inv),
    }
