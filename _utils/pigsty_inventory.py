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
import threading
import types

import pigsty_backup
import pigsty_clone
import pigsty_defaults as D
import pigsty_gpg
import pigsty_hba
import pigsty_listen
import pigsty_logs
import pigsty_model
import pigsty_standby
import pigsty_syntax

CLUSTER_RE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$")
# keys of a runner's return that salt-run reads (pigsty_ha.reconcile_all returns {cluster: ...})
RESERVED_CLUSTER_NAMES = frozenset(("retcode", "comment", "result", "test"))
NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
PG_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PATRONI_USER_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")   # no ':' (basic auth's separator)


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
# Every function below takes the inventory as a plain dict or as a pigsty_model.Inventory
# (the index): with a plain dict each call indexes it first (O(N)); code that makes many
# lookups indexes once (pigsty_model.index(inv)) and passes the index (O(1) each).
index = pigsty_model.index


def node_by_ip(inv):
    """Address -> node id (a read-only view of the index's map)."""
    return types.MappingProxyType(index(inv).node_by_ip)


def cluster_of_node(inv, minion_id):
    """(cluster name, member entry) of the node, or (None, None) when it hosts no instance."""
    return index(inv).cluster_of_node(minion_id)


def global_vars(inv):
    """Global parameters: DEFAULTS < pigsty:vars (a copy of its own)."""
    return copy.deepcopy(dict(index(inv).gvars))


def cluster_vars(inv, name):
    """Cluster-level parameters: DEFAULTS < pigsty:vars < clusters:NAME:vars (a copy)."""
    return copy.deepcopy(index(inv).cluster(name).conf)


def cluster_members(inv, name):
    """Members of a cluster sorted by pg_seq: dicts with identity, address and minion id."""
    return [dict(m) for m in index(inv).cluster(name).members]


def meta_nodes(inv):
    return list(index(inv).meta_nodes)


def identity(pillar, minion_id):
    """Grains that carry a node's identity, derived from pillar.

    Keys: node_ip, pigsty_meta, pigsty_meta_nodes, and for a node hosting an instance
    pg_cluster, pg_seq, pg_role, pg_instance. A node without an instance gets None for the
    pg_* keys (the state removes those grains).
    """
    return _identity(index(inventory(pillar)), minion_id)


