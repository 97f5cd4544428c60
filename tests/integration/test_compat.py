"""Issue 14 in the sandbox: Pigsty parameters that take effect on a live cluster, set as
`pillar=` overrides on pg-test and put back afterwards: pg_weight (HAProxy), the pgbouncer pool
settings (pool_mode, max_db_connections), pg_default_schemas and
pg_default_extensions (template1 and postgres), a database's parameters and baseline,
node_admin_*, node_packages and node_tune (test mode). The sandbox runs the default ports, dbsu and
namespace; the non-default ones are checked in the rendered files (tests/unit/
test_compat_params.py)."""
import json

import pytest

import patroni_rest
import pigsty_node_tune
from pg_test_cluster import DBA
from sandbox_cli import node_exec, salt_json, wait_for
from pg import query


def override(cluster_vars=None, hosts=None):
    cls = {}
    if cluster_vars:
        cls["vars"] = cluster_vars
    if hosts:
        cls["hosts"] = hosts
    return json.dumps({"pigsty": {"clusters": {"pg-test": cls}}})


def apply(sls, pillar=None):
    args = ["-G", "pg_cluster:pg-test", "state.apply", sls]
    if pillar:
        args.append("pillar=" + pillar)
    ret, code = salt_json(*args, timeout=900)
    failed = [(m, k) for m, states in ret.items() if isinstance(states, dict)
              for k, v in states.items() if isinstance(v, dict) and v.get("result") is False]
    assert code == 0 and not failed and len(ret) == 3, (code, failed, ret)
    return ret


def haproxy_cfg(node):
    return node_exec(node, "cat", "/etc/haproxy/haproxy.cfg", check=True).stdout


def pgbouncer_config(node):
    ret, _code = salt_json(node, "pgbouncer.show", "config")
    return {row["key"]: row["value"] for row in ret[node]}


@pytest.fixture(scope="module")
def compat(sandbox):
    yield
    apply("pgsql.service,pgsql.pgbouncer")          # back to the committed pillar
    for db in ("template1", "postgres"):
        node_exec("node-1", "runuser", "-u", "postgres", "--", "psql", "-X", "-d", db, "-c",
                  "DROP EXTENSION IF EXISTS pgstattuple; DROP SCHEMA IF EXISTS pigsty_compat")


def test_pg_weight_of_a_member_reaches_every_haproxy(compat):
    apply("pgsql.service", override(hosts={"10.10.10.12": {"pg_weight": 7}}))
    for node in ("node-1", "node-2", "node-3"):
        lines = [l for l in haproxy_cfg(node).splitlines() if l.strip().startswith("server pg-test-2 ")]
        assert lines and all(l.endswith(" weight 7") for l in lines), (node, lines)
    # and back: no weight of its own (default-server's 100)
    apply("pgsql.service")
    assert " weight 7" not in haproxy_cfg("node-2")


def test_pgbouncer_pool_settings_take_effect(compat):
    # (a user's pool_mode / pool_connlimit would need pg_users on the command line, with its
    # password: checked against the real pgbouncer in tests/functional/test_compat_config.py)
    apply("pgsql.pgbouncer", override({"pgbouncer_poolmode": "statement",
                                       "pgbouncer_max_db_conn": 40}))
    for node in ("node-1", "node-2", "node-3"):
        config = wait_for(lambda: pgbouncer_config(node), 30)
        assert config["pool_mode"] == "statement" and config["max_db_connections"] == "40", node
    apply("pgsql.pgbouncer")
    config = pgbouncer_config("node-1")
    assert config["pool_mode"] == "transaction" and config["max_db_connections"] == "0"


def test_default_schemas_and_extensions_are_created_in_template1_and_postgres(compat):
    apply("pgsql.user", override({"pg_default_schemas": ["pigsty_compat"],
                                  "pg_default_extensions": [{"name": "pgstattuple",
                                                             "schema": "pigsty_compat"}]}))
    for db in ("template1", "postgres"):
        rows = query("10.10.10.11", 5436, *DBA,
                     "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON "
                     "n.oid = e.extnamespace WHERE e.extname = 'pgstattuple'", dbname=db)
        assert rows == [("pigsty_compat",)], (db, rows)


# ------------------------------------------------------------------ node_crontab, pg_listen, watchdog
CRON_LINE = "*/10 * * * * root /bin/true pigsty-compat-cron"


def cluster_override(cluster, cluster_vars):
    return json.dumps({"pigsty": {"clusters": {cluster: {"vars": cluster_vars}}}})


