"""Load one of the repository's Salt modules (``_states/x.py``, ``_runners/x.py``, ...) as a
plain Python module with the Salt dunders a test gives it (``__opts__``, ``__salt__``, ...)."""
import importlib.util
import os
import uuid

from pillar_fixture import REPO


def load_module(relpath, **dunders):
    name = "pigsty_test_%s_%s" % (os.path.basename(relpath)[:-3], uuid.uuid4().hex[:8])
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relpath))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for key, value in dunders.items():
        setattr(mod, "__%s__" % key, value)
    return mod