def _identity(idx, minion_id):
    node = idx.node(minion_id)
    if node is None:
        raise InventoryError(["pigsty:nodes:%s: this minion is not in the node map "
                              "(expected an entry with its 'ip')" % minion_id])
    name, member = idx.cluster_of_node(minion_id)
    grains = {
        "node_ip": str(node.get("ip")),
        "pigsty_meta": bool(node.get("meta", False)),
        "pigsty_meta_nodes": list(idx.meta_nodes),
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
    member list), or None when the node hosts no instance. Its own copy: O(one cluster)
    once the inventory is indexed."""
    idx = index(inventory(pillar))
    name, member = idx.cluster_of_node(minion_id)
    if not name:
        return None
    cls = idx.cluster(name)
    conf = copy.deepcopy(cls.conf)
    for key, value in (member or {}).items():
        conf[key] = copy.deepcopy(value)
    conf.update(_identity(idx, minion_id))
    conf["pg_members"] = [dict(m) for m in cls.members]
    conf["pigsty_meta_ips"] = list(idx.meta_ips)
    conf["pigsty_dcs_ips"] = list(idx.dcs_ips)
    # a standby cluster: what its leader streams from (pigsty_standby.standby_of), else None
    conf["pg_standby"] = pigsty_standby.standby_of(idx, name)
    # a clone: the cluster and target it is restored from at creation (pigsty_clone), else None
    conf["pg_clone"] = pigsty_clone.clone_of(idx, name)
    conf["pg_default_services"] = copy.deepcopy(D.DEFAULT_SERVICES)
    return conf


# ------------------------------------------------------------------ validation
def validate(pillar, private=None, cache=None):
    """Return the list of problems in the inventory (empty when valid).

    ``private``: names of the clusters whose private part (users, databases, passwords) is
    expected in this pillar; None means every cluster (the master's full view). A minion's
    pillar holds only its own cluster's private part, so the ext_pillar passes that one.

    ``cache``: a ValidationCache (e.g. VALIDATIONS, this process's) to reuse the results of
    the parts of the inventory (global part, each cluster) it has validated before; None
    validates everything. The problems are the same either way.
    """
    try:
        inv = inventory(pillar)
    except InventoryError as exc:
        return exc.problems
    return _validate(inv, private, cache if cache is not None else _NO_CACHE)


def check(pillar, private=None, cache=None):
    """Raise InventoryError with every problem, or return the inventory when valid."""
    problems = validate(pillar, private, cache)
    if problems:
        raise InventoryError(problems)
    return inventory(pillar)


class ValidationCache:
    """In-process memo of validation results, keyed by digests of the inventory's data.

    The global part (nodes and vars) is validated once per version of it; each cluster
    once per version of its own data (hosts, vars) and of the global part, with or without
    its private part. A minion's pillar differs from another's only by its own cluster's
    private part, so a pillar refresh of N minions validates each cluster about twice
    (as another minion's neighbour, and with its secrets for its own members), not N times;
    what changed is validated again. The checks across clusters (a node in two clusters,
    a VIP used twice) are cheap and run on every call.

    Bounded: beyond ``max_entries`` the oldest entries go first (what is still in use is
    validated again and comes back). Safe to share between threads: a lookup is one dict
    read, an insertion holds a lock.
    """

    enabled = True

    def __init__(self, max_entries=250000):
        self.max_entries = max_entries
        self._entries = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key, value):
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = value
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]

    def clear(self):
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def stats(self):
        return {"entries": len(self._entries), "hits": self.hits, "misses": self.misses}


class _NoCache:
    enabled = False

    @staticmethod
    def get(_key):
        return None

    @staticmethod
    def put(_key, _value):
        pass


_NO_CACHE = _NoCache()
# This process's cache: the ext_pillar (one per master worker process) and pigsty.validate.
VALIDATIONS = ValidationCache()

# markers in a cluster's cached result, resolved against the other clusters on every call
_OWNER = "owner"      # (_OWNER, address, path): the node is a member of this cluster
_VIP = "vip"          # (_VIP, address, path): the cluster's VIP
_COPY = "copy"        # (_COPY,): a standby cluster or a clone: checked against the others


def _validate(inv, private, cache):
    gkey = None
    if cache.enabled:
        gkey = ("global", pigsty_model.digest((inv.get("nodes"), inv.get("vars"))))
    glob = cache.get(gkey) if gkey else None
    if glob is None:
        glob = _validate_global(inv)
        if gkey:
            cache.put(gkey, glob)
    node_problems, var_problems, nodes, gconf = glob
    problems = list(node_problems)
    clusters = inv.get("clusters")
    if clusters is None:
        clusters = {}
    if not isinstance(clusters, dict):
        problems.append("pigsty:clusters: expected a mapping of cluster name -> "
                        "{hosts, vars}, got %s" % type(clusters).__name__)
        clusters = {}
    problems.extend(var_problems)
    node_owner = {}
    vips = {}
    copies = []
    for name in sorted(clusters):
        cls = clusters[name]
        full = private is None or name in private
        key = (gkey[1], name, full, pigsty_model.digest(cls)) if gkey else None
        items = cache.get(key) if key else None
        if items is None:
            items = pigsty_gpg.ciphertext_problems(cls, "pigsty:clusters:%s" % name)
            _validate_cluster(name, cls, nodes, gconf, items, full)
            items.extend(pigsty_syntax.cluster_problems(inv, name, full))
            items = tuple(items)
            if key:
                cache.put(key, items)
        for item in items:
            if isinstance(item, str):
                problems.append(item)
            elif item[0] == _COPY:
                copies.append(name)
            elif item[0] == _OWNER:
                if item[1] in node_owner:
                    problems.append("%s: node is already a member of cluster %s (one instance "
                                    "per node)" % (item[2], node_owner[item[1]]))
                node_owner.setdefault(item[1], name)
            else:
                if item[1] in vips:
                    problems.append("%s: %s is also the VIP of cluster %s" % (
                        item[2], item[1], vips[item[1]]))
                vips.setdefault(item[1], name)
    # standby clusters and clones against their sources (indexed only when there are any)
    idx = pigsty_model.index(inv) if copies else None
    for name in copies:
        problems.extend(pigsty_standby.cluster_problems(idx, name, private))
        problems.extend(pigsty_clone.cluster_problems(idx, name, private))
    return problems


def _validate_global(inv):
    """(node problems, vars problems, address -> node id of the valid nodes, global
    parameters) of the inventory's global part."""
    node_problems = []
    nodes = _validate_nodes(inv, node_problems)
    problems = pigsty_gpg.ciphertext_problems(
        {k: inv.get(k) for k in ("nodes", "vars") if k in inv}, "pigsty")
    gvars = inv.get("vars") or {}
    if not isinstance(gvars, dict):
        problems.append("pigsty:vars: expected a mapping of parameters")
    else:
        _check_known_vars("pigsty:vars", gvars, problems)
        _validate_infra(gvars, problems)
        problems.extend(pigsty_syntax.parameter_problems(gvars, "pigsty:vars"))
        problems.extend(pigsty_standby.global_problems(gvars))
        for secret in D.REQUIRED_SECRETS + (D.ETCD_SECRET,):
            if gvars.get(secret):
                problems.append("pigsty:vars:%s: passwords belong in the cluster's private "
                                "pillar file (pillar/clusters/CLUSTER.sls), not in the global "
                                "vars that every node reads" % secret)
    gconf = dict(pigsty_model.index({"vars": gvars}).gvars)
    _validate_dcs(gconf if isinstance(gvars, dict) else D.DEFAULTS, problems)
    _validate_dcs_servers(gconf if isinstance(gvars, dict) else D.DEFAULTS, inv, nodes, problems)
    problems.extend(pigsty_backup.repo_problems(gconf if isinstance(gvars, dict) else D.DEFAULTS))
    return tuple(node_problems), tuple(problems), nodes, gconf


DURATION_RE = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
DURATION_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1,
                  "ms": 0.001}
HOSTNAME_RE = pigsty_syntax.HOSTNAME_RE


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
                "nginx_port", "nginx_ssl_port", "dns_port", "log_port", "pgbackrest_exporter_port"):
        _port(path, key, conf.get(key), problems)
    if conf.get("nginx_port") == conf.get("nginx_ssl_port"):
        problems.append("%s:nginx_ssl_port: must differ from nginx_port (%r): one serves "
                        "HTTPS, the other plain HTTP" % (path, conf.get("nginx_port")))
    for key in ("alert_sink_enabled", "node_repo_local", "node_ntp_enabled",
                "ntp_no_clock_control", "log_collect"):
        if not isinstance(conf.get(key), bool):
            problems.append("%s:%s: expected true or false, got %r" % (path, key, conf.get(key)))
    problems.extend(pigsty_logs.problems(conf, path))
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
        if key in D.NOT_YET:
            problems.append("%s:%s: not supported yet: %s" % (path, key, D.NOT_YET[key]))
        elif key in D.INSTANCE_ONLY:
            problems.append("%s:%s: %s" % (path, key, D.INSTANCE_ONLY[key]))
        elif key in D.FIXED:
            fixed, why = D.FIXED[key]
            if values[key] != fixed or not isinstance(values[key], type(fixed)):
                problems.append("%s:%s: expected %s, got %r: %s" % (
                    path, key, str(fixed).lower(), values[key], why))
        elif key not in D.DEFAULTS:
            problems.append("%s:%s: unknown parameter (not one of Pigsty-on-Salt's parameters; "
                            "a typo?)" % (path, key))


def _validate_cluster(name, cls, nodes, gconf, problems, private):
    """The checks of one cluster, into ``problems``: messages, and (_OWNER / _VIP, address,
    path) markers that _validate resolves against the other clusters."""
    path = "pigsty:clusters:%s" % name
    if not CLUSTER_RE.fullmatch(str(name)):
        problems.append("%s: bad cluster name (expected lowercase letters, digits and '-', "
                        "starting with a letter, at most 63 characters)" % path)
    elif name in RESERVED_CLUSTER_NAMES:
        problems.append("%s: reserved cluster name (%s are keys of the runners' returns that "
                        "salt-run reads: pick another name)" % (path, ", ".join(sorted(RESERVED_CLUSTER_NAMES))))
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
    members = _validate_hosts(name, cls.get("hosts"), nodes, problems)
    conf = dict(gconf)
    conf.update(cvars)
    conf["pg_cluster"] = name
    _validate_ports(path, conf, problems)
    _validate_vip(path, conf, members, nodes, problems)
    problems.extend(pigsty_listen.cluster_problems(path, conf, cls.get("hosts")))
    _validate_plan(path, conf, problems)
    if pigsty_standby.names_a_source(cls):
        problems.append((_COPY,))
    hosts = cls.get("hosts") if isinstance(cls.get("hosts"), dict) else {}
    standbys = sorted(str(ip) for ip, m in hosts.items() if isinstance(m, dict) and m.get("pg_role") == "standby")
    if standbys and not pigsty_model.synchronous(conf):
        problems.append("%s:hosts:%s:pg_role: standby is a synchronous standby, and %s replicates "
                        "asynchronously (expected pg_rpo: 0 or pg_conf: crit, or pg_role: replica)"
                        % (path, standbys[0], name))
    problems.extend(pigsty_backup.cluster_problems(conf, path + ":vars"))
    if private:
        _validate_private(path, conf, problems)
        problems.extend(pigsty_hba.validate(conf, path + ":vars"))


def _validate_hosts(name, hosts, nodes, problems):
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
                            "addresses: %s)" % (mpath, _some(nodes)))
        problems.append((_OWNER, ip, mpath))
        if not isinstance(member, dict):
            problems.append("%s: expected a mapping with pg_seq and pg_role" % mpath)
            continue
        for key in sorted(set(member) - D.HOST_KEYS):
            if key in D.NOT_YET:
                problems.append("%s:%s: not supported yet: %s" % (mpath, key, D.NOT_YET[key]))
                continue
            problems.append("%s:%s: unknown field (expected one of: %s)" % (
                mpath, key, ", ".join(sorted(D.HOST_KEYS))))
        weight = member.get("pg_weight", 100)
        if not _is_int(weight) or not 0 <= weight <= 256:
            problems.append("%s:pg_weight: expected HAProxy's server weight, an integer 0-256 "
                            "(0: no new connections), got %r" % (mpath, weight))
        seq = member.get("pg_seq")
        if not _is_int(seq) or seq < 0:
            problems.append("%s:pg_seq: expected a non-negative integer, got %r" % (mpath, seq))
        elif seq in seqs:
            problems.append("%s:pg_seq: duplicate pg_seq %d (also used by %s)" % (
                mpath, seq, seqs[seq]))
        else:
            seqs[seq] = ip
        role = member.get("pg_role")
        if role in D.ROLES_ELSEWHERE:
            problems.append("%s:pg_role: %s: %s" % (mpath, role, D.ROLES_ELSEWHERE[role]))
        elif role not in D.ROLES:
            problems.append("%s:pg_role: unknown role %r (expected one of: %s)" % (
                mpath, role, ", ".join(D.ROLES)))
        elif role == "primary":
            primaries.append(ip)
        if "pg_offline_query" in member and not isinstance(member["pg_offline_query"], bool):
            problems.append("%s:pg_offline_query: expected true or false" % mpath)
        problems.extend(pigsty_standby.host_problems(mpath, member))
    if not primaries and members:
        problems.append("%s: no primary (expected exactly one member with pg_role: primary)" % path)
    if len(primaries) > 1:
        problems.append("%s: %d primaries (%s); expected exactly one member with pg_role: "
                        "primary" % (path, len(primaries), ", ".join(primaries)))
    return members