def apply_on(target, sls, pillar=None, expect_fail=False):
    args = [target, "state.apply", sls] + (["pillar=" + pillar] if pillar else [])
    ret, code = salt_json(*args, timeout=900)
    failed = [(m, k, v.get("comment")) for m, states in ret.items() if isinstance(states, dict)
              for k, v in states.items() if isinstance(v, dict) and v.get("result") is False]
    if not expect_fail:
        assert code == 0 and not failed and ret, (code, failed, ret)
    return ret, failed


def test_node_crontab_appends_its_block_and_removes_it(compat):
    """node_crontab on pg-test (append mode): cron is installed from meta's repository (which
    carries it once a cluster sets node_crontab: infra.repo with the same pillar), the line
    is in each member's /etc/crontab between the markers, Debian's own lines are kept; with
    no lines the block goes."""
    pillar = cluster_override("pg-test", {"node_crontab": [CRON_LINE], "node_crontab_overwrite": False})
    try:
        apply_on("meta", "infra.repo", pillar)
        apply("node.crontab", pillar)
        for node in ("node-1", "node-2", "node-3"):
            text = node_exec(node, "cat", "/etc/crontab", check=True).stdout
            assert "# BEGIN node_crontab" in text and CRON_LINE in text, (node, text)
            assert "run-parts --report /etc/cron.daily" in text, (node, text)   # Debian's, kept
            assert node_exec(node, "systemctl", "is-active", "cron").stdout.strip() == "active", node
        again, _failed = apply_on("node-1", "node.crontab", pillar)
        assert all(not v.get("changes") for v in again["node-1"].values()), again
    finally:
        # the repository as the sandbox's pillar has it (without cron): later tests check
        # that a highstate changes nothing
        apply("node.crontab")
        apply_on("meta", "infra.repo")
    for node in ("node-1", "node-2", "node-3"):
        text = node_exec(node, "cat", "/etc/crontab", check=True).stdout
        assert "node_crontab" not in text and CRON_LINE not in text, (node, text)
        assert "/etc/cron.daily" in text, (node, text)


def _listening(node, port=5432):
    out = node_exec(node, "ss", "-Hltn", "sport", "= :%d" % port, check=True).stdout
    return sorted(line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip())


def _ready(host):
    return node_exec("meta", "pg_isready", "-q", "-h", host, "-p", "5432").returncode == 0


def _restart_pg_meta():
    # Patroni reloads its configuration on its next loop after the state's reload: restart
    # only once it reports the new listen_addresses as pending (else the restart is too early)
    wait_for(lambda: patroni_rest.get("10.10.10.10", "/patroni", timeout=3).get("pending_restart"), 60)
    ret, _code = salt_json("meta", "patroni.restart")
    assert ret.get("meta") not in (None, False), ret
    wait_for(lambda: _ready("/var/run/postgresql") and _ready("10.10.10.10"), 120)


def test_pg_listen_binds_the_named_addresses_only(compat):
    """pg_listen '${ip},${lo}' on pg-meta (nothing in the suite connects to pg-meta's VIP on
    5432; pg-test's VIP:5432 is used by test_pgsql and test_failover, so pg-test keeps '*'):
    after Patroni's restart PostgreSQL listens on 10.10.10.10 and 127.0.0.1 only, answers
    there, and the default ('*') comes back afterwards."""
    pillar = cluster_override("pg-meta", {"pg_listen": "${ip},${lo}"})
    try:
        apply_on("meta", "pgsql.patroni", pillar)
        _restart_pg_meta()
        assert _listening("meta") == ["10.10.10.10", "127.0.0.1"]
        assert _ready("127.0.0.1") and _ready("10.10.10.10")
        local = node_exec("meta", "runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-h",
                          "/var/run/postgresql", "-c", "SHOW listen_addresses", check=True)
        assert local.stdout.strip() == "10.10.10.10,127.0.0.1"
    finally:
        apply_on("meta", "pgsql.patroni")
        _restart_pg_meta()
    assert "0.0.0.0" in _listening("meta")          # '*': every address again


