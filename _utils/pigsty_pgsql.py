"""Configuration of one database node, derived from its resolved instance config.

Pure Python: every template of the pgsql role renders a structure built here, so the
logic (tuning profiles, HA timing, HBA rendering, service membership) is unit-tested and
the Jinja templates only print it.
"""
import re

import pigsty_backup
import pigsty_clone
import pigsty_defaults as D
import pigsty_haproxy
import pigsty_hba
import pigsty_inventory
import pigsty_listen
import pigsty_model
import pigsty_pki
import pigsty_standby
import pigsty_patroni_rest
import pigsty_syntax

# ------------------------------------------------------------------ HA timing
# Patroni timing per plan (Pigsty v4 pg_rto_plan) and HAProxy health-check timing.
# Pigsty's options, except for the services that check for the leader (/primary): a
# server that is DOWN there is re-checked every `leader_downinter` and is UP after
# `leader_rise` successes. Patroni answers 200 on /primary only while it holds the leader
# key and PostgreSQL is out of recovery, so one success is proof enough, and the new
# primary takes writes within about half that interval of its promotion. Falling stays as
# slow as Pigsty's (`fall`), and the event path marks a dead primary down at once anyway.
HAPROXY_TIMING = {
    "fast": {"inter": "1s", "fastinter": "500ms", "downinter": "1s", "rise": 3, "fall": 3,
             "leader_downinter": "200ms", "leader_rise": 1},
    "norm": {"inter": "3s", "fastinter": "1s", "downinter": "5s", "rise": 3, "fall": 3,
             "leader_downinter": "200ms", "leader_rise": 1},
    "safe": {"inter": "3s", "fastinter": "1s", "downinter": "5s", "rise": 3, "fall": 3,
             "leader_downinter": "500ms", "leader_rise": 1},
}
LEADER_CHECKS = pigsty_haproxy.LEADER_CHECKS
# Patroni 3 answers 200 on these as soon as it holds the leader key, while PostgreSQL may
# still be in recovery (promotion in progress: seen to take 5 s after a switchover). The
# answer's body carries the role from pg_is_in_recovery(), so HAProxy also checks that it
# says master (Patroni 3) or primary (Patroni 4): writes never go to a read-only server.
WRITABLE_CHECKS = tuple(c for c in LEADER_CHECKS if c != "/leader")   # /leader: standby leaders too


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
        "shared_preload_libraries": ", ".join(pigsty_syntax.preload_libraries(conf["pg_libs"])),
        "track_io_timing": "on",
        "log_min_duration_statement": 100, "log_checkpoints": "on", "log_lock_waits": "on",
        "checkpoint_completion_target": 0.9, "idle_in_transaction_session_timeout": "10min",
        # A replica whose walreceiver just ended (the old primary shut down for a switchover)
        # and that is then told to promote can sleep out the rest of this interval before it
        # promotes (PostgreSQL 15's WaitForWALToBecomeAvailable: the promote request resets the
        # latch the retry sleep waits on). At the default 5 s a bench switchover waited 5 s.
        "wal_retrieve_retry_interval": "500ms",
    }
    # No profile turns synchronous_commit off: with it off, a plain crash of the primary
    # loses commits that were already acknowledged (up to 3 x wal_writer_delay), whatever the
    # replication. With pg_rpo: 0 (or crit) Patroni's synchronous mode makes each commit also
    # wait for the synchronous standby's flush, so a failover loses no acknowledged commit.
    profiles = {
        "oltp": {"max_connections": 500, "shared_buffers": _mb(mem_mb * 0.25),
                 "effective_cache_size": _mb(mem_mb * 0.75),
                 "maintenance_work_mem": _mb(min(2048, mem_mb * 0.125)), "work_mem": "16MB",
                 "max_wal_size": "16GB", "min_wal_size": "2GB", "synchronous_commit": "on"},
        "olap": {"max_connections": 200, "shared_buffers": _mb(mem_mb * 0.25),
                 "effective_cache_size": _mb(mem_mb * 0.75),
                 "maintenance_work_mem": _mb(min(4096, mem_mb * 0.25)), "work_mem": "64MB",
                 "max_parallel_workers_per_gather": 4, "max_wal_size": "32GB",
                 "min_wal_size": "4GB", "synchronous_commit": "on"},
        "crit": {"max_connections": 500, "shared_buffers": _mb(mem_mb * 0.25),
                 "effective_cache_size": _mb(mem_mb * 0.75),
                 "maintenance_work_mem": _mb(min(2048, mem_mb * 0.125)), "work_mem": "16MB",
                 "max_wal_size": "16GB", "min_wal_size": "2GB", "synchronous_commit": "on"},
        "tiny": {"max_connections": 100, "shared_buffers": "64MB",
                 "effective_cache_size": "256MB", "maintenance_work_mem": "64MB",
                 "work_mem": "4MB", "max_wal_size": "1GB", "min_wal_size": "256MB",
                 "synchronous_commit": "on", "max_worker_processes": 4},
    }
    params = dict(common)
    params.update(profiles[profile])
    return params


