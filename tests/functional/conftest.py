"""A throwaway PostgreSQL 15 for the functional tests, and the Salt modules loaded against it.

The server runs as the ``postgres`` OS user from the host's /usr/lib/postgresql/15/bin, in
a private temp dir, unix socket only (listen_addresses ''): the port number only names the
socket. pg_hba: ``postgres`` trusted, every other user by SCRAM-SHA-256 password. It is
stopped and its directory removed at the end of the session, whatever happened.
"""
import functools

import pytest

from loader import load_module
from pg_server import HBA, REPO, Instance, start_instance  # noqa: F401 (fixtures' helpers)


@pytest.fixture(scope="session")
def pg():
    inst, stop = start_instance()
    try:
        yield inst
    finally:
        stop()


@pytest.fixture(scope="session")
def pg_mod():
    """The execution module with the dunders Salt's loader would give it."""
    return load_module("_modules/pigsty_pg.py", "pigsty_pg_execution_module",
                       salt={"config.option": lambda key, default=None: default}, opts={"test": False})


@pytest.fixture()
def pg_state(pg, pg_mod):
    """The state module, its __salt__ wired to the real execution module on the test server."""
    salt = {"pigsty_pg." + fun: functools.partial(getattr(pg_mod, fun), **pg.conn)
            for fun in ("user_ensure", "user_remove", "db_ensure", "default_roles_ensure")}
    return load_module("_states/pigsty_pg.py", "pigsty_pg_state_module", salt=salt, opts={"test": False})
