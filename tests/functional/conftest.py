"""A throwaway PostgreSQL 15 for the functional tests, and the Salt modules loaded against it.

The server runs as the ``postgres`` OS user from the host's /usr/lib/postgresql/15/bin, in
a private temp dir, unix socket only (listen_addresses ''): the port number only names the
socket. pg_hba: ``postgres`` trusted, every other user by SCRAM-SHA-256 password. It is
stopped and its directory removed at the end of the session, whatever happened.
"""
import functools
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import psycopg2
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_BIN = "/usr/lib/postgresql/15/bin"
HBA = "local all postgres trust\nlocal all all scram-sha-256\n"
SETTINGS = {
    "listen_addresses": "''",
    "max_connections": "40",
    "shared_buffers": "'32MB'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "password_encryption": "'scram-sha-256'",
}


class Instance:
    """Where the test server listens, and a helper to query it as postgres."""

    def __init__(self, base, port):
        self.host = base
        self.port = port
        self.data = os.path.join(base, "data")
        self.log = os.path.join(base, "postgres.log")

    @property
    def conn(self):
        return {"host": self.host, "port": self.port}

    def connect(self, dbname="postgres", user="postgres", password=None):
        return psycopg2.connect(host=self.host, port=self.port, dbname=dbname, user=user,
                                password=password, connect_timeout=5)

    def query(self, sql, args=None, dbname="postgres"):
        db = self.connect(dbname)
        try:
            db.autocommit = True
            with db.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            db.close()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(base, *argv):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + list(argv), cwd=base,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120, check=False)


def _log_tail(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-3000:]
    except OSError:
        return "(no server log)"


@pytest.fixture(scope="session")
def pg():
    if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
        pytest.fail("PostgreSQL 15 is not installed: %s/initdb is missing (the functional "
                    "tests need the postgresql-15 package; tests/run.sh should install it)"
                    % PG_BIN)
    base = tempfile.mkdtemp(prefix="pigsty-pg-test-")
    owner = pwd.getpwnam("postgres")
    os.chown(base, owner.pw_uid, owner.pw_gid)
    inst = Instance(base, _free_port())
    try:
        done = _as_postgres(base, PG_BIN + "/initdb", "-D", inst.data, "-U", "postgres",
                            "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        if done.returncode:
            pytest.fail("initdb failed:\n" + done.stdout)
        with open(os.path.join(inst.data, "pg_hba.conf"), "w") as f:
            f.write(HBA)
        settings = dict(SETTINGS, port=str(inst.port), unix_socket_directories="'%s'" % base)
        with open(os.path.join(inst.data, "postgresql.conf"), "a") as f:
            f.write("".join("%s = %s\n" % kv for kv in settings.items()))
        done = _as_postgres(base, PG_BIN + "/pg_ctl", "-D", inst.data, "-l", inst.log,
                            "-w", "-t", "60", "start")
        if done.returncode:
            pytest.fail("PostgreSQL did not start:\n%s\n%s" % (done.stdout, _log_tail(inst.log)))
        yield inst
    finally:
        if os.path.exists(os.path.join(inst.data, "postmaster.pid")):
            _as_postgres(base, PG_BIN + "/pg_ctl", "-D", inst.data, "-m", "immediate", "-w",
                         "stop")
        shutil.rmtree(base, ignore_errors=True)


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
