"""Synthetic Pigsty inventories of N clusters x M members, valid by construction: for the
scale benchmark (bench/scale.py) and the unit tests of the index and the validation cache.

Cluster ``i`` (0-based) is ``pg-c<i>`` on its own /24, 10.<1 + i // 256>.<i % 256>.0/24:
members .11, .12, .13 ... (minions ``n<i>-1``, ``n<i>-2`` ...), VIP .3; the one meta node
``meta`` is 10.0.0.10 and hosts no instance. Standard library only.
"""
import copy
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

META = {"meta": {"ip": "10.0.0.10", "meta": True}}


def cluster_name(i):
    return "pg-c%05d" % i


def subnet(i):
    return "10.%d.%d" % (1 + i // 256, i % 256)


DCS = {"etcd_root_password": "Etcd.Root"}
INFRA = {"portal_username": "admin", "portal_password": "Portal.Pw"}


def minion(i, seq):
    return "n%05d-%d" % (i, seq)


def private_vars(i):
    """A cluster's private part (passwords, users, databases), as pillar/clusters/X.sls."""
    return {
        "pg_admin_password": "Admin.%d" % i,
        "pg_replication_password": "Repl.%d" % i,
        "pg_monitor_password": "Mon.%d" % i,
        "pg_etcd_password": "Etcd.%d" % i,
        "haproxy_admin_password": "HAProxy.%d" % i,
        "patroni_password": "Patroni.%d" % i,
        "pg_users": [{"name": "app", "password": "App.%d" % i, "pgbouncer": True,
                      "roles": ["dbrole_readwrite"]}],
        "pg_databases": [{"name": "app", "owner": "app"}],
    }


def inventory(n, members=3, private="all"):
    """The ``pigsty`` pillar key. ``private``: "all" (the master's full view), a set of
    cluster names (a minion's view: its own cluster's private part), or None (public)."""
    nodes = copy.deepcopy(META)
    clusters = {}
    for i in range(n):
        net, name = subnet(i), cluster_name(i)
        hosts = {}
        for seq in range(1, members + 1):
            ip = "%s.%d" % (net, 10 + seq)
            nodes[minion(i, seq)] = {"ip": ip}
            hosts[ip] = {"pg_seq": seq, "pg_role": "primary" if seq == 1 else "replica"}
        if members >= 3:
            hosts["%s.%d" % (net, 10 + members)]["pg_offline_query"] = True
        cvars = {"pg_vip_enabled": True, "pg_vip_address": "%s.3/24" % net}
        if private == "all" or (private and name in private):
            cvars.update(private_vars(i))
        clusters[name] = {"hosts": hosts, "vars": cvars}
    inv = {"vars": {"pg_vip_interface": "eth1"}, "nodes": nodes, "clusters": clusters}
    if private == "all":
        inv["dcs"] = dcs(clusters)      # the meta node's etcd secrets (pillar/dcs*.sls)
        inv["infra"] = dict(INFRA)      # and its web logins (pillar/dcs.sls)
    return inv


def pillar(n, members=3, private="all"):
    return {"pigsty": inventory(n, members, private)}


def minion_pillar(public, cluster):
    """A minion's pillar from a public pillar (``pillar(n, private=None)``): the public
    inventory plus its own cluster's private part, sharing every other cluster's data
    (as cheap to build as Salt's merge; do not mutate the result's shared parts)."""
    inv = dict(public["pigsty"])
    inv["clusters"] = dict(inv["clusters"])
    if cluster is not None:
        i = int(cluster.rsplit("c", 1)[1])
        own = dict(inv["clusters"][cluster])
        own["vars"] = dict(own["vars"], **private_vars(i))
        inv["clusters"][cluster] = own
    return {"pigsty": inv}


def meta_pillar(public):
    """The meta node's pillar from a public pillar: the public inventory plus etcd's root
    password and each cluster's etcd password (pillar/dcs.sls, pillar/dcs_clusters.sls)."""
    inv = dict(public["pigsty"])
    inv["dcs"] = dcs(inv["clusters"])
    inv["infra"] = dict(INFRA)
    return {"pigsty": inv}


def dcs(clusters):
    """pigsty:dcs of the meta node: the root password and every cluster's etcd password."""
    return dict(DCS, etcd_users={name: private_vars(int(name.rsplit("c", 1)[1]))["pg_etcd_password"]
                                 for name in clusters})


def write_pillar_tree(directory, n, members=3, top_file=None):
    """Write a pillar tree of ``n`` clusters the way pillar/ lays it out: pigsty.sls (the
    public inventory), clusters/<name>.sls (each cluster's private part) and top.sls
    (``top_file``'s text, e.g. the repository's pillar/top.sls; by default a plain one
    that targets each private file to its cluster's minions)."""
    import yaml             # pylint: disable=import-outside-toplevel
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    os.makedirs(os.path.join(directory, "clusters"), exist_ok=True)
    with open(os.path.join(directory, "pigsty.sls"), "w") as fh:
        yaml.dump(pillar(n, members, private=None), fh, Dumper=dumper)
    for i in range(n):
        name = cluster_name(i)
        with open(os.path.join(directory, "clusters", name + ".sls"), "w") as fh:
            yaml.dump({"pigsty": {"clusters": {name: {"vars": private_vars(i)}}}}, fh,
                      Dumper=dumper)
    with open(os.path.join(directory, "dcs.sls"), "w") as fh:
        yaml.dump({"pigsty": {"dcs": dict(DCS), "infra": dict(INFRA)}}, fh, Dumper=dumper)
    with open(os.path.join(REPO, "pillar", "dcs_clusters.sls")) as src, \
            open(os.path.join(directory, "dcs_clusters.sls"), "w") as fh:
        fh.write(src.read())      # the repository's: copies each cluster's etcd password
    if top_file is None:
        top_file = "base:\n  '*':\n    - pigsty\n" + "".join(
            "  'L@%s':\n    - match: compound\n    - clusters.%s\n" % (
                ",".join(minion(i, seq) for seq in range(1, members + 1)), cluster_name(i))
            for i in range(n))
    with open(os.path.join(directory, "top.sls"), "w") as fh:
        fh.write(top_file)
