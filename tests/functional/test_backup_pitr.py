"""Point-in-time recovery with pgBackRest, for real, on loopback.

A throwaway PostgreSQL 15 archives its WAL through pgBackRest's TLS server into a
repository served by a second pgBackRest TLS server (the "meta" side), both configured by
the files _utils/pigsty_backup.py renders for the states, with certificates made by
openssl like the PKI contract's (CA, node certificate with clientAuth and serverAuth). A full
backup runs on the repository side (as on meta); rows are written, the time noted, the
table dropped; the instance is restored to the noted time with the command line the
runner's restore uses, and the rows are back. The refusals of the runner's plan are
checked against the real repository's info.
"""
import datetime
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import pigsty_backup as B
import pigsty_defaults as D
from tests.support import pg_server

PGBACKREST = shutil.which("pgbackrest") or "/usr/bin/pgbackrest"
HOST = "localhost"            # the certificates' DNS name: pgBackRest 2.45 checks names only


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(argv, user="postgres", timeout=300, check=True):
    done = subprocess.run(["runuser", "-u", user, "--"] + argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False,
                          cwd="/")
    if check and done.returncode:
        pytest.fail("%s failed (%d):\n%s" % (" ".join(argv), done.returncode, done.stdout[-3000:]))
    return done


def _certs(base):
    """CA + one node certificate (CN and DNS name localhost, serverAuth and clientAuth)."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=base, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=pigsty-test-ca")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr",
         "-subj", "/CN=%s" % HOST)
    with open(os.path.join(base, "node.ext"), "w") as f:
        f.write("subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n" % HOST)
    ossl("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "node.crt", "-days", "2", "-extfile", "node.ext")
    os.chmod(os.path.join(base, "node.key"), 0o600)
    return {"ca": os.path.join(base, "ca.crt"), "cert": os.path.join(base, "node.crt"),
            "key": os.path.join(base, "node.key")}


@pytest.fixture(scope="module")
def setup():
    if not os.access(PGBACKREST, os.X_OK):
        pytest.fail("pgbackrest is not installed (tests/run.sh installs the pgbackrest package)")
    base = tempfile.mkdtemp(prefix="pigsty-pgbackrest-")
    owner = pwd.getpwnam("postgres")
    pki = _certs(base)
    for name in os.listdir(base):
        os.chown(os.path.join(base, name), owner.pw_uid, owner.pw_gid)
    os.chown(base, owner.pw_uid, owner.pw_gid)
    repo_conf = os.path.join(base, "repo.conf")
    db_conf = os.path.join(base, "db.conf")
    repo_port, db_port = _free_port(), _free_port()
    settings = {"archive_mode": "on", "wal_level": "replica", "archive_timeout": "5",
                "archive_command": "'pgbackrest --config=%s --stanza=demo archive-push %%p'" % db_conf}
    inst, stop_pg = pg_server.start_instance(settings, prefix="pigsty-pitr-")
    conf = dict(D.DEFAULTS, pg_cluster="demo", pg_data=inst.data, pg_port=inst.port,
                pgbackrest_port=db_port, pgbackrest_log_dir=os.path.join(base, "log"))
    common = [("lock-path", os.path.join(base, "lock")), ("log-level-file", "off")]
    db_text = B.db_config(conf, HOST, pki, extra={
        "global": common + [("repo1-host-config", repo_conf)], "socket": inst.host,
        "repo_port": repo_port, "tls_address": "127.0.0.1"})
    gconf = dict(D.DEFAULTS, pgbackrest_port=repo_port,
                 pgbackrest_log_dir=os.path.join(base, "log"),
                 pgbackrest_repo={"meta": {"path": os.path.join(base, "repo"),
                                           "retention_full": 2}})
    repo_text = B.repo_config(gconf, [("demo", conf, [HOST])], pki, extra={
        "global": common, "socket": inst.host, "tls_address": "127.0.0.1",
        "pg1": [("pg1-host-config", db_conf)]})
    # the repository's configuration would hold the log-level-file twice: ours wins
    repo_text = repo_text.replace("log-level-file=info\n", "")
    db_text = db_text.replace("log-level-file=info\n", "")
    for path, text in ((repo_conf, repo_text), (db_conf, db_text)):
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, owner.pw_uid, owner.pw_gid)
    servers = [subprocess.Popen(["runuser", "-u", "postgres", "--", PGBACKREST,
                                 "--config=%s" % path, "server"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for path in (repo_conf, db_conf)]
    time.sleep(1)
    env = {"base": base, "inst": inst, "repo_conf": repo_conf, "db_conf": db_conf,
           "repo_text": repo_text, "db_text": db_text}
    try:
        yield env
    finally:
        stop_pg()
        for proc in servers:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def _info(env):
    out = _run([PGBACKREST, "--config=%s" % env["repo_conf"], "--stanza=demo", "--output=json",
                "info"]).stdout
    return B.parse_info(out, "demo")


def _archived(inst, segment, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        last = inst.query("SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
        if last and last >= segment:
            return True
        time.sleep(0.5)
    return False


def test_rendered_configs_name_tls_and_the_stanza(setup):
    assert "repo1-host-type=tls" in setup["db_text"]
    assert "tls-server-auth=%s=demo" % HOST in setup["db_text"]
    assert "pg1-host-type=tls" in setup["repo_text"]
    assert "tls-server-auth=%s=demo" % HOST in setup["repo_text"]
    assert "[demo]" in setup["repo_text"] and "repo1-retention-full=2" in setup["repo_text"]


def test_point_in_time_restore_brings_dropped_rows_back(setup):
    inst = setup["inst"]
    repo = ["--config=%s" % setup["repo_conf"]]
    _run([PGBACKREST] + repo + ["--stanza=demo", "stanza-create"])
    # stanza-create is idempotent (the orchestration and every backup run it)
    _run([PGBACKREST] + repo + ["--stanza=demo", "stanza-create"])
    _run([PGBACKREST] + repo + ["--stanza=demo", "check"], timeout=120)
    backup = B.backup_argv("demo", "full", [HOST], False, config=setup["repo_conf"])
    _run(backup, timeout=600)
    summary = _info(setup)
    assert [b["type"] for b in summary["backups"]] == ["full"]
    assert summary["backups"][0]["size"] > 1000000          # a real copy of the cluster
    assert summary["status"] == "ok"

    inst.query("CREATE TABLE pitr (id int PRIMARY KEY, note text)")
    inst.query("INSERT INTO pitr SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
    time.sleep(1.1)
    noted = inst.query("SELECT clock_timestamp()")[0][0]
    time.sleep(1.1)
    inst.query("DROP TABLE pitr")
    segment = inst.query("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    assert _archived(inst, segment), "WAL %s was not archived through the TLS server" % segment

    # the runner's refusals, against the real repository
    now = datetime.datetime.now(datetime.timezone.utc)
    before = datetime.datetime.fromtimestamp(summary["backups"][0]["start"] - 60,
                                             datetime.timezone.utc)
    assert "before the earliest recoverable time" in B.refuse_target("time", before, summary, now)
    assert "in the future" in B.refuse_target("time", now + datetime.timedelta(hours=1),
                                               summary, now)
    assert B.refuse_target("time", noted, summary, now) is None
    table = B.table(_info(setup))
    assert summary["backups"][0]["label"] in table and "earliest recoverable time" in table

    # in place: stop, set the data directory aside, restore to the noted time, recover
    pg_ctl = os.path.join(pg_server.PG_BIN, "pg_ctl")
    _run([pg_ctl, "-D", inst.data, "-m", "fast", "-w", "stop"])
    aside = inst.data + ".before-restore"
    os.rename(inst.data, aside)
    rtype, value = B.parse_target(noted.isoformat())
    assert rtype == "time"
    argv = B.restore_argv("demo", rtype, value, config=setup["db_conf"])
    assert "--target-action=promote" in argv
    _run(argv, timeout=600)
    _run([pg_ctl, "-D", inst.data, "-l", inst.log, "-w", "-t", "120", "start"])
    deadline = time.time() + 120
    while inst.query("SELECT pg_is_in_recovery()")[0][0] and time.time() < deadline:
        time.sleep(0.5)
    assert inst.query("SELECT pg_is_in_recovery()")[0][0] is False
    assert inst.query("SELECT count(*), min(id), max(id) FROM pitr")[0] == (1000, 1, 1000)
    # after the restore the instance archives on a new timeline: the history goes on
    timeline = inst.query("SELECT timeline_id FROM pg_control_checkpoint()")[0][0]
    inst.query("CHECKPOINT")
    assert inst.query("SELECT timeline_id FROM pg_control_checkpoint()")[0][0] >= timeline
    segment = inst.query("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    assert int(segment[:8], 16) >= 2, segment
    assert _archived(inst, segment)
    shutil.rmtree(aside, ignore_errors=True)


def _cmd_run_all(argv, runas=None, python_shell=False, timeout=None, ignore_retcode=True,
                 cwd=None, stdin=None, env=None):
    """Salt's cmd.run_all as the module calls it (argv list, runas or its own runuser, env,
    stdin), for real."""
    assert python_shell is False
    argv = (["runuser", "-u", runas, "--"] if runas else []) + list(argv)
    done = subprocess.run(argv, input=stdin, env=dict(os.environ, **(env or {})),
                          capture_output=True, text=True, timeout=timeout or 600, cwd=cwd)
    return {"retcode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def _node_module(inst):
    """The execution module as on the database node of ``inst``, Salt's cmd.run_all real."""
    from loader import load_module
    conf = {"pg_cluster": "demo", "pg_data": inst.data, "pg_dbsu": "postgres", "pg_version": 15,
            "pg_port": inst.port}
    mod = load_module("_modules/pigsty_backup.py", opts={"id": "node-1"}, context={},
                      salt={"cmd.run_all": _cmd_run_all})
    mod._conf = lambda: conf
    return mod


