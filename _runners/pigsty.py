"""Pigsty-on-Salt operator runner.

    salt-run pigsty.validate          validate the whole inventory (every cluster, with its
                                      private part), as the master sees it
    salt-run pigsty.identity node-1   the grains a node gets from the inventory
"""
import logging

import salt.pillar
import salt.utils.dictupdate

import pigsty_inventory

log = logging.getLogger(__name__)

__virtualname__ = "pigsty"


def __virtual__():
    return __virtualname__


def _compile(minion_id):
    """The minion's pillar as the master compiles it, without ext_pillar (the validator)."""
    pillar = salt.pillar.get_pillar(__opts__, {}, minion_id, saltenv="base")
    return pillar.compile_pillar(ext=False)


def _full_inventory():
    """(merged pillar, problems): the public inventory plus every cluster's private part,
    gathered by compiling the pillar of every node named in the inventory."""
    problems = []
    public = _compile(__opts__.get("id", "salt-master"))
    try:
        inv = pigsty_inventory.inventory(public)
    except pigsty_inventory.InventoryError as exc:
        return public, exc.problems + list(public.get("_errors", []))
    merged = public
    for minion_id in sorted(inv.get("nodes") or {}):
        compiled = _compile(minion_id)
        for err in compiled.get("_errors", []):
            problems.append("pillar of %s: %s" % (minion_id, err))
        merged = salt.utils.dictupdate.merge(merged, compiled, strategy="recurse")
    return merged, problems


def validate():
    """Validate the whole Pigsty inventory; exits non-zero and lists every problem (each
    naming the pillar path of the field and what was expected) when it is invalid.

    CLI example::

        salt-run pigsty.validate
    """
    merged, problems = _full_inventory()
    problems += pigsty_inventory.validate(merged)
    if problems:
        __context__["retcode"] = 1
        return {"result": False, "retcode": 1, "problems": problems}
    inv = pigsty_inventory.inventory(merged)
    return {
        "result": True,
        "nodes": len(inv.get("nodes") or {}),
        "clusters": {name: [m["pg_instance"] for m in pigsty_inventory.cluster_members(inv, name)]
                     for name in sorted(inv.get("clusters") or {})},
    }


def identity(minion_id):
    """The identity grains the inventory gives a node.

    CLI example::

        salt-run pigsty.identity node-1
    """
    return pigsty_inventory.identity(_compile(minion_id), minion_id)