# ------------------------------------------------------------------ Patroni
def patroni_config(conf, mem_mb):
    """Patroni's config.yml as a dict."""
    plan = rto_plan(conf)
    params = tuning(conf, mem_mb)
    dcs_params = {k: v for k, v in params.items() if k in DCS_PARAMETERS}
    local_params = {k: v for k, v in params.items() if k not in DCS_PARAMETERS}
    local_params.update({
        "listen_addresses": pigsty_listen.listen_addresses(conf), "port": conf["pg_port"],
        "unix_socket_directories": "/var/run/postgresql",
        "cluster_name": conf["pg_cluster"],
    })
    # WAL archiving to the backup repository: a local parameter of every member, so whoever
    # is primary archives (after a failover the new primary goes on from its timeline)
    local_params.update(pigsty_backup.patroni_parameters(conf))
    local_params.update(ssl_parameters())
    sync = pigsty_model.synchronous(conf)
    auth_repl = {"username": conf["pg_replication_username"],
                 "password": conf["pg_replication_password"]}
    ip = conf["node_ip"]
    hba = pigsty_hba.postgres_lines(conf)
    return {
        "scope": conf["pg_cluster"],
        "namespace": conf["pg_namespace"],
        "name": conf["pg_instance"],
        "restapi": pigsty_patroni_rest.restapi_config(conf),   # HTTPS, login, allow-list
        "ctl": pigsty_patroni_rest.ctl_config(),
        conf["dcs_type"]: dcs_client(conf),
        "bootstrap": bootstrap_config(conf, dcs_config(conf, dcs_params, plan, sync)),
        "postgresql": {
            # pg_listen; Patroni itself connects over the unix socket (use_unix_socket)
            "listen": "%s:%d" % (pigsty_listen.listen_addresses(conf), conf["pg_port"]),
            "connect_address": "%s:%d" % (ip, conf["pg_port"]),
            "data_dir": conf["pg_data"],
            "bin_dir": "/usr/lib/postgresql/%d/bin" % conf["pg_version"],
            "pgpass": "%s/.pgpass.patroni" % dbsu_home(conf),
            "use_unix_socket": True,
            "use_unix_socket_repl": False,
            "authentication": {
                "superuser": {"username": conf["pg_dbsu"]},
                "replication": auth_repl,
                "rewind": dict(auth_repl),
            },
            "parameters": local_params,
            "pg_hba": hba,
            "pg_ident": pigsty_hba.ident_lines(conf),
            "create_replica_methods": ["basebackup"],
            "basebackup": [{"checkpoint": "fast"}, {"max-rate": "1000M"}],
        },
        "watchdog": watchdog_config(conf),
        "tags": {
            "nofailover": False,
            "noloadbalance": False,
            "clonefrom": conf["pg_role"] != "offline",
            "nosync": not sync_candidate(conf),
        },
    }


def bootstrap_config(conf, dcs):
    """Patroni's bootstrap section: initdb's options, or a clone's restore (pg_pitr)."""
    out = {"dcs": dcs, "initdb": initdb_options(conf)}
    if conf.get("pg_clone"):
        method, section = pigsty_clone.patroni_bootstrap(conf["pg_clone"], conf)
        out.update({"method": method, method: section})
    return out


