"""The Pigsty inventory as one model, indexed once: by cluster, instance, node id and address.

``Inventory(inv)`` takes the pillar's ``pigsty`` key (a dict: vars, nodes, clusters) and
indexes it in one pass, so every lookup the renderers, the validation, the ext_pillar and the
runners make is a dict lookup: the node of an address, the cluster and member entry of a
node, an instance, a cluster's members (sorted by pg_seq) and parameters (DEFAULTS <
pigsty:vars < the cluster's vars), the meta nodes. A pass over N clusters costs O(N).
Per-cluster parts (parameters, members, VIP) are resolved on first use and kept.

``Inventory`` is a dict (the inventory's own top-level keys), so code that reads
``inv.get("clusters")`` takes one unchanged, and it serializes like the plain inventory.
Treat it as read-only: the index is not updated when the data underneath changes (build a
new one). What its methods return is shared with the index: copy before changing it (the
functions of pigsty_inventory return copies).

Compound values are parsed here and nowhere else: ``pg_vip_address`` (ADDRESS/PREFIX) by
``parse_vip``.

Pure Python (no Salt imports).
"""
import collections
import collections.abc
import hashlib
import ipaddress
import types

import pigsty_defaults as D

VIP_EXPECTED = "expected ADDRESS/PREFIX such as 10.10.10.3/24"


class Vip(collections.namedtuple("Vip", "address ip prefix network")):
    """A parsed ``pg_vip_address``: ``address`` as given ("10.10.10.3/24"), ``ip``
    ("10.10.10.3"), ``prefix`` (24) and ``network`` (an ipaddress.IPv4Network)."""

    @property
    def cidr(self):
        return "%s/%d" % (self.ip, self.prefix)


def parse_vip(address):
    """The Vip of an ``ADDRESS/PREFIX`` value; ValueError (with what was expected) otherwise."""
    text = str(address)
    if "/" not in text:
        raise ValueError("%s, got %r" % (VIP_EXPECTED, address))
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise ValueError("%s, got %r" % (VIP_EXPECTED, address)) from None
    return Vip(text, str(iface.ip), iface.network.prefixlen, iface.network)


def synchronous(conf):
    """Whether a cluster replicates synchronously: Patroni's synchronous mode, with pg_rpo 0
    or the crit profile (Pigsty's rule)."""
    return conf.get("pg_rpo") == 0 or conf.get("pg_conf") == "crit"


def digest(obj):
    """A short digest of plain pillar data (dicts, OrderedDicts, lists, strings, numbers...):
    equal for equal data built alike, different whenever a value, key, type or order differs
    (from the data's repr, which names every type and quotes every string). Equal data may
    digest differently (objects whose repr is their id, or order): a cache keyed by it then
    misses, it never mixes two different inventories up. repr is the fastest exact encoding
    of Salt's pillar data (OrderedDicts): about twice as fast as pickle for them."""
    return hashlib.blake2b(repr(obj).encode("utf-8", "backslashreplace"),
                           digest_size=16).digest()


def _mapping(value):
    return value if isinstance(value, dict) else {}


def _seq_key(member):
    seq = member["pg_seq"]
    return (seq if isinstance(seq, int) and not isinstance(seq, bool) else 0, member["ip"])


class Cluster:
    """One cluster of the index: ``name``, ``conf`` (resolved parameters, with
    pg_cluster), ``members`` (sorted by pg_seq), ``vip`` (a Vip when pg_vip_enabled and
    the address parses, else None), ``primary`` (the member pillar calls primary)."""

    __slots__ = ("name", "conf", "members", "vip", "primary")

    def __init__(self, name, conf, members):
        self.name = name
        self.conf = conf
        self.members = members
        self.vip = None
        if conf.get("pg_vip_enabled") and conf.get("pg_vip_address"):
            try:
                self.vip = parse_vip(conf["pg_vip_address"])
            except ValueError:
                self.vip = None           # the validation names it
        self.primary = next((m for m in members if m["pg_role"] == "primary"), None)

    def member(self, instance):
        return next((m for m in self.members if m["pg_instance"] == instance), None)