def _some(names, limit=8):
    """Up to ``limit`` of ``names``, sorted, for a message ("none" when there are none)."""
    names = sorted(names)
    if len(names) > limit:
        return "%s ... (%d in all)" % (", ".join(names[:limit]), len(names))
    return ", ".join(names) or "none"


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


def _validate_vip(path, conf, members, nodes, problems):
    vpath = path + ":vars:pg_vip_address"
    enabled = conf.get("pg_vip_enabled")
    if not isinstance(enabled, bool):
        problems.append("%s:vars:pg_vip_enabled: expected true or false" % path)
    address = conf.get("pg_vip_address")
    if address is None:
        if enabled:
            problems.append("%s: pg_vip_enabled is true but no address is given (%s)" % (
                vpath, pigsty_model.VIP_EXPECTED))
        return
    try:
        parsed = pigsty_model.parse_vip(address)
    except ValueError as exc:
        problems.append("%s: %s" % (vpath, exc))
        return
    vip = parsed.ip
    if vip in nodes:
        problems.append("%s: %s is the address of node %s (a VIP must be a free address)" % (
            vpath, vip, nodes[vip]))
    for ip in members:
        if ipaddress.IPv4Address(ip) not in parsed.network:
            problems.append("%s: member %s is outside the VIP's network %s (the VIP must be in "
                            "the members' L2 network)" % (vpath, ip, parsed.network))
    problems.append((_VIP, vip, vpath))


