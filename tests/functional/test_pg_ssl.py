"""PostgreSQL and pgbouncer over SSL, for real on loopback, with the node certificate that
salt/node/pki.sls makes (salt-call --local: tests/support/pki_local.py).

A throwaway PostgreSQL 15 gets the SSL settings Patroni writes (pigsty_pgsql.ssl_parameters)
and the HBA lines pigsty_hba renders with pg_ssl_required; pgbouncer runs with the
configuration salt/pgsql/files/pgbouncer.ini.jinja renders. The intranet of the rules
(10.0.0.0/8) stands for the loopback net here: a session from it is "remote". Checked: a remote password login without SSL is refused (business user with
pg_ssl_required, admin always), with SSL it works and the server's certificate verifies
against the CA (verify-full); the same through pgbouncer; and pgbouncer's own connection to
a PostgreSQL over TCP (a switchover hand-off forwarding to the primary) uses SSL."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from unittest import mock

import jinja2
import psycopg2
import pytest

import pigsty_hba
import pigsty_inventory
import pigsty_pgsql
import pigsty_pki
from pg_server import REPO, start_instance
from pillar_fixture import default_pillar
from pki_local import make_node_pki

NODE = "127.0.0.2"
INTRA = "10.0.0.0/8"
ADMIN, ADMIN_PW = "dbuser_dba", "Admin 'Pw' 1"
APP, APP_PW = "dbuser_app", "App Pw; 2"


def _conf():
    pillar = default_pillar()
    pillar["pigsty"]["vars"]["pg_ssl_required"] = True
    return pigsty_inventory.instance_config(pillar, "node-1")


def _hba(lines):
    """The rendered rules on loopback: the intranet is the loopback net (a client's source
    address is 127.0.0.1 whatever address it dials), so the localhost rules, the other
    private ranges and the ident-map lines (no pg_ident here) are left out; postgres is
    trusted on the local socket."""
    out = ["local all postgres trust"]
    for line in lines:
        if line.startswith("#") or "map=" in line or any(
                net in line for net in ("172.16.0.0/12", "192.168.0.0/16", "127.0.0.1/32", "::1/128")):
            continue
        out.append(line.replace(INTRA, "127.0.0.0/8"))
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def pki():
    base = tempfile.mkdtemp(prefix="pigsty-pg-ssl-")
    os.chmod(base, 0o755)
    try:
        yield make_node_pki(os.path.join(base, "salt"), NODE)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def server(pki):
    conf = _conf()
    with mock.patch.object(pigsty_pki, "paths", lambda *a: pki):
        ssl = pigsty_pgsql.ssl_parameters()
    assert ssl["ssl"] == "on" and ssl["ssl_key_file"] == pki["node_key"]
    settings = {k: "'%s'" % v for k, v in ssl.items()}
    settings["listen_addresses"] = "'%s'" % NODE
    inst, stop = start_instance(settings=settings, hba=_hba(pigsty_hba.postgres_lines(conf)),
                                prefix="pigsty-pg-ssl-")
    try:
        inst.query("CREATE ROLE dbrole_readonly NOLOGIN")
        # as in Pigsty, the admin is a member of dbrole_readonly (via dbrole_admin): its
        # pgbouncer sessions reach PostgreSQL over the local socket by that rule
        inst.query("CREATE ROLE %s LOGIN SUPERUSER IN ROLE dbrole_readonly PASSWORD %%s" % ADMIN, (ADMIN_PW,))
        inst.query("CREATE ROLE %s LOGIN IN ROLE dbrole_readonly PASSWORD %%s" % APP, (APP_PW,))
        yield inst
    finally:
        stop()


def login(port, user, password, sslmode, ca=None, dbname="postgres"):
    """'ssl' or 'plain' (how the session runs), or the server's refusal."""
    kwargs = {"sslrootcert": ca} if ca else {}
    try:
        db = psycopg2.connect(host=NODE, port=port, dbname=dbname, user=user, password=password,
                              sslmode=sslmode, connect_timeout=5, **kwargs)
    except psycopg2.OperationalError as exc:
        return str(exc).strip()
    try:
        with db.cursor() as cur:
            cur.execute("SHOW ssl")
            return "ssl" if db.info.ssl_in_use else "plain"
    finally:
        db.close()


def test_a_remote_business_login_needs_ssl(server, pki):
    refused = login(server.port, APP, APP_PW, "disable")
    assert "no pg_hba.conf entry" in refused and "no encryption" in refused, refused
    assert login(server.port, APP, APP_PW, "verify-full", pki["ca_crt"]) == "ssl"
    assert login(server.port, APP, APP_PW, "prefer") == "ssl"       # libpq's default: SSL


def test_the_admin_needs_ssl_and_the_certificate_verifies(server, pki):
    assert "no encryption" in login(server.port, ADMIN, ADMIN_PW, "disable")
    assert login(server.port, ADMIN, ADMIN_PW, "verify-full", pki["ca_crt"]) == "ssl"
    assert "password authentication failed" in login(server.port, ADMIN, "wrong", "require")