class Inventory(dict):
    """The inventory (the pillar's ``pigsty`` key), indexed. See the module's docstring."""

    def __init__(self, inv):
        super().__init__(inv if isinstance(inv, dict) else {})
        self.nodes = _mapping(self.get("nodes"))
        self.clusters_raw = _mapping(self.get("clusters"))
        self.vars_raw = self.get("vars")
        # address -> node id (every node given as a mapping; the last one wins, like a dict)
        self.node_by_ip = {}
        meta = []
        for nid, node in self.nodes.items():
            if isinstance(node, dict):
                self.node_by_ip[str(node.get("ip"))] = nid
                if node.get("meta"):
                    meta.append(nid)
        self.meta_nodes = tuple(sorted(meta))
        self.meta_ips = tuple(str(self.nodes[n].get("ip")) for n in self.meta_nodes)
        # sorted cluster names; address -> (cluster, member entry): the first cluster in name
        # order that lists the address (a node in two clusters is a validation problem)
        self.cluster_names = tuple(sorted(self.clusters_raw))
        self.host_owner = {}
        for name in self.cluster_names:
            for ip, member in self._hosts(name).items():
                self.host_owner.setdefault(str(ip), (name, member if isinstance(member, dict) else {}))
        self._gvars = None
        self._dcs = None
        self._clusters = {}
        self._instances = None

    @classmethod
    def of(cls, inv):
        """``inv`` itself when it is already an Inventory, else an Inventory of it."""
        return inv if isinstance(inv, cls) else cls(inv)

    # ------------------------------------------------------------ nodes
    def node(self, nid):
        """The node entry of minion ``nid`` (a mapping), or None."""
        node = self.nodes.get(nid)
        return node if isinstance(node, dict) else None

    def node_ip(self, nid):
        node = self.node(nid)
        return None if node is None else str(node.get("ip"))

    @property
    def dcs_members(self):
        """The etcd members, each {"name", "node" (minion id), "ip", "meta"}: ``dcs_servers``
        ({name: ip}; an address that is not a node of the inventory is left out, the
        validation names it) or, when it is empty, one member on each meta node named by its
        minion id. Members on meta nodes come first (meta order), then the others by name:
        the first one bootstraps the cluster, the others join it (salt/dcs)."""
        if self._dcs is None:
            servers = self.gvars.get("dcs_servers")
            if isinstance(servers, dict) and servers:
                found = [(str(name), self.node_by_ip.get(str(ip)), str(ip)) for name, ip in servers.items()]
                found = [f for f in found if f[1] is not None]
            else:
                found = [(nid, nid, ip) for nid, ip in zip(self.meta_nodes, self.meta_ips)]
            metas = {nid: i for i, nid in enumerate(self.meta_nodes)}
            found.sort(key=lambda f: (0, metas[f[1]], f[0]) if f[1] in metas else (1, 0, f[0]))
            self._dcs = tuple({"name": name, "node": nid, "ip": ip, "meta": nid in metas}
                              for name, nid, ip in found)
        return self._dcs

    @property
    def dcs_ips(self):
        return tuple(m["ip"] for m in self.dcs_members)

    def cluster_of_node(self, nid):
        """(cluster name, member entry) of the instance on node ``nid``, or (None, None)."""
        node = self.node(nid)
        if node is None:
            return None, None
        return self.host_owner.get(str(node.get("ip")), (None, None))

    # ------------------------------------------------------------ parameters
    @property
    def gvars(self):
        """Global parameters: DEFAULTS < pigsty:vars (shared: do not change it)."""
        if self._gvars is None:
            merged = dict(D.DEFAULTS)
            merged.update(_mapping(self.vars_raw))
            self._gvars = types.MappingProxyType(merged)
        return self._gvars

    def _hosts(self, name):
        cls = self.clusters_raw.get(name)
        return _mapping(cls.get("hosts")) if isinstance(cls, dict) else {}

    def cluster(self, name):
        """The Cluster ``name`` (resolved on first use). A name the inventory does not
        have gives an empty cluster with the global parameters, like a cluster without
        hosts and vars."""
        found = self._clusters.get(name)
        if found is None:
            cls = self.clusters_raw.get(name)
            cvars = _mapping(cls.get("vars")) if isinstance(cls, dict) else {}
            conf = dict(self.gvars)
            conf.update(cvars)
            conf["pg_cluster"] = name
            members = []
            for ip, member in self._hosts(name).items():
                member = member if isinstance(member, dict) else {}
                seq = member.get("pg_seq")
                members.append({
                    "ip": str(ip),
                    "minion": self.node_by_ip.get(str(ip)),
                    "pg_seq": seq,
                    "pg_role": member.get("pg_role"),
                    "pg_instance": "%s-%s" % (name, seq),
                    "pg_offline_query": bool(member.get("pg_offline_query", False)),
                    "pg_weight": member.get("pg_weight", conf["pg_weight"]),
                })
            members.sort(key=_seq_key)
            found = self._clusters[name] = Cluster(name, conf, members)
        return found

    def clusters(self):
        """Every Cluster, in name order."""
        return [self.cluster(name) for name in self.cluster_names]

    def instance(self, name):
        """(Cluster, member) of instance ``name`` (pg-test-2), or (None, None)."""
        if self._instances is None:
            self._instances = {}
            for cls in self.clusters():
                for m in cls.members:
                    self._instances.setdefault(m["pg_instance"], (cls, m))
        return self._instances.get(name, (None, None))

    def instance_addresses(self):
        """cluster -> {instance: address}, resolved per cluster when asked (what
        pigsty_events.check_payload takes): O(1) per event instead of a map of every cluster."""
        return _InstanceAddresses(self)


class _InstanceAddresses(collections.abc.Mapping):
    def __init__(self, idx):
        self._idx = idx

    def __getitem__(self, name):
        if name not in self._idx.clusters_raw:
            raise KeyError(name)
        return {m["pg_instance"]: m["ip"] for m in self._idx.cluster(name).members}

    def __iter__(self):
        return iter(self._idx.cluster_names)

    def __len__(self):
        return len(self._idx.cluster_names)

    def __contains__(self, name):
        return name in self._idx.clusters_raw


def index(inv):
    """The Inventory of ``inv`` (a plain inventory dict, or an Inventory: returned as is)."""
    return Inventory.of(inv)
