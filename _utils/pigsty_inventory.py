"""The Pigsty inventory in pillar: validation, per-instance resolution, grain identity.

Pillar layout (Pigsty's identity model; see pillar/pigsty.sls)::

    pigsty:
      vars: {...}                      # global parameters (Pigsty's all.vars)
      nodes:                           # minion id -> node
        meta:   {ip: 10.10.10.10, meta: true}
        node-1: {ip: 10.10.10.11}
      clusters:
        pg-test:
          hosts:                       # keyed by node address, like Pigsty's inventory
            10.10.10.11: {pg_seq: 1, pg_role: primary}
          vars: {pg_vip_address: 10.10.10.3/24, pg_users: [...], ...}

Each cluster's private vars (users, databases, passwords) live in their own pillar file,
targeted to the cluster's members only; pillar's merge joins them under the same key.

Pure Python (no Salt imports): the ext_pillar, the runner, the execution module and the unit
tests all call these functions. Error messages name the pillar path of the offending field
and what was expected, and never include a password.
"""
import copy
import ipaddress
import re

import pigsty_defaults as D
import pigsty_hba
import pigsty_syntax

CLUSTER_RE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$")
NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
PG_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class InventoryError(ValueError):
    """Raised with every problem found; ``problems`` holds one message per field."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("invalid Pigsty pillar (%d problem%s):\n  - %s" % (
            len(self.problems), "" if len(self.problems) == 1 else "s",
            "\n  - ".join(self.problems)))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _ipv4(value):
    try:
        return ipaddress.IPv4Address(str(value))
    except (ipaddress.AddressValueError, ValueError):
        return None


def inventory(pillar):
    """The ``pigsty`` pillar key, or an InventoryError when it is missing or not a mapping."""
    # Salt passes __pillar__ as a dict-like loader context, not a dict
    inv = pillar.get("pigsty") if hasattr(pillar, "get") else None
    if not isinstance(inv, dict):
        raise InventoryError(["pigsty: missing or not a mapping (expected the Pigsty inventory "
                              "with 'nodes' and 'clusters'; see pillar/pigsty.sls)"])
    return inv


# ------------------------------------------------------------------ resolution
def node_by_ip(inv):
    return {str(n.get("ip")): nid for nid, n in (inv.get("nodes") or {}).items()
            if isinstance(n, dict)}


def cluster_of_node(inv, minion_id):
    """(cluster name, member entry) of the node, or (None, None) when it hosts no instance."""
    node = (inv.get("nodes") or {}).get(minion_id)
    if not isinstance(node, dict):
        return None, None
    ip = str(node.get("ip"))
    for name, cls in sorted((inv.get("clusters") or {}).items()):
        hosts = (cls or {}).get("hosts") or {}
        for hip, member in hosts.items():
            if str(hip) == ip:
                return name, member or {}
    return None, None


def global_vars(inv):
    """Global parameters: DEFAULTS < pigsty:vars."""
    merged = copy.deepcopy(D.DEFAULTS)
    merged.update(copy.deepcopy(inv.get("vars") or {}))
    return merged


def cluster_vars(inv, name):
    """Cluster-level parameters: DEFAULTS < pigsty:vars < clusters:NAME:vars."""
    merged = global_vars(inv)
    merged.update(copy.deepcopy(((inv.get("clusters") or {}).get(name) or {}).get("vars") or {}))
    merged["pg_cluster"] = name
    return merged


def cluster_members(inv, name):
    """Members of a cluster sorted by pg_seq: dicts with identity, address and minion id."""
    by_ip = node_by_ip(inv)
    hosts = ((inv.get("clusters") or {}).get(name) or {}).get("hosts") or {}
    members = []
    for ip, member in hosts.items():
        member = member or {}
        seq = member.get("pg_seq")
        members.append({
            "ip": str(ip),
            "minion": by_ip.get(str(ip)),
            "pg_seq": seq,
            "pg_role": member.get("pg_role"),
            "pg_instance": "%s-%s" % (name, seq),
            "pg_offline_query": bool(member.get("pg_offline_query", False)),
        })
    return sorted(members, key=lambda m: (m["pg_seq"] if _is_int(m["pg_seq"]) else 0, m["ip"]))


def meta_nodes(inv):
    return sorted(nid for nid, n in (inv.get("nodes") or {}).items()
                  if isinstance(n, dict) and n.get("meta"))


def identity(pillar, minion_id):
    """Grains that carry a node's identity, derived from pillar.

    Keys: node_ip, pigsty_meta, pigsty_meta_nodes, and for a node hosting an instance
    pg_cluster, pg_seq, pg_role, pg_instance. A node without an instance gets None for the
    pg_* keys (the state removes those grains).
    """
    inv = inventory(pillar)
    node = (inv.get("nodes") or {}).get(minion_id)
    if not isinstance(node, dict):
        raise InventoryError(["pigsty:nodes:%s: this minion is not in the node map "
                              "(expected an entry with its 'ip')" % minion_id])
    name, member = cluster_of_node(inv, minion_id)
    grains = {
        "node_ip": str(node.get("ip")),
        "pigsty_meta": bool(node.get("meta", False)),
        "pigsty_meta_nodes": meta_nodes(inv),
        "pg_cluster": None, "pg_seq": None, "pg_role": None, "pg_instance": None,
    }
    if name:
        grains.update({
            "pg_cluster": name,
            "pg_seq": member.get("pg_seq"),
            "pg_role": member.get("pg_role"),
            "pg_instance": "%s-%s" % (name, member.get("pg_seq")),
        })
    return grains


def instance_config(pillar, minion_id):
    """The resolved configuration of the instance on this node (cluster vars + identity +
    member list), or None when the node hosts no instance."""
    inv = inventory(pillar)
    name, member = cluster_of_node(inv, minion_id)
    if not name:
        return None
    conf = cluster_vars(inv, name)
    for key, value in (member or {}).items():
        conf[key] = copy.deepcopy(value)
    conf.update(identity(pillar, minion_id))
    conf["pg_members"] = cluster_members(inv, name)
    nodes = inv.get("nodes") or {}
    conf["pigsty_meta_ips"] = [str(nodes[n]["ip"]) for n in meta_nodes(inv)]
    conf["pg_default_services"] = copy.deepcopy(D.DEFAULT_SERVICES)
    return conf


# ------------------------------------------------------------------ validation
def validate(pillar, private=None):
    """Return the list of problems in the inventory (empty when valid).

    ``private``: names of the clusters whose private part (users, databases, passwords) is
    expected in this pillar; None means every cluster (the master's full view). A minion's
    pillar holds only its own cluster's private part, so the ext_pillar passes that one.
    """
    try:
        inv = inventory(pillar)
    except InventoryError as exc:
        return exc.problems
    problems = []
    nodes = _validate_nodes(inv, problems)
    clusters = inv.get("clusters")
    if clusters is None:
        clusters = {}
    if not isinstance(clusters, dict):
        problems.append("pigsty:clusters: expected a mapping of cluster name -> "
                        "{hosts, vars}, got %s" % type(clusters).__name__)
        clusters = {}
    gvars = inv.get("vars") or {}
    if not isinstance(gvars, dict):
        problems.append("pigsty:vars: expected a mapping of parameters")
    else:
        _check_known_vars("pigsty:vars", gvars, problems)
        _validate_infra(gvars, problems)
        for secret in D.REQUIRED_SECRETS:
            if gvars.get(secret):
                problems.append("pigsty:vars:%s: passwords belong in the cluster's private "
                                "pillar file (pillar/clusters/CLUSTER.sls), not in the global "
                                "vars that every node reads" % secret)
    _validate_dcs(global_vars(inv) if isinstance(gvars, dict) else D.DEFAULTS, problems)
    node_owner = {}
    vips = {}
    for name in sorted(clusters):
        _validate_cluster(inv, name, clusters[name], nodes, node_owner, vips, problems,
                          private is None or name in private)
    problems.extend(pigsty_syntax.validate(inv, private))
    return problems


def check(pillar, private=None):
    """Raise InventoryError with every problem, or return the inventory when valid."""
    problems = validate(pillar, private)
    if problems:
        raise InventoryError(problems)
    return inventory(pillar)


DURATION_RE = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
DURATION_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1,
                  "ms": 0.001}
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                         r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def duration_seconds(value):
    """Seconds of a Prometheus duration ("10s", "1h30m"), or None when it is not one."""
    if not isinstance(value, str) or not value or not DURATION_RE.fullmatch(value):
        return None
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", value):
        total += int(number) * DURATION_UNITS[unit]
    return total


def _validate_infra(gvars, problems):
    """Global infra parameters (Prometheus, Alertmanager, Nginx, DNS, NTP, repository)."""
    conf = global_vars({"vars": gvars})
    path = "pigsty:vars"
    for key in ("prometheus_scrape_interval", "prometheus_scrape_timeout",
                "prometheus_eval_interval", "prometheus_retention"):
        if not duration_seconds(conf.get(key)):
            problems.append("%s:%s: expected a Prometheus duration such as 10s, 5m or 15d, "
                            "got %r" % (path, key, conf.get(key)))
    if conf.get("prometheus_alert_for") is not None and duration_seconds(
            conf["prometheus_alert_for"]) is None:
        problems.append("%s:prometheus_alert_for: expected a duration such as 10s or 1m (or "
                        "null: each alert's own), got %r" % (path, conf["prometheus_alert_for"]))
    interval = duration_seconds(conf.get("prometheus_scrape_interval"))
    timeout = duration_seconds(conf.get("prometheus_scrape_timeout"))
    if interval and timeout and timeout > interval:
        problems.append("%s:prometheus_scrape_timeout: %s is longer than "
                        "prometheus_scrape_interval %s (Prometheus refuses that)" % (
                            path, conf["prometheus_scrape_timeout"],
                            conf["prometheus_scrape_interval"]))
    for key in ("prometheus_port", "alertmanager_port", "alert_sink_port", "grafana_port",
                "nginx_port", "dns_port"):
        _port(path, key, conf.get(key), problems)
    for key in ("alert_sink_enabled", "node_repo_local", "node_ntp_enabled",
                "ntp_no_clock_control"):
        if not isinstance(conf.get(key), bool):
            problems.append("%s:%s: expected true or false, got %r" % (path, key, conf.get(key)))
    receivers = conf.get("alertmanager_receivers")
    names = []
    if not isinstance(receivers, list) or not all(
            isinstance(r, dict) and isinstance(r.get("name"), str) for r in receivers):
        problems.append("%s:alertmanager_receivers: expected a list of Alertmanager receivers, "
                        "each with a name" % path)
    else:
        names = [r["name"] for r in receivers]
    route = conf.get("alertmanager_route")
    if not isinstance(route, dict):
        problems.append("%s:alertmanager_route: expected Alertmanager's route (a mapping with "
                        "a receiver)" % path)
    elif names and route.get("receiver") not in names:
        problems.append("%s:alertmanager_route:receiver: %r is not one of "
                        "alertmanager_receivers (%s)" % (path, route.get("receiver"),
                                                         ", ".join(names)))
    if conf.get("grafana_repo") and conf.get("grafana_package_url"):
        problems.append("%s:grafana_package_url: give grafana_repo or grafana_package_url, "
                        "not both" % path)
    if conf.get("node_dns_method") not in ("overwrite", "none"):
        problems.append("%s:node_dns_method: expected overwrite or none, got %r" % (
            path, conf.get("node_dns_method")))
    portal = conf.get("infra_portal")
    if not isinstance(portal, dict):
        problems.append("%s:infra_portal: expected a mapping of name -> {domain: NAME}" % path)
    else:
        for name, entry in sorted(portal.items()):
            domain = entry.get("domain") if isinstance(entry, dict) else None
            if not isinstance(domain, str) or not HOSTNAME_RE.fullmatch(domain):
                problems.append("%s:infra_portal:%s:domain: expected a host name such as "
                                "p.pigsty, got %r" % (path, name, domain))
    records = conf.get("dns_records")
    if not isinstance(records, list):
        problems.append("%s:dns_records: expected a list of \"ADDRESS NAME...\" lines" % path)
        records = []
    for i, line in enumerate(records):
        fields = str(line).split()
        if len(fields) < 2 or _ipv4(fields[0]) is None or not all(
                HOSTNAME_RE.fullmatch(f) for f in fields[1:]):
            problems.append("%s:dns_records[%d]: expected \"ADDRESS NAME [NAME...]\", got %r" % (
                path, i, line))
    for key in ("dns_upstream", "ntp_upstream", "ntp_allow", "repo_packages_extra"):
        if not isinstance(conf.get(key), list):
            problems.append("%s:%s: expected a list, got %r" % (path, key, conf.get(key)))
    for i, upstream in enumerate(conf.get("dns_upstream") if isinstance(
            conf.get("dns_upstream"), list) else []):
        if _ipv4(upstream) is None:
            problems.append("%s:dns_upstream[%d]: expected an IPv4 address, got %r" % (
                path, i, upstream))
    for i, net in enumerate(conf.get("ntp_allow") if isinstance(conf.get("ntp_allow"), list) else []):
        try:
            ipaddress.IPv4Network(str(net), strict=False)
        except ValueError:
            problems.append("%s:ntp_allow[%d]: expected a network such as 10.10.10.0/24, got %r"
                            % (path, i, net))
    pkg_re = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
    for i, pkg in enumerate(conf.get("repo_packages_extra") if isinstance(
            conf.get("repo_packages_extra"), list) else []):
        if not isinstance(pkg, str) or not pkg_re.fullmatch(pkg):
            problems.append("%s:repo_packages_extra[%d]: expected a Debian package name, got %r"
                            % (path, i, pkg))
    if not isinstance(conf.get("nginx_home"), str) or not conf["nginx_home"].startswith("/"):
        problems.append("%s:nginx_home: expected an absolute path, got %r" % (
            path, conf.get("nginx_home")))


def _validate_nodes(inv, problems):
    nodes = inv.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        problems.append("pigsty:nodes: expected a non-empty mapping of minion id -> "
                        "{ip: ADDRESS, meta: BOOL}")
        return {}
    seen_ip = {}
    valid = {}
    for nid, node in sorted(nodes.items()):
        path = "pigsty:nodes:%s" % nid
        if not NODE_RE.fullmatch(str(nid)):
            problems.append("%s: bad minion id (expected letters, digits, '.', '_' or '-')" % path)
        if not isinstance(node, dict):
            problems.append("%s: expected a mapping with 'ip'" % path)
            continue
        for key in sorted(set(node) - D.NODE_KEYS):
            problems.append("%s:%s: unknown field (expected one of: %s)" % (
                path, key, ", ".join(sorted(D.NODE_KEYS))))
        ip = _ipv4(node.get("ip"))
        if ip is None:
            problems.append("%s:ip: expected an IPv4 address, got %r" % (path, node.get("ip")))
            continue
        if "meta" in node and not isinstance(node["meta"], bool):
            problems.append("%s:meta: expected true or false, got %r" % (path, node["meta"]))
        if str(ip) in seen_ip:
            problems.append("%s:ip: %s is also the address of node %s" % (path, ip, seen_ip[str(ip)]))
        seen_ip[str(ip)] = nid
        valid[str(ip)] = nid
    if not any(isinstance(n, dict) and n.get("meta") is True for n in nodes.values()):
        problems.append("pigsty:nodes: no meta node (expected at least one node with meta: true)")
    return valid


def _check_known_vars(path, values, problems):
    for key in sorted(values):
        if key not in D.DEFAULTS:
            problems.append("%s:%s: unknown parameter (not one of Pigsty-on-Salt's parameters; "
                            "a typo?)" % (path, key))


def _validate_cluster(inv, name, cls, nodes, node_owner, vips, problems, private):
    path = "pigsty:clusters:%s" % name
    if not CLUSTER_RE.fullmatch(str(name)):
        problems.append("%s: bad cluster name (expected lowercase letters, digits and '-', "
                        "starting with a letter, at most 63 characters)" % path)
    if not isinstance(cls, dict):
        problems.append("%s: expected a mapping with 'hosts' and 'vars'" % path)
        return
    for key in sorted(set(cls) - {"hosts", "vars"}):
        problems.append("%s:%s: unknown field (expected 'hosts' and 'vars')" % (path, key))
    cvars = cls.get("vars") or {}
    if not isinstance(cvars, dict):
        problems.append("%s:vars: expected a mapping of parameters" % path)
        cvars = {}
    _check_known_vars(path + ":vars", cvars, problems)
    for key in sorted(set(cvars) & D.INFRA_PARAMS):
        problems.append("%s:vars:%s: an infra parameter is global (set it in pigsty:vars, "
                        "not in a cluster's vars)" % (path, key))
    if cvars.get("pg_cluster") not in (None, name):
        problems.append("%s:vars:pg_cluster: %r differs from the cluster's key %r" % (
            path, cvars.get("pg_cluster"), name))
    members = _validate_hosts(name, cls.get("hosts"), nodes, node_owner, problems)
    conf = cluster_vars(inv, name)
    _validate_ports(path, conf, problems)
    _validate_vip(path, conf, members, nodes, vips, problems)
    _validate_plan(path, conf, problems)
    if private:
        _validate_private(path, conf, problems)
        problems.extend(pigsty_hba.validate(conf, path + ":vars"))


def _validate_hosts(name, hosts, nodes, node_owner, problems):
    path = "pigsty:clusters:%s:hosts" % name
    if not isinstance(hosts, dict) or not hosts:
        problems.append("%s: expected a non-empty mapping of node address -> "
                        "{pg_seq, pg_role}" % path)
        return []
    seqs = {}
    primaries = []
    members = []
    for ip, member in sorted(hosts.items(), key=lambda kv: str(kv[0])):
        mpath = "%s:%s" % (path, ip)
        if _ipv4(ip) is None:
            problems.append("%s: expected a node's IPv4 address as the key" % mpath)
            continue
        ip = str(ip)
        members.append(ip)
        if ip not in nodes:
            problems.append("%s: no node has this address (expected one of pigsty:nodes' "
                            "addresses: %s)" % (mpath, ", ".join(sorted(nodes)) or "none"))
        if ip in node_owner:
            problems.append("%s: node is already a member of cluster %s (one instance per "
                            "node)" % (mpath, node_owner[ip]))
        node_owner.setdefault(ip, name)
        if not isinstance(member, dict):
            problems.append("%s: expected a mapping with pg_seq and pg_role" % mpath)
            continue
        for key in sorted(set(member) - D.HOST_KEYS):
            problems.append("%s:%s: unknown field (expected one of: %s)" % (
                mpath, key, ", ".join(sorted(D.HOST_KEYS))))
        seq = member.get("pg_seq")
        if not _is_int(seq) or seq < 0:
            problems.append("%s:pg_seq: expected a non-negative integer, got %r" % (mpath, seq))
        elif seq in seqs:
            problems.append("%s:pg_seq: duplicate pg_seq %d (also used by %s)" % (
                mpath, seq, seqs[seq]))
        else:
            seqs[seq] = ip
        role = member.get("pg_role")
        if role not in D.ROLES:
            problems.append("%s:pg_role: unknown role %r (expected one of: %s)" % (
                mpath, role, ", ".join(D.ROLES)))
        elif role == "primary":
            primaries.append(ip)
        if "pg_offline_query" in member and not isinstance(member["pg_offline_query"], bool):
            problems.append("%s:pg_offline_query: expected true or false" % mpath)
    if not primaries and members:
        problems.append("%s: no primary (expected exactly one member with pg_role: primary)" % path)
    if len(primaries) > 1:
        problems.append("%s: %d primaries (%s); expected exactly one member with pg_role: "
                        "primary" % (path, len(primaries), ", ".join(primaries)))
    return members


def _port(path, key, value, problems):
    if not _is_int(value) or not 1 <= value <= 65535:
        problems.append("%s:%s: expected a port number 1-65535, got %r" % (path, key, value))
        return None
    return value


def _validate_ports(path, conf, problems):
    vpath = path + ":vars"
    used = {}

    def claim(port, what):
        if port is None:
            return
        if port in used:
            problems.append("%s: port %d of %s clashes with %s" % (vpath, port, what, used[port]))
        else:
            used[port] = what

    for key in D.NODE_PORT_PARAMS:
        claim(_port(vpath, key, conf.get(key), problems), key)
    for svc in D.DEFAULT_SERVICES:
        claim(svc["port"], "default service %s" % svc["name"])
    services = conf.get("pg_services")
    if not isinstance(services, list):
        problems.append("%s:pg_services: expected a list of services" % vpath)
        return
    names = {s["name"] for s in D.DEFAULT_SERVICES}
    for i, svc in enumerate(services):
        spath = "%s:pg_services[%d]" % (vpath, i)
        if not isinstance(svc, dict):
            problems.append("%s: expected a mapping with name and port" % spath)
            continue
        sname = svc.get("name")
        if not isinstance(sname, str) or not CLUSTER_RE.fullmatch(sname):
            problems.append("%s:name: expected a lowercase service name, got %r" % (spath, sname))
        elif sname in names:
            problems.append("%s:name: service %r is defined twice" % (spath, sname))
        else:
            names.add(sname)
        claim(_port(spath, "port", svc.get("port"), problems), "service %s" % sname)


def _validate_vip(path, conf, members, nodes, vips, problems):
    vpath = path + ":vars:pg_vip_address"
    enabled = conf.get("pg_vip_enabled")
    if not isinstance(enabled, bool):
        problems.append("%s:vars:pg_vip_enabled: expected true or false" % path)
    address = conf.get("pg_vip_address")
    if address is None:
        if enabled:
            problems.append("%s: pg_vip_enabled is true but no address is given (expected "
                            "ADDRESS/PREFIX such as 10.10.10.3/24)" % vpath)
        return
    try:
        iface = ipaddress.IPv4Interface(str(address))
        if "/" not in str(address):
            raise ValueError
    except ValueError:
        problems.append("%s: expected ADDRESS/PREFIX such as 10.10.10.3/24, got %r" % (vpath, address))
        return
    vip = str(iface.ip)
    if vip in nodes:
        problems.append("%s: %s is the address of node %s (a VIP must be a free address)" % (
            vpath, vip, nodes[vip]))
    for ip in members:
        if ipaddress.IPv4Address(ip) not in iface.network:
            problems.append("%s: member %s is outside the VIP's network %s (the VIP must be in "
                            "the members' L2 network)" % (vpath, ip, iface.network))
    if vip in vips:
        problems.append("%s: %s is also the VIP of cluster %s" % (vpath, vip, vips[vip]))
    vips.setdefault(vip, path.rsplit(":", 1)[-1])


# HA timing plans (Pigsty v4 pg_rto_plan numbers); checked against Patroni's rule.
RTO_PLANS = {
    "fast": {"ttl": 20, "loop_wait": 5, "retry_timeout": 5},
    "norm": {"ttl": 30, "loop_wait": 5, "retry_timeout": 10},
    "safe": {"ttl": 60, "loop_wait": 10, "retry_timeout": 20},
}
PROFILES = ("oltp", "olap", "crit", "tiny")


def _validate_dcs(gvars, problems):
    if gvars.get("dcs_type") not in ("etcd", "consul"):
        problems.append("pigsty:vars:dcs_type: unknown DCS %r (expected etcd or consul)" % (gvars.get("dcs_type"),))
        return
    hosts = gvars.get("consul_hosts")
    if not isinstance(hosts, list) or not all(
            isinstance(h, str) and re.fullmatch(r"[A-Za-z0-9.-]+:[0-9]{1,5}", h) for h in hosts):
        problems.append("pigsty:vars:consul_hosts: expected a list of HOST:PORT, got %r" % (hosts,))
    elif gvars["dcs_type"] == "consul" and not hosts:
        problems.append("pigsty:vars:consul_hosts: dcs_type is consul but no Consul address is given "
                        "(expected [HOST:PORT, ...] of the Consul you run: Debian 12 has no Consul package)")


def _validate_plan(path, conf, problems):
    vpath = path + ":vars"
    if conf.get("pg_conf") not in PROFILES:
        problems.append("%s:pg_conf: unknown tuning profile %r (expected one of: %s)" % (
            vpath, conf.get("pg_conf"), ", ".join(PROFILES)))
    if conf.get("pg_rto_plan") not in RTO_PLANS:
        problems.append("%s:pg_rto_plan: unknown HA timing plan %r (expected one of: %s)" % (
            vpath, conf.get("pg_rto_plan"), ", ".join(sorted(RTO_PLANS))))
    rpo = conf.get("pg_rpo")
    if not _is_int(rpo) or rpo < 0:
        problems.append("%s:pg_rpo: expected a non-negative number of bytes (0 = synchronous), "
                        "got %r" % (vpath, rpo))
    if not _is_int(conf.get("pg_version")) or conf.get("pg_version") != 15:
        problems.append("%s:pg_version: expected 15 (the version Debian 12 ships), got %r" % (
            vpath, conf.get("pg_version")))


def _validate_private(path, conf, problems):
    vpath = path + ":vars"
    for key in D.REQUIRED_SECRETS:
        value = conf.get(key)
        if not isinstance(value, str) or not value:
            problems.append("%s:%s: missing password (expected a non-empty string in the "
                            "cluster's private pillar file)" % (vpath, key))
    system = {conf.get("pg_admin_username"), conf.get("pg_replication_username"),
              conf.get("pg_monitor_username"), conf.get("pg_dbsu")}
    for key in ("pg_admin_username", "pg_replication_username", "pg_monitor_username", "pg_dbsu"):
        if not isinstance(conf.get(key), str) or not PG_NAME_RE.fullmatch(conf.get(key)):
            problems.append("%s:%s: expected a safe identifier (lowercase letters, digits, '_'), "
                            "got %r" % (vpath, key, conf.get(key)))
    users = conf.get("pg_users")
    user_names = set(system)
    if not isinstance(users, list):
        problems.append("%s:pg_users: expected a list of users" % vpath)
        users = []
    for i, user in enumerate(users):
        upath = "%s:pg_users[%d]" % (vpath, i)
        if not isinstance(user, dict):
            problems.append("%s: expected a mapping with name and password" % upath)
            continue
        uname = user.get("name")
        if not isinstance(uname, str) or not PG_NAME_RE.fullmatch(uname):
            problems.append("%s:name: bad user name %r (expected a safe identifier: lowercase "
                            "letters, digits, '_', not starting with a digit)" % (upath, uname))
            continue
        upath = "%s:pg_users[%s]" % (vpath, uname)
        if uname in user_names:
            problems.append("%s:name: user %s is defined twice (or is a system user)" % (upath, uname))
        user_names.add(uname)
        if user.get("login", True) and user.get("state", "present") != "absent":
            if not isinstance(user.get("password"), str) or not user.get("password"):
                problems.append("%s:password: missing password for a login user (expected a "
                                "non-empty string, plain or md5/SCRAM hash)" % upath)
    dbs = conf.get("pg_databases")
    if not isinstance(dbs, list):
        problems.append("%s:pg_databases: expected a list of databases" % vpath)
        dbs = []
    db_names = set()
    for i, db in enumerate(dbs):
        dpath = "%s:pg_databases[%d]" % (vpath, i)
        if not isinstance(db, dict):
            problems.append("%s: expected a mapping with name" % dpath)
            continue
        dname = db.get("name")
        if not isinstance(dname, str) or not PG_NAME_RE.fullmatch(dname):
            problems.append("%s:name: bad database name %r (expected a safe identifier)" % (dpath, dname))
            continue
        dpath = "%s:pg_databases[%s]" % (vpath, dname)
        if dname in db_names:
            problems.append("%s:name: database %s is defined twice" % (dpath, dname))
        db_names.add(dname)
        owner = db.get("owner")
        if owner is not None and owner not in user_names:
            problems.append("%s:owner: %r is not a user of this cluster (expected one of "
                            "pg_users or the system users)" % (dpath, owner))
