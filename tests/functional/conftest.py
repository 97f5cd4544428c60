"""A throwaway PostgreSQL 15 for the functional tests, and the Salt modules loaded against it.

The server runs as the ``postgres`` OS user from the host's /usr/lib/postgresql/15/bin, in
a private temp dir, unix socket only (listen_addresses ''): the port number only names the
socket. pg_hba: ``postgres`` trusted, every other user by SCRAM-SHA-256 password. It is
stopped and its directory removed at the end of the session, whatever happened.
"""
import functools
import importlib.util
import os

import pytest

from pg_server import HBA, REPO, Instance, start_instance  # noqa: F401 (fixtures' helpers)


@pytest.fixture(scope="session")
def pg():
    inst, stop = start_instance()
    try:
        yield inst
    finally:
        stop()


def _load(relpath, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pg_mod():
    """The execution module with the dunders Salt's loader would give it."""
    module = _load("_modules/pigsty_pg.py", "pigsty_pg_execution_module")
    module.__salt__ = {"config.option": lambda key, default=None: default}
    module.__opts__ = {"test": False}
    return module


@pytest.fixture()
def pg_state(pg, pg_mod):
    """The state module, its __salt__ wired to the real execution module on the test server."""
    module = _load("_states/pigsty_pg.py", "pigsty_pg_state_module")
    module.__salt__ = {
        "pigsty_pg." + fun: functools.partial(getattr(pg_mod, fun), **pg.conn)
        for fun in ("user_ensure", "user_remove", "db_ensure", "default_roles_ensure")
    }
    module.__opts__ = {"test": False}
    return module
