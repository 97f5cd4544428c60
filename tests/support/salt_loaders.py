"""Ask Salt's own loaders which of the suite's functions they find, in a fresh interpreter.

Run as a script (``python -I tests/support/salt_loaders.py`` with a JSON request on stdin) so that
nothing of the test process (sys.path with the repository's ``_utils``, imported modules) helps
the loader. The request::

    {"sitedirs": [dirs added with site.addsitedir first, e.g. a pip --target dir],
     "minion": {opts over Salt's minion defaults}, "master": {opts over the master defaults},
     "want": {"modules": ["pigsty.identity", ...], "states": [...], "beacons": [...],
              "runners": [...], "pillar": ["pigsty", ...]}}

prints ``{kind: {function: true | "the loader's reason it is missing"}}`` as JSON, plus
``"files": {function found: its source file}`` and ``"imported": {name: file}`` of the top-level ``pigsty*``/``patroni*`` modules left in sys.modules. ``pillar``
names ext_pillar modules (their ``ext_pillar`` function)."""
import copy
import inspect
import json
import site
import sys


# Debian's grains, enough for Salt's own modules' __virtual__ (computing them takes seconds);
# strict matching: a name loads its own file only, not every file whose name contains it.
GRAINS = {"kernel": "Linux", "os": "Debian", "os_family": "Debian", "osmajorrelease": 12}
BASE = {"lazy_loader_strict_matching": True}


FILES = {}


def _found(loader, name):
    if name in loader:
        func = loader[name]
        FILES[name] = inspect.getsourcefile(inspect.unwrap(getattr(func, "func", func)))   # decorated runners
        return True
    import salt.loader.lazy  # pylint: disable=import-outside-toplevel
    if isinstance(loader, salt.loader.lazy.FilterDictWrapper):   # ext_pillar: name without suffix
        name, loader = name + loader.suffix, loader._dict  # pylint: disable=protected-access
    return loader.missing_fun_string(name)


def main():
    req = json.load(sys.stdin)
    for path in req.get("sitedirs", []):
        site.addsitedir(path)
    import salt.config  # pylint: disable=import-outside-toplevel
    import salt.loader  # pylint: disable=import-outside-toplevel

    want = req["want"]
    out = {}
    minion = copy.deepcopy(salt.config.DEFAULT_MINION_OPTS)
    minion.update(BASE, grains=GRAINS, pillar={})
    minion.update(req.get("minion", {}))
    utils = salt.loader.utils(minion)
    funcs = salt.loader.minion_mods(minion, utils=utils, context={})
    out["modules"] = {n: _found(funcs, n) for n in want.get("modules", [])}
    if want.get("states"):
        states = salt.loader.states(minion, funcs, utils, {})
        out["states"] = {n: _found(states, n) for n in want["states"]}
    if want.get("beacons"):
        beacons = salt.loader.beacons(minion, funcs)
        out["beacons"] = {n: _found(beacons, n) for n in want["beacons"]}
    if want.get("runners") or want.get("pillar"):
        master = copy.deepcopy(salt.config.DEFAULT_MASTER_OPTS)
        master.update(BASE, grains=GRAINS)
        master.update(req.get("master", {}))
        runners = salt.loader.runner(master, utils=salt.loader.utils(master))
        out["runners"] = {n: _found(runners, n) for n in want.get("runners", [])}
        pillars = salt.loader.pillars(master, salt.loader.minion_mods(master))
        out["pillar"] = {n: _found(pillars, n) for n in want.get("pillar", [])}
    # top-level modules of the suite's names left in sys.modules, and their files
    out["imported"] = {name: getattr(mod, "__file__", None) for name, mod in sys.modules.items()
                       if name.startswith(("pigsty", "patroni")) and "." not in name}
    out["files"] = FILES
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
