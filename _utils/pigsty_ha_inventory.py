"""The master's compiled inventory for the HA (and backup) runners: the shared cache of
pigsty_inventory_cache (kept under these names for their callers), and a cluster's members."""
import salt.exceptions

import pigsty_inventory
import pigsty_inventory_cache

pigsty_pillar = pigsty_inventory_cache.pigsty_pillar   # what the cache compiles with
_CACHE = pigsty_inventory_cache._CACHE
_indexed = pigsty_inventory_cache._indexed
pillar_stamp = pigsty_inventory_cache.pillar_stamp
store = pigsty_inventory_cache.store


def load(opts, max_age=300):
    """(merged pillar, inventory): pigsty_inventory_cache.load."""
    return pigsty_inventory_cache.load(opts, max_age)


def members(inv, cluster):
    """The cluster's members, or a clear refusal naming the known clusters."""
    if cluster not in (inv.get("clusters") or {}):
        raise salt.exceptions.SaltInvocationError(
            "cluster: %r is not a cluster of the inventory (expected one of: %s)" % (
                cluster, ", ".join(sorted(inv.get("clusters") or {}))))
    return pigsty_inventory.cluster_members(inv, cluster)