def test_watchdog_required_is_refused_before_anything_changes(compat):
    """patroni_watchdog_mode required on a node without /dev/watchdog (a systemd-nspawn
    container has none, and cannot load softdog): pgsql.watchdog fails with the reason and
    Patroni's configuration is untouched."""
    before = node_exec("node-1", "sha256sum", "/etc/patroni/config.yml", check=True).stdout
    ret, failed = apply_on("node-1", "pgsql", cluster_override("pg-test", {"patroni_watchdog_mode": "required"}),
                           expect_fail=True)
    assert any("no watchdog device /dev/watchdog" in (c or "") for _m, _k, c in failed), ret
    assert node_exec("node-1", "sha256sum", "/etc/patroni/config.yml", check=True).stdout == before
    assert node_exec("node-1", "test", "-e",
                     "/etc/systemd/system/patroni.service.d/pigsty-watchdog.conf").returncode != 0


def test_watchdog_automatic_runs_without_a_device(compat):
    """automatic: Patroni's config says so, Patroni carries on without a device (it logs it),
    the cluster keeps its leader; then back to off."""
    pillar = cluster_override("pg-test", {"patroni_watchdog_mode": "automatic"})
    try:
        apply("pgsql.watchdog,pgsql.patroni", pillar)
        text = node_exec("node-1", "cat", "/etc/patroni/config.yml", check=True).stdout
        assert "mode: automatic" in text and "device: /dev/watchdog" in text
        wait_for(lambda: salt_json("node-1", "patroni.leader")[0].get("node-1"), 60)
    finally:
        apply("pgsql.watchdog,pgsql.patroni")
    text = node_exec("node-1", "cat", "/etc/patroni/config.yml", check=True).stdout
    assert "device: /dev/watchdog" not in text


# ------------------------------------------------------------------ database parameters and baseline
COMPAT_DB = "pigsty_compat_db"


def _db_override(**fields):
    """pg-test's databases as committed plus COMPAT_DB with ``fields``."""
    return cluster_override("pg-test", {"pg_databases": [
        {"name": "test", "owner": "test"}, dict(fields, name=COMPAT_DB, owner="test")]})


def _db_state(ret):
    return {m: v for m, states in ret.items() for k, v in states.items()
            if k.endswith("_|-pg-database-%s_|-%s_|-database_present" % (COMPAT_DB, COMPAT_DB))}


def test_a_database_gets_its_parameters_and_its_baseline_once(compat):
    """pg_databases with parameters and baseline: example.sql (salt/pgsql/files/baseline/) on
    pg-test: the baseline ran once in the new database, as the dbsu; the settings are the
    database's; a second apply changes nothing; a removed setting is reset."""
    try:
        ret = apply("pgsql.user", _db_override(parameters={"work_mem": "12MB"}, baseline="example.sql"))
        created = [v for v in _db_state(ret).values() if v.get("changes")]
        assert len(created) == 1 and created[0]["changes"]["baseline"] == "example.sql ran", ret
        rows = query("10.10.10.11", 5436, *DBA, "SELECT key, value FROM baseline_info ORDER BY key",
                     dbname=COMPAT_DB)
        assert dict(rows)["baseline"] == "example.sql" and dict(rows)["database"] == COMPAT_DB
        assert query("10.10.10.11", 5436, *DBA, "SHOW work_mem", dbname=COMPAT_DB) == [("12MB",)]
        owner = query("10.10.10.11", 5436, *DBA, "SELECT tableowner FROM pg_tables WHERE "
                      "tablename = 'baseline_info'", dbname=COMPAT_DB)
        assert owner == [("postgres",)]                 # run by the dbsu
        again = apply("pgsql.user", _db_override(parameters={"work_mem": "12MB"}, baseline="example.sql"))
        assert all(not v.get("changes") for v in _db_state(again).values()), again
        apply("pgsql.user", _db_override(parameters={}, baseline="example.sql"))
        setting = query("10.10.10.11", 5436, *DBA, "SELECT count(*) FROM pg_db_role_setting s JOIN "
                        "pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s AND s.setrole = 0",
                        args=(COMPAT_DB,))
        assert setting == [(0,)]
        assert len(query("10.10.10.11", 5436, *DBA, "SELECT * FROM baseline_info",
                         dbname=COMPAT_DB)) == 3           # not run again
    finally:
        apply("pgsql.user", _db_override(state="absent"))


