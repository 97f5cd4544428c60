"""ext_pillar ``pigsty``: validate every minion's compiled Pigsty pillar.

It adds nothing to the pillar. When the inventory is invalid it raises, Salt records the
message under the pillar's ``_errors``, and every ``state.apply`` / ``state.sls`` on that
minion is refused with the message before any state runs ("nothing is applied").

The minion sees the public inventory (nodes, every cluster's hosts and public vars) and the
private part of its own cluster only, so its own cluster is validated fully and the others
structurally. ``salt-run pigsty.validate`` validates every cluster fully.

Each part of the inventory is validated once per version, not once per minion: results are
kept in this process (pigsty_inventory.VALIDATIONS, keyed by digests of the data), and a
minion's pillar differs from the next one's only in its own cluster's private part. A
pillar refresh of N minions therefore validates each cluster about twice in all, then costs
each further minion a digest of its pillar's inventory.
"""
import logging

try:  # the suite's _utils (absent where they were not synced: __virtual__ says so)
    import pigsty_inventory
except ImportError as exc:
    UTILS_MISSING = str(exc)
else:
    UTILS_MISSING = None

log = logging.getLogger(__name__)

__virtualname__ = "pigsty"


def __virtual__():
    if UTILS_MISSING:
        return (False, "%s: %s (sync the suite's _utils: saltutil.sync_all)"
                % (__virtualname__, UTILS_MISSING))
    return __virtualname__


def ext_pillar(minion_id, pillar, *args, **kwargs):  # pylint: disable=unused-argument
    if "pigsty" not in pillar:
        # Not a Pigsty-managed minion (no inventory targeted to it): nothing to check.
        return {}
    inv = pigsty_inventory.inventory(pillar)
    cache = pigsty_inventory.VALIDATIONS
    if minion_id == __opts__.get("id"):
        # the master's own pillar (orchestrate, runners): the public inventory only
        pigsty_inventory.check(pillar, private=set(), cache=cache)
        return {}
    nodes = inv.get("nodes")
    if not isinstance(nodes, dict) or minion_id not in nodes:
        raise pigsty_inventory.InventoryError([
            "pigsty:nodes:%s: minion %s is not in the node map (expected an entry "
            "{ip: ADDRESS} for it in pillar/pigsty.sls)" % (minion_id, minion_id)])
    cluster = _cluster_of(inv, minion_id)
    pigsty_inventory.check(pillar, private={cluster} if cluster else set(), cache=cache)
    node = nodes.get(minion_id)
    if isinstance(node, dict) and node.get("meta") is True:
        # a meta node runs etcd: its root password and every cluster's etcd password
        problems = pigsty_inventory.validate_dcs_secrets(pillar)
        problems += pigsty_inventory.validate_web_secrets(pillar)
        if problems:
            raise pigsty_inventory.InventoryError(problems)
    return {}


def _cluster_of(inv, minion_id):
    """The cluster of the minion's instance: one pass over the clusters' hosts (no index:
    building one would cost more than the whole cached validation)."""
    node = inv["nodes"].get(minion_id)
    ip = str(node.get("ip")) if isinstance(node, dict) else None
    clusters = inv.get("clusters")
    if ip is None or not isinstance(clusters, dict):
        return None
    for name in sorted(clusters):
        cls = clusters[name]
        hosts = cls.get("hosts") if isinstance(cls, dict) else None
        if isinstance(hosts, dict) and any(str(h) == ip for h in hosts):
            return name
    return None
