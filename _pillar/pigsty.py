"""ext_pillar ``pigsty``: validate every minion's compiled Pigsty pillar.

It adds nothing to the pillar. When the inventory is invalid it raises, Salt records the
message under the pillar's ``_errors``, and every ``state.apply`` / ``state.sls`` on that
minion is refused with the message before any state runs ("nothing is applied").

The minion sees the public inventory (nodes, every cluster's hosts and public vars) and the
private part of its own cluster only, so its own cluster is validated fully and the others
structurally. ``salt-run pigsty.validate`` validates every cluster fully.
"""
import logging

import pigsty_inventory

log = logging.getLogger(__name__)

__virtualname__ = "pigsty"


def __virtual__():
    return __virtualname__


def ext_pillar(minion_id, pillar, *args, **kwargs):  # pylint: disable=unused-argument
    if "pigsty" not in pillar:
        # Not a Pigsty-managed minion (no inventory targeted to it): nothing to check.
        return {}
    inv = pigsty_inventory.inventory(pillar)
    if minion_id == __opts__.get("id"):
        # the master's own pillar (orchestrate, runners): the public inventory only
        pigsty_inventory.check(pillar, private=set())
        return {}
    if minion_id not in (inv.get("nodes") or {}):
        raise pigsty_inventory.InventoryError([
            "pigsty:nodes:%s: minion %s is not in the node map (expected an entry "
            "{ip: ADDRESS} for it in pillar/pigsty.sls)" % (minion_id, minion_id)])
    cluster, _member = pigsty_inventory.cluster_of_node(inv, minion_id)
    pigsty_inventory.check(pillar, private={cluster} if cluster else set())
    return {}