def sync_candidate(conf):
    """Whether Patroni may make this member the synchronous standby: not an offline member;
    and when the cluster names members with pg_role: standby (Pigsty's synchronous standby),
    only those."""
    if conf["pg_role"] == "offline":
        return False
    if any(m["pg_role"] == "standby" for m in conf["pg_members"]):
        return conf["pg_role"] in ("standby", "primary")
    return True


WATCHDOG_DEVICE = "/dev/watchdog"


def watchdog_mode(conf):
    """patroni_watchdog_mode as Patroni spells it (YAML's unquoted off is false)."""
    mode = conf.get("patroni_watchdog_mode", "off")
    return "off" if mode in (False, None, "off") else mode


def watchdog_config(conf):
    """Patroni's watchdog section (Pigsty's: mode and /dev/watchdog)."""
    mode = watchdog_mode(conf)
    if mode == "off":
        return {"mode": "off"}
    return {"mode": mode, "device": WATCHDOG_DEVICE}


def initdb_options(conf):
    """Patroni's bootstrap.initdb: Pigsty's pg_encoding, pg_locale, pg_lc_collate,
    pg_lc_ctype and pg_checksum (they take effect when the cluster is created)."""
    options = [{"encoding": pigsty_syntax.encoding_name(conf["pg_encoding"])},
               {"locale": conf["pg_locale"]}]
    for key, option in (("pg_lc_collate", "lc-collate"), ("pg_lc_ctype", "lc-ctype")):
        if conf[key] != conf["pg_locale"]:
            options.append({option: conf[key]})
    if conf["pg_checksum"]:
        options.append("data-checksums")
    return options


def locales(conf):
    """The locales initdb needs that a Debian node does not have built in (pgsql.install
    generates them)."""
    wanted = {conf[k] for k in ("pg_locale", "pg_lc_collate", "pg_lc_ctype")}
    # Debian's list of locales (/usr/share/i18n/SUPPORTED) spells the codeset UTF-8; glibc
    # and initdb accept en_US.UTF8 or en_US.utf8 for it once it is generated
    return sorted({re.sub(r"\.utf-?8", ".UTF-8", l, flags=re.I) for l in wanted
                   if l not in pigsty_syntax.BUILTIN_LOCALES})


def dbsu_home(conf):
    """The dbsu's home: Debian's for its own postgres user, else Pigsty's pg_dbsu_home
    (pgsql.install creates that user)."""
    return D.DEBIAN_DBSU_HOME if conf["pg_dbsu"] == D.DEBIAN_DBSU else D.DBSU_HOME


def ssl_parameters():
    """PostgreSQL's SSL settings: the node certificate and key of node.pki (the key is 0640
    root:ssl-cert, which PostgreSQL accepts from root; Debian's postgres is in ssl-cert), and
    the CA for client certificates (HBA ``cert`` rules). Whether a session must use SSL is
    the HBA's call (pigsty_hba: ``ssl`` / ``cert`` rules, pg_ssl_required)."""
    pki = pigsty_pki.paths()
    return {"ssl": "on", "ssl_cert_file": pki["node_crt"], "ssl_key_file": pki["node_key"],
            "ssl_ca_file": pki["ca_crt"], "ssl_min_protocol_version": "TLSv1.2"}


def dcs_endpoints(conf):
    """HOST:PORT of the DCS: every etcd member (dcs_servers, or the meta nodes), or the
    user's Consul."""
    if conf["dcs_type"] == "consul":
        return list(conf["consul_hosts"])
    return ["%s:%d" % (h, conf["etcd_port"]) for h in conf.get("pigsty_dcs_ips", conf["pigsty_meta_ips"])]


def dcs_client(conf):
    """Patroni's DCS section: `etcd:` (the v2 API, which vip-manager 1.0.2 reads) or
    `consul:` (Patroni's Consul client, python3-consul). etcd: over https, verified against
    the Pigsty CA, with the node certificate. etcd takes a request without a password as the
    user named like the certificate's CN: this node's user, which holds its cluster's role
    when etcd_auth is on (_utils/pigsty_etcd.py: no password, because etcd's v2 API checks a
    password with bcrypt on every request)."""
    if conf["dcs_type"] == "consul":
        return {"host": dcs_endpoints(conf)[0], "scheme": "http", "register_service": False}
    pki = pigsty_pki.paths()
    return {"hosts": dcs_endpoints(conf), "protocol": "https", "cacert": pki["ca_crt"],
            "cert": pki["node_crt"], "key": pki["node_key"]}