# HA timing plans (Pigsty v4 pg_rto_plan numbers); checked against Patroni's rule.
RTO_PLANS = {
    "fast": {"ttl": 20, "loop_wait": 5, "retry_timeout": 5},
    "norm": {"ttl": 30, "loop_wait": 5, "retry_timeout": 10},
    "safe": {"ttl": 60, "loop_wait": 10, "retry_timeout": 20},
}
PROFILES = ("oltp", "olap", "crit", "tiny")


def _validate_dcs(gvars, problems):
    if not isinstance(gvars.get("etcd_auth"), bool):
        problems.append("pigsty:vars:etcd_auth: expected true or false, got %r" % (gvars.get("etcd_auth"),))
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


DCS_MEMBER_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DCS_MAX_MEMBERS = 7


def _validate_dcs_servers(gvars, inv, nodes, problems):
    """``dcs_servers`` (Pigsty's {name: ip}): each address a node of the inventory, at least
    one of them a meta node (the meta node manages etcd's users and members with root's
    password from its private pillar), 1 to 7 members, names etcd takes."""
    path = "pigsty:vars:dcs_servers"
    servers = gvars.get("dcs_servers")
    if not isinstance(servers, dict):
        problems.append("%s: expected a mapping of member name -> node address (Pigsty's "
                        "dcs_servers), or {} for one member on each meta node; got %r" % (path, servers))
        return
    if not servers:
        return
    if gvars.get("dcs_type") != "etcd":
        problems.append("%s: dcs_type is %s: members are only run for etcd (the Consul you run "
                        "is named by consul_hosts)" % (path, gvars.get("dcs_type")))
        return
    if len(servers) > DCS_MAX_MEMBERS:
        problems.append("%s: %d members (expected 1 to %d: every write waits for a majority)"
                        % (path, len(servers), DCS_MAX_MEMBERS))
    raw = inv.get("nodes") if isinstance(inv.get("nodes"), dict) else {}
    seen, metas = {}, 0
    for name in sorted(servers, key=str):
        ip = _ipv4(servers[name])
        if not isinstance(name, str) or not DCS_MEMBER_RE.fullmatch(name):
            problems.append("%s:%s: bad member name (expected lower-case letters, digits and "
                            "'-', at most 63)" % (path, name))
        if ip is None:
            problems.append("%s:%s: expected the IPv4 address of a node, got %r" % (path, name, servers[name]))
            continue
        nid = nodes.get(str(ip))
        if nid is None:
            problems.append("%s:%s: %s is not a node of the inventory (pigsty:nodes): etcd runs on "
                            "nodes Salt manages" % (path, name, ip))
            continue
        if str(ip) in seen:
            problems.append("%s:%s: %s is also member %s (one member per node)" % (path, name, ip, seen[str(ip)]))
        seen[str(ip)] = name
        if isinstance(raw.get(nid), dict) and raw[nid].get("meta") is True:
            metas += 1
    if seen and not metas:
        problems.append("%s: no member on a meta node (expected at least one: the meta node manages "
                        "etcd's users and members with root's password from its private pillar)" % path)


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
    if not isinstance(conf.get("haproxy_admin_username"), str) or not re.fullmatch(
            r"[A-Za-z0-9_.-]{1,64}", conf["haproxy_admin_username"]):
        problems.append("%s:haproxy_admin_username: expected a user name of letters, digits, '_', "
                        "'.' and '-' (HAProxy's userlist), got %r" % (vpath, conf.get("haproxy_admin_username")))
    if not isinstance(conf.get("pg_ssl_required"), bool):
        problems.append("%s:pg_ssl_required: expected true or false, got %r" % (
            vpath, conf.get("pg_ssl_required")))
    if not _is_int(conf.get("pg_version")) or conf.get("pg_version") != 15:
        problems.append("%s:pg_version: expected 15 (the version Debian 12 ships), got %r" % (
            vpath, conf.get("pg_version")))


