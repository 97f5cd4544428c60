"""Load one of the repository's Python files that Salt (or a node) runs as a module of its own --
``_modules/x.py``, ``_states/x.py``, ``_runners/x.py``, ``_beacons/x.py``, ``_pillar/x.py``, a
script under ``salt/`` -- as a plain Python module, with the Salt dunders a test gives it:

    mod = load_module("_modules/pigsty_haproxy.py", salt={"config.option": ...}, opts={"id": "meta"})

sets ``mod.__salt__`` and ``mod.__opts__`` (any ``key=value`` becomes ``__key__``), as the
``configure_loader_modules`` fixtures of pytest-salt-factories do for Salt's own modules. The
``_utils`` the file imports come from sys.path (tests/conftest.py puts ``_utils`` there). Each
call gives a new module object (not registered in sys.modules), so tests do not share state;
``name`` only shows in tracebacks and log records. ``relpath`` is relative to the repository (an
absolute path is taken as it is). The real loader's view of the modules is in
tests/support/salt_loaders.py."""
import importlib.util
import os
import uuid

from pillar_fixture import REPO


def load_module(relpath, name=None, **dunders):
    path = os.path.join(REPO, relpath)
    if name is None:
        name = "pigsty_test_%s_%s" % (os.path.basename(relpath)[:-3], uuid.uuid4().hex[:8])
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for key, value in dunders.items():
        setattr(mod, "__%s__" % key, value)
    return mod