def cluster_key(conf):
    """Patroni's directory of this cluster in the DCS (pg_namespace/pg_cluster)."""
    key = "%s/%s" % (conf["pg_namespace"].rstrip("/"), conf["pg_cluster"])
    if conf["dcs_type"] == "consul":
        key = key.lstrip("/")          # Consul's KV keys have no leading slash
    return key


def leader_key(conf):
    """Patroni's leader key of this cluster in the DCS."""
    return cluster_key(conf) + "/leader"


def vip_manager_config(conf):
    """vip-manager's settings: the VIP follows the leader key of this cluster."""
    vip = pigsty_model.parse_vip(conf["pg_vip_address"])
    key = leader_key(conf)
    out = {
        "ip": vip.ip, "netmask": vip.prefix, "interface": conf["pg_vip_interface"],
        "trigger-key": key, "trigger-value": conf["pg_instance"],
        "dcs-type": conf["dcs_type"],
        "dcs-endpoints": ",".join("http://%s" % e for e in dcs_endpoints(conf)),
        "interval": conf["vip_manager_interval_ms"],
    }
    if conf["dcs_type"] == "etcd":
        # vip-manager 1.0.2 (its etcd v2 client): https with the CA and the node certificate
        # (as this node's etcd user, like Patroni: dcs_client)
        pki = pigsty_pki.paths()
        out["dcs-endpoints"] = ",".join("https://%s" % e for e in dcs_endpoints(conf))
        out.update({"etcd-ca-file": pki["ca_crt"], "etcd-cert-file": pki["node_crt"],
                    "etcd-key-file": pki["node_key"]})
    return out


def dcs_config(conf, dcs_params=None, plan=None, sync=None):
    """Patroni's dynamic (DCS) configuration: timing plan, failover limits, sync mode and
    the parameters that must be equal on every member."""
    plan = plan or rto_plan(conf)
    if dcs_params is None:
        dcs_params = {k: v for k, v in tuning(conf, 1024).items() if k in DCS_PARAMETERS}
    if sync is None:
        sync = pigsty_model.synchronous(conf)
    config = {
        "ttl": plan["ttl"], "loop_wait": plan["loop_wait"],
        "retry_timeout": plan["retry_timeout"],
        "maximum_lag_on_failover": conf["pg_rpo"] or 1048576,
        "failsafe_mode": conf["patroni_failsafe_mode"],
        "synchronous_mode": sync,
        # Not strict: with no synchronous standby left, the primary goes on accepting writes
        # (asynchronously) instead of blocking them; Patroni then promotes nobody but a
        # synchronous standby, so an automatic failover still loses no acknowledged commit.
        "synchronous_mode_strict": False,
        "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": dcs_params},
    }
    # a standby cluster (pg_upstream): its leader streams from the upstream (pigsty_standby)
    standby = pigsty_standby.patroni_standby_cluster(conf.get("pg_standby"))
    if standby:
        config["standby_cluster"] = standby
    return config


# ------------------------------------------------------------------ HAProxy services
def _selected(member, selector):
    role = member["pg_role"]
    if selector == "all":
        return True
    if selector == "primary":
        return role == "primary"
    if selector == "replica":
        return role == "replica"
    if selector == "standby":
        return role == "standby"
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
        track = svc.get("backup_track")
        servers = []
        for m in conf["pg_members"]:
            weight = m.get("pg_weight", conf["pg_weight"])
            if _selected(m, selector):
                servers.append({"name": m["pg_instance"], "ip": m["ip"], "port": dest_port,
                                "backup": False, "weight": weight})
            elif backup and not track and _selected(m, backup):
                servers.append({"name": m["pg_instance"], "ip": m["ip"], "port": dest_port,
                                "backup": True, "weight": weight})
        if track:
            # a backup copy of each member that follows its server in the ``track`` service
            # (its state there, not this service's check): e.g. the live primary serves reads
            # only while no replica is up
            servers += [{"name": "%s-%s" % (m["pg_instance"], track), "ip": m["ip"], "port": dest_port,
                         "backup": True, "track": "%s-%s/%s" % (conf["pg_cluster"], track, m["pg_instance"]),
                         "weight": m.get("pg_weight", conf["pg_weight"])}
                        for m in conf["pg_members"] if _selected(m, backup)]
        check = svc.get("check", "/primary")
        if conf.get("pg_standby") and check.split("?")[0] in WRITABLE_CHECKS:
            # a standby cluster has no primary: its leader services go to its standby leader
            # (read-only), and keep going to it once promoted (Patroni's /leader: either)
            check = "/leader" + check[len(check.split("?")[0]):]
        services.append({
            "name": "%s-%s" % (conf["pg_cluster"], svc["name"]),
            "port": svc["port"],
            "check": check,
            "balance": svc.get("balance", "roundrobin"),
            "maxconn": svc.get("maxconn", 3000),
            "servers": servers,
            "timing": check_timing(conf["pg_rto_plan"], check),
            "track": _tracked(services, check, servers),
            "expect_writable": check.split("?")[0] in WRITABLE_CHECKS,
        })
    return services