def test_a_missing_baseline_fails_before_the_database_is_created(compat):
    """The file is fetched before CREATE DATABASE: the primary's pgsql.user fails naming its
    salt:// address, and the database does not exist."""
    ret, _code = salt_json("-G", "pg_cluster:pg-test", "state.apply", "pgsql.user",
                           "pillar=" + _db_override(baseline="no-such-file.sql"), timeout=900)
    comments = [v.get("comment") or "" for states in ret.values() if isinstance(states, dict)
                for v in states.values() if isinstance(v, dict) and v.get("result") is False]
    assert any("salt://pgsql/files/baseline/no-such-file.sql is not on the master's file server"
               in c for c in comments), ret
    rows = query("10.10.10.11", 5436, *DBA, "SELECT count(*) FROM pg_database WHERE datname = %s",
                 args=(COMPAT_DB,))
    assert rows == [(0,)]


# ------------------------------------------------------------------ node_admin_*, node_packages, node_tune
ADMIN_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2Bq3dI0pE2yQ8CkOY3a1yH1t8pQ2w3B0aY6m1Y5x8 "
             "pigsty-compat@test")


def test_node_admin_user_with_sudo_and_keys(compat):
    """node_admin_enabled on pg-test: dba (uid/gid 88) on each member, passwordless sudo from
    /etc/sudoers.d/pigsty-admin, the key as its authorized_keys; a second apply changes
    nothing; turned off, the sudo rule goes."""
    pillar = cluster_override("pg-test", {"node_admin_enabled": True, "node_admin_pk_list": [ADMIN_KEY]})
    try:
        apply_on("meta", "infra.repo", pillar)          # the local repository carries sudo
        apply("node.admin", pillar)
        for node in ("node-1", "node-2", "node-3"):
            ids = node_exec(node, "id", "dba", check=True).stdout
            assert "uid=88(dba) gid=88(dba)" in ids, (node, ids)
            assert node_exec(node, "runuser", "-u", "dba", "--", "sudo", "-n", "true").returncode == 0, node
            keys = node_exec(node, "cat", "/home/dba/.ssh/authorized_keys", check=True).stdout
            assert ADMIN_KEY in keys, (node, keys)
            mode = node_exec(node, "stat", "-c", "%a %U", "/etc/sudoers.d/pigsty-admin", check=True).stdout
            assert mode.strip() == "440 root", (node, mode)
        again, _failed = apply_on("node-1", "node.admin", pillar)
        assert all(not v.get("changes") for v in again["node-1"].values()), again
    finally:
        apply("node.admin")
        apply_on("meta", "infra.repo")
    for node in ("node-1", "node-2", "node-3"):
        assert node_exec(node, "test", "-e", "/etc/sudoers.d/pigsty-admin").returncode != 0, node
        assert node_exec(node, "runuser", "-u", "dba", "--", "sudo", "-n", "true").returncode != 0, node
        node_exec(node, "userdel", "-r", "dba")         # the account stays by design: clean up


def test_node_packages_are_installed_on_the_members(compat):
    pillar = cluster_override("pg-test", {"node_packages": ["tree"]})
    try:
        apply_on("meta", "infra.repo", pillar)
        apply("node.packages", pillar)
        for node in ("node-1", "node-2", "node-3"):
            assert node_exec(node, "dpkg-query", "-W", "-f", "${Status}", "tree").stdout == \
                "install ok installed", node
    finally:
        for node in ("node-1", "node-2", "node-3"):
            node_exec(node, "apt-get", "purge", "-y", "-q", "tree")
        apply_on("meta", "infra.repo")


def test_node_tune_plans_its_kernel_parameters(compat):
    """node_tune oltp, in test mode (a systemd-nspawn container cannot write vm.*): node.tune
    would set the profile's values, node_sysctl_params over them; nothing is written."""
    before = node_exec("node-1", "cat", "/etc/sysctl.d/90-pigsty.conf").stdout
    pillar = cluster_override("pg-test", {"node_tune": "oltp", "node_sysctl_params": {"vm.swappiness": 5}})
    ret, code = salt_json("node-1", "state.apply", "node.tune", "test=True", "pillar=" + pillar)
    states = ret["node-1"]
    planned = {v["name"]: v for v in states.values() if "sysctl" in str(v.get("__id__", ""))}
    assert code == 0 and set(planned) == set(pigsty_node_tune.PROFILES["oltp"]), ret
    assert all(v["result"] is None for v in planned.values()), planned
    # sysctl.present says the value it would write (unless the file is missing yet)
    for key, value in (("vm.swappiness", "5"), ("vm.dirty_ratio", "10")):
        comment = planned[key]["comment"]
        assert "changed to %s" % value in comment or "might be changed" in comment, comment
    assert node_exec("node-1", "cat", "/etc/sysctl.d/90-pigsty.conf").stdout == before
