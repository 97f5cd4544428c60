"""DNS records served by dnsmasq on the meta nodes (Pigsty's infra DNS).

Names: every node (its minion id), every instance (pg-test-1), every cluster (its VIP, or
its primary when it has no VIP), ``<cluster>-primary`` (the current primary), the infra
domains of the portal (p.pigsty, a.pigsty, g.pigsty, h.pigsty, pigsty -> the first meta
node) and Pigsty-style extra records from ``dns_records``.

The records are written to an addn-hosts file (``hosts_file``), which a failover runner can
rewrite with the live primaries (``records(inv, primaries={"pg-test": "pg-test-2"})``) and
make dnsmasq re-read with SIGHUP.

Pure Python (no Salt imports).
"""
import pigsty_model

HOSTS_FILE = "/etc/pigsty/dns/hosts"


def records(inv, primaries=None):
    """Sorted list of (name, address). ``primaries`` maps cluster -> the instance (name,
    e.g. pg-test-2) that is its primary now; clusters it does not name use pillar's.
    ``inv``: the inventory or its index (pigsty_model.Inventory); O(N) either way."""
    idx = pigsty_model.index(inv)
    gvars = idx.gvars
    primaries = dict(primaries or {})
    unknown = sorted(set(primaries) - set(idx.clusters_raw))
    if unknown:
        raise ValueError("primaries: %s not cluster(s) of the inventory (expected some of: %s)"
                         % (", ".join(unknown), ", ".join(idx.cluster_names) or "none"))
    out = set()
    for nid, node in idx.nodes.items():
        if isinstance(node, dict) and node.get("ip"):
            out.add((str(nid), str(node["ip"])))
    for cls in idx.clusters():
        cluster = cls.name
        by_instance = {m["pg_instance"]: m["ip"] for m in cls.members}
        for m in cls.members:
            out.add((m["pg_instance"], m["ip"]))
        primary = primaries.get(cluster)
        if primary is None:
            primary = cls.primary["pg_instance"] if cls.primary else None
        elif primary not in by_instance:
            raise ValueError("primaries:%s: %r is not an instance of %s (expected one of: %s)" % (
                cluster, primary, cluster, ", ".join(sorted(by_instance))))
        if primary is not None:
            out.add(("%s-primary" % cluster, by_instance[primary]))
        if cls.vip is not None:
            out.add((cluster, cls.vip.ip))
        elif primary is not None:
            out.add((cluster, by_instance[primary]))
    if idx.meta_ips:
        meta_ip = idx.meta_ips[0]
        for entry in (gvars.get("infra_portal") or {}).values():
            if isinstance(entry, dict) and entry.get("domain"):
                out.add((str(entry["domain"]), meta_ip))
    for line in gvars.get("dns_records") or []:
        fields = str(line).split()
        for name in fields[1:]:
            out.add((name, fields[0]))
    return sorted(out)


def hosts_file(recs):
    """The addn-hosts text for dnsmasq: one "ADDRESS NAME" line per record."""
    lines = ["# Managed by Salt (Pigsty on Salt): Pigsty DNS records (dnsmasq addn-hosts).",
             "# <cluster>-primary follows the primary; a failover rewrites this file and",
             "# sends dnsmasq SIGHUP."]
    lines += ["%s %s" % (ip, name) for name, ip in sorted(recs, key=lambda r: (r[0], r[1]))]
    return "\n".join(lines) + "\n"