def check_timing(plan, check):
    """HAProxy check timing of a service: the plan's, faster to rise for leader checks."""
    t = HAPROXY_TIMING[plan]
    out = {k: t[k] for k in ("inter", "fastinter", "downinter", "rise", "fall")}
    out["slowstart"] = "30s"
    if check.split("?")[0] in LEADER_CHECKS:
        # no slowstart: a leader service has one server UP at a time, and HAProxy's warm-up
        # starts a just-UP server at weight 0 until its first warm-up tick (up to ~1 s), so
        # new writes would wait for that tick after every promotion
        out.update(downinter=t["leader_downinter"], rise=t["leader_rise"], slowstart=None)
    return out


def _tracked(earlier, check, servers):
    """The earlier service whose checks this one can share (HAProxy `track`): same check,
    and every server of this one is checked there. One check per server instead of one per
    service keeps the fast leader checks cheap for Patroni."""
    if any(s.get("track") for s in servers):
        return None
    names = {s["name"] for s in servers}
    for svc in earlier:
        checked = {s["name"] for s in svc["servers"] if not s.get("track")}
        if svc["check"] == check and not svc["track"] and names <= checked:
            return svc["name"]
    return None


def pgbouncer_databases(conf, forward_to=None):
    """Databases pgbouncer routes: to the local instance over the unix socket; or, while
    this node hands its clients over after a switchover, to the primary at ``forward_to``."""
    host = forward_to or "/var/run/postgresql"
    dbs = [d["name"] for d in conf.get("pg_databases") or [] if d.get("pgbouncer", True)
           and d.get("state", "present") != "absent"]
    return [{"name": name, "line": "host=%s port=%d dbname=%s" % (host, conf["pg_port"], name)}
            for name in dbs + ["postgres"]]


def pgbouncer_database_file(databases):
    """The text of pgbouncer's database.txt (the state and the hand-off write the same)."""
    return ";; Managed by Salt (Pigsty on Salt): pgbouncer databases from pillar pg_databases\n" + "".join(
        "%s = %s\n" % (d["name"], d["line"]) for d in databases)


def pgbouncer_user_options(conf):
    """pgbouncer's [users] lines: Pigsty's per-user pool_mode and pool_connlimit
    (max_user_connections; -1: no limit) of the users that log in through pgbouncer."""
    lines = []
    for u in conf.get("pg_users") or []:
        if not u.get("pgbouncer") or u.get("state", "present") == "absent":
            continue
        options = []
        if u.get("pool_mode"):
            options.append("pool_mode=%s" % u["pool_mode"])
        if u.get("pool_connlimit", -1) not in (None, -1):
            options.append("max_user_connections=%d" % u["pool_connlimit"])
        if options:
            lines.append("%s = %s" % (u["name"], " ".join(options)))
    return lines


def pgbouncer_users(conf):
    """(name, password) of users that log in through pgbouncer: business users with
    pgbouncer: true, plus the admin and monitor users."""
    users = [(conf["pg_admin_username"], conf["pg_admin_password"]),
             (conf["pg_monitor_username"], conf["pg_monitor_password"])]
    for u in conf.get("pg_users") or []:
        if u.get("pgbouncer") and u.get("state", "present") != "absent" and u.get("password"):
            users.append((u["name"], u["password"]))
    return users
