"""The suite as a Salt extension installed with pip (setup.cfg: ``salt.loader`` entry point).

Salt's loader calls :func:`loader_dirs` and adds the directories it returns to its own, so a
master or minion with the package installed finds the execution modules, states, runners,
beacons, ext_pillars and outputters without syncing them from file_roots. A wheel installs the repository's
``_modules/``, ``_states/``, ... as this package's ``modules/``, ``states/``, ...; from a source
checkout (``pip install -e .``) the top-level directories are used as they are.

The ``_utils`` are not a loader directory: the modules import them by name (``import
pigsty_inventory``), so they are installed as top-level modules (setup.cfg ``py_modules``), as a
sync puts them in ``extmods/utils`` on the loader's path. Salt 3008's utils loader does not read
entry points anyway (``load_extensions=False``).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
# Salt's loader type -> the repository's directory
KINDS = {"modules": "_modules", "states": "_states", "runners": "_runners",
         "beacons": "_beacons", "pillar": "_pillar", "output": "_output"}


def loader_dirs():
    """{loader type: [directory]} for Salt's loader (new-style ``salt.loader`` entry point)."""
    found = {}
    for kind, top in KINDS.items():
        for path in (os.path.join(HERE, kind), os.path.join(os.path.dirname(HERE), top)):
            if os.path.isdir(path):
                found[kind] = [path]
                break
    return found
