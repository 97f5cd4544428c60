"""Configuration of one database node, derived from its resolved instance config.

Pure Python: every template of the pgsql role renders a structure built here, so the
logic (tuning profiles, HA timing, HBA rendering, service membership) is unit-tested and
the Jinja templates only print it.
"""
import ipaddress

import pigsty_inventory

# ------------------------------------------------------------------ HA timing
# Patroni timing per plan (Pigsty v4 pg_rto_plan) and HAProxy health-check timing.
HAPROXY_TIMING = {
    "fast": {"inter": "1s", "fastinter": "500ms", "downinter": "1s", "rise": 3, "fall": 3},
    "norm": {"inter": "3s", "fastinter": "1s", "downinter": "5s", "rise": 3, "fall": 3},
    "safe": {"inter": "3s", "fastinter": "1s", "downinter": "5s", "rise": 3, "fall": 3},
}


def rto_plan(conf):
    plan = dict(pigsty_inventory.RTO_PLANS[conf["pg_rto_plan"]])
    # Patroni's rule; the plans satisfy it, the check guards future edits.
    if plan["loop_wait"] + 2 * plan["retry_timeout"] > plan["ttl"]:
        raise ValueError("pg_rto_plan %s breaks Patroni's rule loop_wait + 2*retry_timeout <= ttl"
                         % conf["pg_rto_plan"])
    return plan


# ------------------------------------------------------------------ tuning profiles
# Parameters that must be equal on every member: Patroni takes them from the DCS only.
DCS_PARAMETERS = ("max_connections", "max_locks_per_transaction", "max_worker_processes",
                  "max_prepared_transactions", "max_wal_senders", "max_replication_slots",
                  "wal_level", "track_commit_timestamp", "wal_log_hints", "hot_standby",
                  "wal_keep_size")


def _mb(value):
    return "%dMB" % max(1, int(value))


def tuning(conf, mem_mb):
    """PostgreSQL parameters of the tuning profile (Pigsty's oltp / olap / crit / tiny),
    sized from the node's memory in MiB."""
    profile = conf["pg_conf"]
    mem_mb = max(256, int(mem_mb or 1024))
    common = {
        "wal_level": "logical", "hot_standby": "on", "wal_log_hints": "on",
        "max_wal_senders": 16, "max_replication_slots": 16, "max_worker_processes": 8,
        "max_locks_per_transaction": 128, "max_prepared_transactions": 0,
        "track_commit_timestamp": "on", "wal_keep_size": "1GB",
        "password_encryption": "scram-sha-256", "hot_standby_feedback": "on",
        "shared_preload_libraries": "pg_stat_statements", "track_io_timing": "on",
        "log_min_duration_statement": 100, "log_checkpoints": "on", "log_lock_waits": "on",
        "checkpoint_completion_target": 0.9, "idle_in_transaction_session_timeout": "10min",
    }
    profiles = {
        "oltp": {"max_connections": 500, "shared_buffers": _mb(mem_mb * 0.25),
                 "effective_cache_size": _mb(mem_mb * 0.75),
                 "maintenance_work_mem": _mb(min(2048, mem_mb * 0.125)), "work_mem": "16MB",
                 "max_wal_size": "16GB", "min_wal_size": "2GB", "synchronous_commit": "off"},
        "olap": {"max_connections": 200, "shared_buffers": _mb(mem_mb * 0.25),
                 "effective_cache_size": _mb(mem_mb * 0.75),
                 "maintenance_work_mem": _mb(min(4096, mem_mb * 0.25)), "work_mem": "64MB",
                 "max_parallel_workers_per_gather": 4, "max_wal_size": "32GB",
                 "min_wal_size": "4GB", "synchronous_commit": "off"},
        "crit": {"max_connections": 500, "shared_buffers": _mb(mem_mb * 0.25),
                 "effective_cache_size": _mb(mem_mb * 0.75),
                 "maintenance_work_mem": _mb(min(2048, mem_mb * 0.125)), "work_mem": "16MB",
                 "max_wal_size": "16GB", "min_wal_size": "2GB", "synchronous_commit": "on"},
        "tiny": {"max_connections": 100, "shared_buffers": "64MB",
                 "effective_cache_size": "256MB", "maintenance_work_mem": "64MB",
                 "work_mem": "4MB", "max_wal_size": "1GB", "min_wal_size": "256MB",
                 "synchronous_commit": "off", "max_worker_processes": 4},
    }
    params = dict(common)
    params.update(profiles[profile])
    return params


