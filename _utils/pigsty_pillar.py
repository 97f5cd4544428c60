"""The master's full view of the inventory (master-side runners only).

Each node's pillar holds the public inventory plus its own cluster's private part; the
master compiles every node's pillar and merges them.
"""
import salt.pillar
import salt.utils.dictupdate

import pigsty_inventory


def compile_for(opts, minion_id):
    """The minion's pillar as the master compiles it, without ext_pillar (the validator)."""
    pillar = salt.pillar.get_pillar(opts, {}, minion_id, saltenv="base")
    return pillar.compile_pillar(ext=False)


def full_inventory(opts):
    """(merged pillar, problems found while compiling)."""
    problems = []
    public = compile_for(opts, opts.get("id", "salt-master"))
    try:
        inv = pigsty_inventory.inventory(public)
    except pigsty_inventory.InventoryError as exc:
        return public, exc.problems + list(public.get("_errors", []))
    merged = public
    for minion_id in sorted(inv.get("nodes") or {}):
        compiled = compile_for(opts, minion_id)
        for err in compiled.get("_errors", []):
            problems.append("pillar of %s: %s" % (minion_id, err))
        merged = salt.utils.dictupdate.merge(merged, compiled, strategy="recurse")
    return merged, problems