def test_a_certificate_from_another_ca_is_refused_by_the_client(server, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(tmp_path / "k"), "-out", str(tmp_path / "other.crt"), "-days", "1",
                    "-subj", "/CN=other"], check=True, capture_output=True)
    refused = login(server.port, APP, APP_PW, "verify-full", str(tmp_path / "other.crt"))
    assert "certificate verify failed" in refused, refused


# ------------------------------------------------------------------ pgbouncer
def _pgbouncer_binary():
    for path in (shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"):
        if path and os.access(path, os.X_OK):
            return path
    pytest.fail("pgbouncer is not installed (tests/run.sh installs it)")


def render_pgbouncer_ini(conf, pki):
    with open(os.path.join(REPO, "salt", "pgsql", "files", "pgbouncer.ini.jinja")) as fh:
        text = fh.read()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, loader=jinja2.DictLoader({
        "ini": text, "pgsql/map.jinja": "{% set pg = " + repr(dict(conf)) + " %}"}))
    return env.get_template("ini").render(salt={"pigsty_pki.request": lambda: {"paths": pki},
                                                "pigsty.pgbouncer": lambda: {"user_options": []}})


@pytest.fixture(scope="module")
def pgbouncer(server, pki):
    conf = _conf()
    base = tempfile.mkdtemp(prefix="pigsty-pgb-ssl-")
    os.chown(base, *(lambda pw: (pw.pw_uid, pw.pw_gid))(__import__("pwd").getpwnam("postgres")))
    with socket.socket() as sock:
        sock.bind((NODE, 0))
        port = sock.getsockname()[1]
    ini = render_pgbouncer_ini(dict(conf, pgbouncer_port=port), pki)
    assert "client_tls_sslmode = prefer" in ini and "server_tls_sslmode = verify-full" in ini
    for old, new in (("listen_addr = *", "listen_addr = %s" % NODE),
                     ("/etc/pgbouncer", base), ("/var/run/postgresql", base), ("/var/log/postgresql", base)):
        ini = ini.replace(old, new)
    with open(os.path.join(base, "pgbouncer.ini"), "w") as fh:
        fh.write(ini)
    # the local instance over its unix socket (the usual), and the same instance over TCP at
    # the node address (what a hand-off's forwarding looks like: host=<the primary's address>)
    databases = pigsty_pgsql.pgbouncer_databases(conf)
    lines = [d["line"].replace("host=/var/run/postgresql", "host=%s" % server.host).replace(
        "port=%d" % conf["pg_port"], "port=%d" % server.port) for d in databases if d["name"] == "postgres"]
    lines.append("host=%s port=%d dbname=postgres" % (NODE, server.port))
    with open(os.path.join(base, "database.txt"), "w") as fh:
        fh.write("postgres = %s\nforwarded = %s\n" % tuple(lines))
    with open(os.path.join(base, "pgb_hba.conf"), "w") as fh:
        fh.write(_hba(pigsty_hba.pgbouncer_lines(conf)).replace("local all postgres trust\n", ""))
    verifiers = dict(server.query("SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN (%s, %s)",
                                  (ADMIN, APP)))
    with open(os.path.join(base, "userlist.txt"), "w") as fh:
        fh.write("".join('"%s" "%s"\n' % kv for kv in sorted(verifiers.items())))
    for name in os.listdir(base):
        shutil.chown(os.path.join(base, name), "postgres", "postgres")
    proc = subprocess.Popen(["runuser", "-u", "postgres", "--", _pgbouncer_binary(), os.path.join(base, "pgbouncer.ini")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((NODE, port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = open(os.path.join(base, "pgbouncer.log")).read()[-3000:] if os.path.exists(
                    os.path.join(base, "pgbouncer.log")) else ""
                pytest.fail("pgbouncer did not start:\n" + log)
            time.sleep(0.1)
    try:
        yield {"port": port, "base": base}
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(base, ignore_errors=True)


def test_pgbouncer_clients_need_ssl_remotely(pgbouncer, pki):
    port = pgbouncer["port"]
    refused = login(port, APP, APP_PW, "disable")
    assert "no encryption" in refused or "not allowed" in refused or "rejected" in refused, refused
    assert login(port, APP, APP_PW, "verify-full", pki["ca_crt"]) == "ssl"
    assert login(port, ADMIN, ADMIN_PW, "verify-full", pki["ca_crt"]) == "ssl"
    assert login(port, ADMIN, ADMIN_PW, "disable") != "plain"


def test_pgbouncer_reaches_postgres_over_ssl_when_forwarding(pgbouncer, server, pki):
    port = pgbouncer["port"]
    for dbname, want in (("postgres", False), ("forwarded", True)):   # unix socket: no TLS
        db = psycopg2.connect(host=NODE, port=port, dbname=dbname, user=APP, password=APP_PW,
                              sslmode="verify-full", sslrootcert=pki["ca_crt"], connect_timeout=5)
        try:
            with db.cursor() as cur:
                cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                assert cur.fetchone()[0] is want, dbname
        finally:
            db.close()
    log = open(os.path.join(pgbouncer["base"], "pgbouncer.log")).read()
    assert not re.search(r"(?i)ssl.*(error|fail)", log), log[-2000:]