# ------------------------------------------------------------------ HBA
# Pigsty's named address classes.
INTRA = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
AUTH_METHODS = {"pwd": "scram-sha-256", "ssl": "scram-sha-256", "cert": "cert",
                "trust": "trust", "deny": "reject", "ident": "peer"}


def default_hba_rules(conf):
    """Pigsty's default rules: admin and replication paths that must never be locked out,
    then the business roles. Rules carry Pigsty's model fields."""
    dbsu, repl = conf["pg_dbsu"], conf["pg_replication_username"]
    mon, adm = conf["pg_monitor_username"], conf["pg_admin_username"]
    return [
        {"user": dbsu, "db": "all", "addr": "local", "auth": "ident", "title": "dbsu via local socket", "order": 100},
        {"user": dbsu, "db": "replication", "addr": "local", "auth": "ident", "title": "dbsu replication", "order": 150},
        {"user": dbsu, "db": "all", "addr": "world", "auth": "deny", "title": "dbsu never over the network", "order": 160},
        {"user": repl, "db": "replication", "addr": "localhost", "auth": "pwd", "title": "replication from localhost (Patroni)", "order": 200},
        {"user": repl, "db": "replication", "addr": "intra", "auth": "pwd", "title": "replication from intranet", "order": 250},
        {"user": repl, "db": "postgres", "addr": "intra", "auth": "pwd", "title": "rewind / status from intranet", "order": 300},
        {"user": repl, "db": "postgres", "addr": "localhost", "auth": "pwd", "title": "rewind from localhost", "order": 310},
        {"user": mon, "db": "all", "addr": "localhost", "auth": "pwd", "title": "monitor from localhost", "order": 400},
        {"user": mon, "db": "all", "addr": "local", "auth": "pwd", "title": "monitor via local socket", "order": 410},
        {"user": mon, "db": "all", "addr": "infra", "auth": "pwd", "title": "monitor from infra nodes", "order": 450},
        {"user": adm, "db": "all", "addr": "infra", "auth": "pwd", "title": "admin from infra nodes", "order": 500},
        {"user": adm, "db": "all", "addr": "intra", "auth": "pwd", "title": "admin from intranet", "order": 550},
        {"user": "+dbrole_readonly", "db": "all", "addr": "local", "auth": "pwd", "title": "business via local socket (pgbouncer)", "order": 600},
        {"user": "+dbrole_readonly", "db": "all", "addr": "localhost", "auth": "pwd", "title": "business from localhost", "order": 650},
        {"user": "+dbrole_readonly", "db": "all", "addr": "intra", "auth": "pwd", "title": "business from intranet", "order": 700},
        {"user": "+dbrole_offline", "db": "all", "addr": "intra", "auth": "pwd", "title": "offline (ETL) on offline instances", "order": 800, "role": "offline"},
    ]


def _addresses(addr, conf):
    if addr == "local":
        return [None]
    if addr == "localhost":
        return ["127.0.0.1/32", "::1/128"]
    if addr == "intra":
        return INTRA
    if addr == "infra":
        return ["%s/32" % ip for ip in conf.get("pigsty_meta_ips", [])]
    if addr == "world":
        return ["0.0.0.0/0", "::/0"]
    return [str(ipaddress.ip_network(addr, strict=False))]


def instance_role(conf):
    """Role for HBA filtering: Pigsty's pg_role, offline also for pg_offline_query replicas."""
    return conf["pg_role"]


IDENT_MAP = "pigsty"   # pg_ident map: root and the dbsu may log in as the dbsu