def etcd_auth_on(conf):
    """Whether the cluster's DCS is our etcd with authentication (its own etcd user)."""
    return conf.get("dcs_type") == "etcd" and conf.get("etcd_auth") is True


def dcs_secrets(pillar):
    """What the meta node needs to set up etcd's authentication, from its pillar:
    {"root_password", "users": {cluster: password}} for every cluster of the inventory
    (None where a password is missing). Only the meta nodes receive these: pigsty:dcs,
    from pillar/dcs.sls and pillar/dcs_clusters.sls."""
    inv = inventory(pillar)
    dcs = inv.get("dcs") if isinstance(inv.get("dcs"), dict) else {}
    given = dcs.get("etcd_users") if isinstance(dcs.get("etcd_users"), dict) else {}
    users = {name: given.get(name) for name in sorted(inv.get("clusters") or {})}
    return {"root_password": dcs.get("etcd_root_password"), "users": users}


def validate_dcs_secrets(pillar, clusters=True):
    """Problems with the meta node's etcd secrets (empty when etcd_auth is off or the DCS is
    not our etcd): the root password and, with ``clusters``, each cluster's etcd password
    as the meta node sees it; a value still encrypted (pigsty_gpg) whatever etcd_auth is.
    Messages name the field, never a value."""
    inv = inventory(pillar)
    gvars = global_vars(inv)
    problems = pigsty_gpg.ciphertext_problems(inv.get("dcs"), "pigsty:dcs")
    if not etcd_auth_on(gvars):
        return problems
    secrets = dcs_secrets(pillar)
    root = secrets["root_password"]
    if pigsty_gpg.is_ciphertext(root):
        pass                    # reported above, as still encrypted
    elif not isinstance(root, str) or not root:
        problems.append("pigsty:dcs:etcd_root_password: missing password (etcd_auth is on: "
                        "expected a non-empty string in the meta nodes' private pillar file "
                        "pillar/dcs.sls)")
    elif pigsty_syntax.CONTROL_RE.search(root):
        problems.append("pigsty:dcs:etcd_root_password: the password contains a control character")
    for name, password in sorted(secrets["users"].items() if clusters else ()):
        if not isinstance(password, str) or not password:
            problems.append("pigsty:dcs:etcd_users:%s: missing on the meta node (etcd_auth is on: "
                            "the meta node creates the cluster's etcd user; expected "
                            "pillar/dcs_clusters.sls to copy %s from the cluster's private file)"
                            % (name, D.ETCD_SECRET))
    return problems


