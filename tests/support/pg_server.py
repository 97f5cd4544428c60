"""A throwaway PostgreSQL 15 (and streaming standbys of it) for the functional tests.

The server runs as the ``postgres`` OS user from the host's /usr/lib/postgresql/15/bin, in
a private temp dir, unix socket only (listen_addresses ''): the port number only names the
socket. pg_hba: ``postgres`` trusted, every other user by SCRAM-SHA-256 password.
"""
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


def start_instance(settings=None, hba=HBA, prefix="pigsty-pg-test-", basebackup_from=None):
    """Start a throwaway PostgreSQL 15 (``settings`` on top of SETTINGS). With
    ``basebackup_from`` (an Instance), it is a streaming standby of that instance, cloned with
    pg_basebackup -R (``settings`` may name ``primary_slot_name``). Returns (Instance, stop);
    stop() stops it and removes its directory."""
    if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
        pytest.fail("PostgreSQL 15 is not installed: %s/initdb is missing (the functional "
                    "tests need the postgresql-15 package; tests/run.sh should install it)"
                    % PG_BIN)
    base = tempfile.mkdtemp(prefix=prefix)
    owner = pwd.getpwnam("postgres")
    os.chown(base, owner.pw_uid, owner.pw_gid)
    inst = Instance(base, _free_port())

    def stop():
        if os.path.exists(os.path.join(inst.data, "postmaster.pid")):
            _as_postgres(base, PG_BIN + "/pg_ctl", "-D", inst.data, "-m", "immediate", "-w",
                         "stop")
        shutil.rmtree(base, ignore_errors=True)

    try:
        if basebackup_from is None:
            done = _as_postgres(base, PG_BIN + "/initdb", "-D", inst.data, "-U", "postgres",
                                "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
            what = "initdb"
        else:
            done = _as_postgres(base, PG_BIN + "/pg_basebackup", "-D", inst.data, "-R",
                                "-X", "stream", "-c", "fast", "--no-sync",
                                "-h", basebackup_from.host, "-p", str(basebackup_from.port),
                                "-U", "postgres")
            what = "pg_basebackup"
        if done.returncode:
            pytest.fail("%s failed:\n%s" % (what, done.stdout))
        with open(os.path.join(inst.data, "pg_hba.conf"), "w") as f:
            f.write(hba)
        conf = dict(SETTINGS, port=str(inst.port), unix_socket_directories="'%s'" % base)
        conf.update(settings or {})
        with open(os.path.join(inst.data, "postgresql.conf"), "a") as f:
            f.write("".join("%s = %s\n" % kv for kv in conf.items()))
        done = _as_postgres(base, PG_BIN + "/pg_ctl", "-D", inst.data, "-l", inst.log,
                            "-w", "-t", "60", "start")
        if done.returncode:
            pytest.fail("PostgreSQL did not start:\n%s\n%s" % (done.stdout, _log_tail(inst.log)))
    except BaseException:
        stop()
        raise
    return inst, stop