def hba_lines(rules, conf, ident_map=IDENT_MAP):
    """Render rules (Pigsty's model) to pg_hba lines, in `order`, keeping rules whose
    `role` filter matches this instance (common = everywhere). ``ident`` rules use the
    pg_ident map (pgbouncer's HBA has no maps: pass ident_map=None)."""
    role = instance_role(conf)
    lines = []
    for rule in sorted(rules, key=lambda r: (r.get("order", 1000), r.get("title", ""))):
        want = rule.get("role", "common")
        if want != "common" and want != role and not (want == "offline" and conf.get("pg_offline_query")):
            continue
        method = AUTH_METHODS[rule["auth"]]
        if rule["auth"] == "ident" and ident_map:
            method = "%s map=%s" % (method, ident_map)
        if rule.get("title"):
            lines.append("# %s" % rule["title"])
        for addr in _addresses(rule["addr"], conf):
            if addr is None:
                lines.append("local %s %s %s" % (rule["db"], rule["user"], method))
            else:
                kind = "hostssl" if rule["auth"] in ("ssl", "cert") else "host"
                lines.append("%s %s %s %s %s" % (kind, rule["db"], rule["user"], addr, method))
    return lines


# ------------------------------------------------------------------ Patroni
def patroni_config(conf, mem_mb):
    """Patroni's config.yml as a dict."""
    plan = rto_plan(conf)
    params = tuning(conf, mem_mb)
    dcs_params = {k: v for k, v in params.items() if k in DCS_PARAMETERS}
    local_params = {k: v for k, v in params.items() if k not in DCS_PARAMETERS}
    local_params.update({
        "listen_addresses": "*", "port": conf["pg_port"],
        "unix_socket_directories": "/var/run/postgresql",
        "cluster_name": conf["pg_cluster"],
    })
    sync = conf["pg_rpo"] == 0 or conf["pg_conf"] == "crit"
    auth_repl = {"username": conf["pg_replication_username"],
                 "password": conf["pg_replication_password"]}
    ip = conf["node_ip"]
    hba = hba_lines(default_hba_rules(conf) + list(conf.get("pg_hba_rules") or []), conf)
    return {
        "scope": conf["pg_cluster"],
        "namespace": conf["pg_namespace"],
        "name": conf["pg_instance"],
        "restapi": {"listen": "0.0.0.0:%d" % conf["patroni_port"],
                    "connect_address": "%s:%d" % (ip, conf["patroni_port"])},
        "etcd": {"hosts": ["%s:%d" % (h, conf["etcd_port"]) for h in conf["pigsty_meta_ips"]],
                 "protocol": "http"},
        "bootstrap": {
            "dcs": dcs_config(conf, dcs_params, plan, sync),
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": "*:%d" % conf["pg_port"],
            "connect_address": "%s:%d" % (ip, conf["pg_port"]),
            "data_dir": conf["pg_data"],
            "bin_dir": "/usr/lib/postgresql/%d/bin" % conf["pg_version"],
            "pgpass": "/var/lib/postgresql/.pgpass.patroni",
            "use_unix_socket": True,
            "use_unix_socket_repl": False,
            "authentication": {
                "superuser": {"username": conf["pg_dbsu"]},
                "replication": auth_repl,
                "rewind": dict(auth_repl),
            },
            "parameters": local_params,
            "pg_hba": hba,
            "pg_ident": ["%s root %s" % (IDENT_MAP, conf["pg_dbsu"]),
                         "%s %s %s" % (IDENT_MAP, conf["pg_dbsu"], conf["pg_dbsu"])],
            "create_replica_methods": ["basebackup"],
            "basebackup": [{"checkpoint": "fast"}, {"max-rate": "1000M"}],
        },
        "watchdog": {"mode": "off"},
        "tags": {
            "nofailover": False,
            "noloadbalance": False,
            "clonefrom": conf["pg_role"] != "offline",
            "nosync": conf["pg_role"] == "offline",
        },
    }


def dcs_config(conf, dcs_params=None, plan=None, sync=None):
    """Patroni's dynamic (DCS) configuration: timing plan, failover limits, sync mode and
    the parameters that must be equal on every member."""
    plan = plan or rto_plan(conf)
    if dcs_params is None:
        dcs_params = {k: v for k, v in tuning(conf, 1024).items() if k in DCS_PARAMETERS}
    if sync is None:
        sync = conf["pg_rpo"] == 0 or conf["pg_conf"] == "crit"
    return {
        "ttl": plan["ttl"], "loop_wait": plan["loop_wait"],
        "retry_timeout": plan["retry_timeout"],
        "maximum_lag_on_failover": conf["pg_rpo"] or 1048576,
        "failsafe_mode": conf["patroni_failsafe_mode"],
        "synchronous_mode": sync,
        "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": dcs_params},
    }