def web_secrets(pillar):
    """The meta node's web logins from its private pillar (pigsty:infra, pillar/dcs.sls):
    {"portal_username", "portal_password", "grafana_admin_password"} (None where missing)."""
    infra = inventory(pillar).get("infra")
    infra = infra if isinstance(infra, dict) else {}
    return {"portal_username": infra.get("portal_username", "admin"),
            "portal_password": infra.get("portal_password"),
            "grafana_admin_password": infra.get("grafana_admin_password")}


def validate_web_secrets(pillar):
    """Problems with the meta node's web logins: the portal's (Nginx basic authentication)
    always, Grafana's admin password when Grafana is installed (grafana_repo or
    grafana_package_url). Messages name the field, never a value."""
    inv = inventory(pillar)
    gvars = global_vars(inv)
    secrets = web_secrets(pillar)
    problems = pigsty_gpg.ciphertext_problems(inv.get("infra"), "pigsty:infra")
    user = secrets["portal_username"]
    if not pigsty_gpg.is_ciphertext(user) and (
            not isinstance(user, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", user)):
        problems.append("pigsty:infra:portal_username: expected a user name of letters, digits, "
                        "'_', '.' and '-', got %r" % (user,))
    wanted = [("portal_password", "the portal's login (Nginx basic authentication)")]
    if gvars.get("grafana_repo") or gvars.get("grafana_package_url"):
        wanted.append(("grafana_admin_password", "Grafana's admin password (Grafana is installed)"))
    for key, what in wanted:
        value = secrets[key]
        if pigsty_gpg.is_ciphertext(value):
            continue            # reported above, as still encrypted
        if not isinstance(value, str) or not value:
            problems.append("pigsty:infra:%s: missing password (expected %s in the meta nodes' "
                            "private pillar file pillar/dcs.sls)" % (key, what))
        elif pigsty_syntax.CONTROL_RE.search(value):
            problems.append("pigsty:infra:%s: the password contains a control character" % key)
    return problems


def _validate_private(path, conf, problems):
    vpath = path + ":vars"
    for key in D.REQUIRED_SECRETS:
        value = conf.get(key)
        if not isinstance(value, str) or not value:
            problems.append("%s:%s: missing password (expected a non-empty string in the "
                            "cluster's private pillar file)" % (vpath, key))
    value = conf.get(D.ETCD_SECRET)
    if etcd_auth_on(conf) and (not isinstance(value, str) or not value):
        problems.append("%s:%s: missing password (etcd_auth is on: expected the cluster's etcd "
                        "password, a non-empty string, in the cluster's private pillar file)"
                        % (vpath, D.ETCD_SECRET))
    elif value is not None and not isinstance(value, str):
        problems.append("%s:%s: expected a string" % (vpath, D.ETCD_SECRET))
    system = {conf.get("pg_admin_username"), conf.get("pg_replication_username"),
              conf.get("pg_monitor_username"), conf.get("pg_dbsu")}
    for key in ("pg_admin_username", "pg_replication_username", "pg_monitor_username", "pg_dbsu"):
        if not isinstance(conf.get(key), str) or not PG_NAME_RE.fullmatch(conf.get(key)):
            problems.append("%s:%s: expected a safe identifier (lowercase letters, digits, '_'), "
                            "got %r" % (vpath, key, conf.get(key)))
    if not isinstance(conf.get("patroni_username"), str) or not PATRONI_USER_RE.fullmatch(
            conf.get("patroni_username")):
        problems.append("%s:patroni_username: expected letters, digits, '_', '.' or '-' (the "
                        "Patroni REST API login), got %r" % (vpath, conf.get("patroni_username")))
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