def test_the_modules_restore_steps_recover_and_leave_no_recovery_settings(setup):
    """The execution module's own steps on the database node (set_aside, restore, recover),
    with Salt's cmd.run_all replaced by the real commands: a second point in time, on the
    timeline the first restore started."""
    inst = setup["inst"]
    mod = _node_module(inst)
    inst.query("CREATE TABLE pitr2 (id int PRIMARY KEY)")
    inst.query("INSERT INTO pitr2 SELECT generate_series(1, 500)")
    time.sleep(1.1)
    noted = inst.query("SELECT clock_timestamp()")[0][0]
    time.sleep(1.1)
    inst.query("DROP TABLE pitr2")
    segment = inst.query("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    assert _archived(inst, segment)

    assert mod.set_aside("t1")["result"] is False          # Postgres still runs: untouched
    assert os.path.isdir(inst.data)
    _run([os.path.join(pg_server.PG_BIN, "pg_ctl"), "-D", inst.data, "-m", "fast", "-w", "stop"])
    assert mod.set_aside("t1")["aside"] == inst.data + ".before-restore-t1"
    with pytest.raises(mod.salt.exceptions.SaltInvocationError, match="member of demo"):
        mod.restore("other", "time", noted.isoformat(), config=setup["db_conf"])
    done = mod.restore("demo", "time", noted.isoformat(), config=setup["db_conf"])
    assert done["result"] is True, done["output"]
    with open(os.path.join(inst.data, "postgresql.auto.conf")) as f:
        assert "recovery_target_time" in f.read()             # pgBackRest's, until recover()
    recovered = mod.recover(timeout=120, socket_dir=inst.host)
    assert recovered["result"] is True, recovered
    assert not os.path.exists(os.path.join(inst.data, "postmaster.pid"))    # stopped cleanly
    with open(os.path.join(inst.data, "postgresql.auto.conf")) as f:
        auto = f.read()
    assert "recovery_target" not in auto and "restore_command" not in auto, auto
    _run([os.path.join(pg_server.PG_BIN, "pg_ctl"), "-D", inst.data, "-l", inst.log, "-w",
          "start"])
    assert inst.query("SELECT pg_is_in_recovery()")[0][0] is False
    assert inst.query("SELECT count(*) FROM pitr2")[0][0] == 500
    assert inst.query("SELECT count(*) FROM pitr")[0][0] == 1000        # the first restore's
    shutil.rmtree(inst.data + ".before-restore-t1", ignore_errors=True)


def test_a_target_after_the_last_commit_fails_fast_and_archive_now_makes_it_reachable(setup):
    """The sandbox's benchmark found it: a restore to a time after the last commit made
    PostgreSQL stop with "recovery ended before configured recovery target was reached", and
    recover() polled a dead server for its whole timeout. Now it says so at once (and the data
    directory is put back); archive_now, which the runner calls on the live primary before
    it stops anything, writes a marker commit and archives it, so the same target restores."""
    inst = setup["inst"]
    mod = _node_module(inst)
    pg_ctl = os.path.join(pg_server.PG_BIN, "pg_ctl")
    inst.query("CREATE TABLE pitr3 (id int PRIMARY KEY)")
    inst.query("INSERT INTO pitr3 SELECT generate_series(1, 300)")
    time.sleep(1.1)
    noted = inst.query("SELECT clock_timestamp()")[0][0]             # no commit after it
    assert _archived(inst, inst.query("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    _run([pg_ctl, "-D", inst.data, "-m", "fast", "-w", "stop"])
    assert mod.set_aside("t2")["result"] is True
    assert mod.restore("demo", "time", noted.isoformat(), config=setup["db_conf"])["result"] is True
    started = time.monotonic()
    failed = mod.recover(timeout=300, socket_dir=inst.host)
    assert failed["result"] is False and time.monotonic() - started < 60, failed
    assert "PostgreSQL is not running" in failed["comment"], failed
    assert "recovery ended before configured recovery target was reached" in failed["comment"], failed
    assert mod.put_back("t2")["result"] is True                     # the restored one goes
    _run([pg_ctl, "-D", inst.data, "-l", inst.log, "-w", "start"])
    assert inst.query("SELECT count(*) FROM pitr3")[0][0] == 300           # as it was

    marked = mod.archive_now(timeout=60, socket_dir=inst.host)
    assert marked["result"] is True and _archived(inst, marked["segment"], timeout=1), marked
    _run([pg_ctl, "-D", inst.data, "-m", "fast", "-w", "stop"])
    assert mod.set_aside("t3")["result"] is True
    assert mod.restore("demo", "time", noted.isoformat(), config=setup["db_conf"])["result"] is True
    recovered = mod.recover(timeout=120, socket_dir=inst.host)
    assert recovered["result"] is True, recovered
    _run([pg_ctl, "-D", inst.data, "-l", inst.log, "-w", "start"])
    assert inst.query("SELECT count(*) FROM pitr3")[0][0] == 300
    shutil.rmtree(inst.data + ".before-restore-t3", ignore_errors=True)


NODE_EXPORTER = os.path.join(os.environ.get("PIGSTY_TEST_ROOT", "/var/cache/pigsty-test-root"),
                             "usr/bin/prometheus-node-exporter")


def test_backup_metrics_of_the_real_repository_served_by_node_exporter(setup):
    """The repository host's publish_metrics (pgbackrest info of every stanza, as the dbsu,
    with the repository's configuration) writes the text file; node_exporter with the backup
    exporter's flags serves it: the real repository's backups, sizes and times."""
    import urllib.request

    import pigsty_backup_metrics as M
    from loader import load_module
    from pillar_fixture import default_pillar
    if not os.access(NODE_EXPORTER, os.X_OK):
        pytest.fail("%s is missing: run tests/support/fetch_exporters.sh" % NODE_EXPORTER)
    started = time.time()
    repo = ["--config=%s" % setup["repo_conf"]]
    _run([PGBACKREST] + repo + ["--stanza=demo", "stanza-create"])
    # an incr backup (pgBackRest makes it a full one when the stanza has none yet)
    _run(B.backup_argv("demo", "incr", [HOST], False, config=setup["repo_conf"]), timeout=600)

    def run_all(argv, runas=None, **kw):     # the repository host's default config is this one
        at = argv.index("pgbackrest") + 1
        return _cmd_run_all(list(argv[:at]) + repo + list(argv[at:]), runas=runas, **kw)
    pillar = default_pillar(clusters=["pg-test"])
    pillar["pigsty"]["vars"]["pgbackrest_repo"] = {"meta": {"path": os.path.join(setup["base"], "repo")}}
    mod = load_module("_modules/pigsty_backup.py", pillar=pillar, opts={"id": "meta"}, context={},
                      salt={"cmd.run_all": run_all, "config.get": lambda k, d=None: d})
    mod.enabled_clusters = lambda: [("demo", {}, ["localhost"]), ("pg-nostanza", {}, ["node-9"])]
    metrics_dir = os.path.join(setup["base"], "metrics")
    out = mod.publish_metrics({"demo": {"schedule": D.DEFAULTS["pgbackrest_schedule"],
                                        "schedule_start": started,
                                        "attempt": {"type": "incr", "result": True,
                                                    "time": time.time()}}},
                              directory=metrics_dir)
    assert out["result"] is True and out["clusters"] == 2, out
    os.chmod(metrics_dir, 0o755)
    port = _free_port()
    proc = subprocess.Popen(M.exporter_argv(port, metrics_dir, binary=NODE_EXPORTER),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        text, deadline = None, time.time() + 20
        while text is None and time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.2)
        assert text is not None, "node_exporter did not answer"
    finally:
        proc.terminate()
        proc.wait(10)
    values = {}
    for line in text.splitlines():
        if line.startswith("pigsty_backup_") or line.startswith("node_textfile_scrape_error"):
            key, value = line.rsplit(" ", 1)
            values[key] = float(value)
    assert values["node_textfile_scrape_error"] == 0
    assert not [k for k in values if k.startswith(("node_cpu", "node_memory"))]   # textfile only
    summary = _info(setup)
    full = [b for b in summary["backups"] if b["type"] == "full"]
    assert values['pigsty_backup_stanza_ok{cls="demo"}'] == 1
    assert values['pigsty_backup_status_code{cls="demo"}'] == 0
    assert values['pigsty_backup_repo_backups{cls="demo",type="full"}'] == len(full) >= 1
    assert values['pigsty_backup_newest_time_seconds{cls="demo"}'] >= int(started)
    assert values['pigsty_backup_newest_time_seconds{cls="demo"}'] == summary["backups"][-1]["stop"]
    assert values['pigsty_backup_oldest_time_seconds{cls="demo"}'] == summary["backups"][0]["stop"]
    assert values['pigsty_backup_last_size_bytes{cls="demo",type="full"}'] > 1000000
    assert values['pigsty_backup_repo_bytes{cls="demo"}'] > 100000     # backups and WAL on disk
    assert values['pigsty_backup_max_age_seconds{cls="demo"}'] >= 25 * 3600
    assert values['pigsty_backup_last_attempt_success{cls="demo",type="incr"}'] == 1
    assert values['pigsty_backup_stanza_ok{cls="pg-nostanza"}'] == 0
    assert values['pigsty_backup_status_code{cls="pg-nostanza"}'] == -1
