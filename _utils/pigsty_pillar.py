"""The master's full view of the inventory (master-side runners only).

Each node's pillar holds the public inventory plus its own cluster's private part; the
master's full view is their union. ``full_inventory`` renders every pillar SLS file the top
file names, for any target, once: one render of O(size of the pillar), where compiling
every node's pillar and merging them (``full_inventory_per_minion``, the former way, kept to
compare) costs N compiles of O(N) each, each with loaders of its own.
"""
import fnmatch
from collections.abc import Mapping

import salt.pillar
import salt.utils.dictupdate

import pigsty_gpg
import pigsty_inventory


def compile_for(opts, minion_id):
    """The minion's pillar as the master compiles it, without ext_pillar (the validator)."""
    pillar = salt.pillar.get_pillar(opts, {}, minion_id, saltenv="base")
    return pillar.compile_pillar(ext=False)


def top_sls(top, pillarenv=None):
    """{saltenv: [sls, ...]}: every SLS the (merged) pillar top names, whatever its target,
    in the top's order, each once."""
    matches = {}
    for saltenv, body in top.items():
        if pillarenv and saltenv != pillarenv:
            continue
        names = matches.setdefault(saltenv, [])
        for _target, items in body.items():
            for item in items or []:
                if isinstance(item, str) and item not in names:
                    names.append(item)
    return matches


def full_inventory(opts):
    """(merged pillar, problems found while rendering): every SLS of the pillar top
    rendered once, as the master (its id and no grains), without ext_pillar.

    The files are merged here, in place, in the top's order: Salt's own render_pillar
    deep-copies everything merged so far for each file it merges, which is quadratic in the
    number of files (about 13 s for 300 clusters, minutes for 1,000).

    A file that fails to render because Salt's gpg renderer cannot decrypt one of its values
    also gets one problem per such value, naming its field and key (pigsty_gpg)."""
    pillar = salt.pillar.Pillar(opts, {}, opts.get("id", "salt-master"), "base")
    top, errors = pillar.get_top()
    errors = list(errors)
    renderer = opts.get("renderer", "yaml")
    merge_lists = opts.get("pillar_merge_lists", False)
    in_place = pillar.merge_strategy in ("smart", "recurse", "none") and not (
        renderer.split("|")[-1] == "yamlex" or renderer.startswith("yamlex_"))
    merged = {}
    for saltenv, names in top_sls(top, opts.get("pillarenv")).items():
        mods = {}
        for sls in _expand(pillar, saltenv, names, errors):
            pstate, mods, err = pillar.render_pstate(sls, saltenv, mods)
            errors.extend(err or [])
            if err:     # a value the master cannot decrypt: name it (Salt names the file)
                errors.extend(pigsty_gpg.explain_render_failure(pillar, sls, saltenv))
            if not isinstance(pstate, dict):
                continue
            if in_place:
                merge_into(merged, pstate, merge_lists)
            else:
                merged = salt.utils.dictupdate.merge(merged, pstate, pillar.merge_strategy,
                                                     renderer, merge_lists)
    errors.extend(pillar.decrypt_pillar(merged) or [])
    return merged, ["pillar: %s" % err for err in errors]


def merge_into(dest, upd, merge_lists=False):
    """Merge ``upd`` into ``dest`` in place, as salt.utils.dictupdate.update does (mappings
    recursively; lists replaced, or joined without duplicates with ``merge_lists``), without
    its set of every key of ``dest`` per call (quadratic over thousands of cluster files)."""
    for key, val in upd.items():
        cur = dest.get(key)
        if isinstance(cur, Mapping) and isinstance(val, Mapping):
            merge_into(cur, val, merge_lists)
        elif merge_lists and isinstance(cur, list) and isinstance(val, list):
            dest[key] = cur + [x for x in val if x not in cur]
        else:
            dest[key] = val
    return dest


def _expand(pillar, saltenv, names, errors):
    """SLS names with their globs expanded against the environment's files, as Salt does."""
    out = []
    for name in names:
        matched = []
        if any(c in name for c in "*?["):     # a plain name is itself, whether it exists or not
            try:
                matched = fnmatch.filter(pillar.avail[saltenv], name)
            except KeyError:
                errors.append("No matching pillar environment for environment '%s' found" % saltenv)
        out.extend(matched or [name])
    return out


def full_inventory_per_minion(opts):
    """(merged pillar, problems found while compiling): every node's pillar compiled and
    merged (the node map from the master's own pillar). N compiles: slow at scale."""
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