# ------------------------------------------------------------------ HAProxy services
def _selected(member, selector):
    role = member["pg_role"]
    if selector == "all":
        return True
    if selector == "primary":
        return role == "primary"
    if selector == "replica":
        return role == "replica"
    if selector == "offline":
        return role == "offline" or member.get("pg_offline_query", False)
    raise ValueError("unknown selector %r" % selector)


def haproxy_services(conf):
    """Services with their servers: every member's HAProxy serves every service."""
    services = []
    for svc in list(conf["pg_default_services"]) + list(conf.get("pg_services") or []):
        dest_port = conf["pgbouncer_port"] if svc.get("dest", "pgbouncer") == "pgbouncer" else conf["pg_port"]
        selector = svc.get("selector", "all")
        backup = svc.get("backup")
        servers = []
        for m in conf["pg_members"]:
            if _selected(m, selector):
                servers.append({"name": m["pg_instance"], "ip": m["ip"], "port": dest_port, "backup": False})
            elif backup and _selected(m, backup):
                servers.append({"name": m["pg_instance"], "ip": m["ip"], "port": dest_port, "backup": True})
        services.append({
            "name": "%s-%s" % (conf["pg_cluster"], svc["name"]),
            "port": svc["port"],
            "check": svc.get("check", "/primary"),
            "balance": svc.get("balance", "roundrobin"),
            "maxconn": svc.get("maxconn", 3000),
            "servers": servers,
        })
    return services


def pgbouncer_databases(conf):
    """Databases pgbouncer routes (to the local instance over the unix socket)."""
    dbs = [d for d in conf.get("pg_databases") or [] if d.get("pgbouncer", True)
           and d.get("state", "present") != "absent"]
    return [{"name": d["name"], "line": "host=/var/run/postgresql port=%d dbname=%s" % (
        conf["pg_port"], d["name"])} for d in dbs] + [
        {"name": "postgres", "line": "host=/var/run/postgresql port=%d dbname=postgres" % conf["pg_port"]}]


def pgbouncer_users(conf):
    """(name, password) of users that log in through pgbouncer: business users with
    pgbouncer: true, plus the admin and monitor users."""
    users = [(conf["pg_admin_username"], conf["pg_admin_password"]),
             (conf["pg_monitor_username"], conf["pg_monitor_password"])]
    for u in conf.get("pg_users") or []:
        if u.get("pgbouncer") and u.get("state", "present") != "absent" and u.get("password"):
            users.append((u["name"], u["password"]))
    return users


def pgbouncer_hba_lines(conf):
    """pgbouncer's HBA (auth_type = hba): admin console and monitor from localhost, business
    users from intranet; rules from pgb_hba_rules appended in order."""
    mon, adm, dbsu = conf["pg_monitor_username"], conf["pg_admin_username"], conf["pg_dbsu"]
    rules = [
        {"user": dbsu, "db": "pgbouncer", "addr": "local", "auth": "ident", "title": "dbsu admin console", "order": 100},
        {"user": dbsu, "db": "all", "addr": "world", "auth": "deny", "title": "dbsu never over the network", "order": 150},
        {"user": mon, "db": "pgbouncer", "addr": "localhost", "auth": "pwd", "title": "monitor console from localhost", "order": 200},
        {"user": mon, "db": "pgbouncer", "addr": "intra", "auth": "pwd", "title": "monitor console from intranet", "order": 250},
        {"user": adm, "db": "all", "addr": "intra", "auth": "pwd", "title": "admin from intranet", "order": 300},
        {"user": "all", "db": "all", "addr": "localhost", "auth": "pwd", "title": "business from localhost", "order": 400},
        {"user": "all", "db": "all", "addr": "intra", "auth": "pwd", "title": "business from intranet", "order": 500},
    ] + list(conf.get("pgb_hba_rules") or [])
    return [l for l in hba_lines(rules, conf, ident_map=None) if not l.startswith("#")]
