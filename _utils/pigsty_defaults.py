"""Every Pigsty-on-Salt parameter and its default, in one place.

Names follow Pigsty's so that a Pigsty user recognises them. Resolution order for one
instance (later wins): DEFAULTS < pillar ``pigsty:vars`` (global) < the cluster's ``vars``
< the member's own entry under ``hosts``. Templates never hard-code these values: they read
the resolved configuration from ``salt['pigsty.config']()``.

Pure data: no Salt imports, so unit tests and the master-side validator import it directly.
"""

# Parameters a cluster (or the global ``pigsty:vars``) may set, with their defaults.
# ``None`` means "no default: must be given where it is needed".
DEFAULTS = {
    # ---- identity (pg_cluster comes from the cluster key, pg_seq / pg_role from hosts)
    "pg_cluster": None,
    # ---- software
    "pg_version": 15,
    "pg_dbsu": "postgres",
    "pg_data": "/pg/data",
    "pg_namespace": "/service",    # Patroni's DCS namespace (vip-manager reads NS/CLUSTER/leader)
    # ---- DCS: etcd on the meta nodes (v2 API enabled: Debian's vip-manager 1.0.2 needs it),
    #      or a Consul the user already runs (dcs_type: consul; Debian has no Consul package)
    "dcs_type": "etcd",            # etcd | consul
    "consul_hosts": [],            # consul: ["HOST:PORT", ...] of the user's Consul agents/servers
    "etcd_port": 2379,
    "etcd_peer_port": 2380,
    # the etcd members (Pigsty's dcs_servers, {name: ip}, each address a node of the
    # inventory, at least one of them a meta node); empty: one member on each meta node,
    # named by its minion id (_utils/pigsty_model.py: Inventory.dcs_members)
    "dcs_servers": {},
    # etcd speaks TLS only (the node certificate of salt/node/pki.sls, client and peer) and,
    # with etcd_auth, each cluster reads and writes its own Patroni prefix only, as its own
    # etcd user. The root password is in the meta nodes' private pillar (pillar/dcs.sls).
    "etcd_auth": True,
    "pg_etcd_password": None,      # the cluster's etcd password (its private pillar file)
    # ---- ports on every database node
    "pg_port": 5432,
    # PostgreSQL's listen addresses (Pigsty's pg_listen, v1 default 0.0.0.0): wildcards,
    # ${ip} / ${vip} / ${lo}, or the member's own, loopback or VIP address (_utils/pigsty_listen.py)
    "pg_listen": "*",
    "pgbouncer_port": 6432,
    "patroni_port": 8008,
    "haproxy_admin_port": 9101,
    "haproxy_admin_username": "admin",   # the admin page's login (Pigsty's names); its password,
    "haproxy_admin_password": None,      # per cluster, is in the cluster's private pillar file
    "node_exporter_port": 9100,
    "pg_exporter_port": 9630,
    "pgbouncer_exporter_port": 9631,
    # ---- L2 VIP that follows the primary
    "pg_vip_enabled": False,
    "pg_vip_address": None,        # "10.10.10.3/24": address and the members' prefix length
    "pg_vip_interface": "eth0",
    "vip_manager_interval_ms": 250,   # how often vip-manager reads the leader key
    # ---- system users: passwords have no default (no weak shared default passwords)
    "pg_admin_username": "dbuser_dba",
    "pg_admin_password": None,
    "pg_replication_username": "replicator",
    "pg_replication_password": None,
    "pg_monitor_username": "dbuser_monitor",
    "pg_monitor_password": None,
    # ---- business users, databases, access rules, services (Pigsty's models)
    "pg_users": [],
    "pg_databases": [],
    "pg_hba_rules": [],
    "pgb_hba_rules": [],
    "pg_services": [],             # extra HAProxy services beyond the four defaults
    "pg_weight": 100,              # HAProxy weight of the members (a member's own entry wins)
    # a standby cluster's apply delay (recovery_min_apply_delay of its leader; pigsty_standby):
    # seconds or a PostgreSQL duration (1h, 1d); with pg_upstream on its primary member only
    "pg_delay": 0,
    # a new cluster restored from another cluster's backups (pigsty_clone): {cluster: SOURCE,
    # time | lsn | name: TARGET}; none: an empty new cluster (initdb)
    "pg_pitr": None,
    # SSL: PostgreSQL and pgbouncer always offer it (the node certificate of node.pki); the
    # admin's remote rules always require it; with pg_ssl_required every remote default
    # password rule does (business, offline, monitor, replication): _utils/pigsty_hba.py
    "pg_ssl_required": False,
    # ---- HA and tuning
    "pg_conf": "oltp",             # tuning profile: oltp | olap | crit | tiny
    "pg_rto_plan": "norm",         # HA timing plan: fast | norm | safe
    "pg_rpo": 1048576,             # max lag (bytes) a replica may have to be promoted; 0 = sync
    "patroni_failsafe_mode": True,
    "patroni_username": "postgres",  # Patroni REST API login for unsafe methods (per cluster);
    "patroni_password": None,        # the password goes in the cluster's private pillar file
    "patroni_beacon_interval": 1,
    # Patroni's watchdog: off | automatic (used when the node has one) | required (Patroni
    # leads only with a working /dev/watchdog; pgsql.patroni refuses a node without one)
    "patroni_watchdog_mode": "off",   # seconds between the beacon's polls of the local Patroni
    # ---- initdb (Patroni's bootstrap: they take effect when a cluster is created)
    "pg_encoding": "UTF8",
    "pg_locale": "C.UTF-8",
    "pg_lc_collate": "C.UTF-8",
    "pg_lc_ctype": "C.UTF-8",
    "pg_checksum": True,           # initdb --data-checksums
    # ---- extensions: shared_preload_libraries, and Debian packages for db nodes
    "pg_libs": "pg_stat_statements",   # comma-separated, Pigsty's form
    "pg_extensions": [],           # Debian package names, e.g. postgresql-15-postgis-3
    "pg_default_schemas": [],      # created in template1 (so in every new database) and postgres
    # default privileges on what the dbsu and the admin user create (Pigsty's form); what is
    # missing is granted, nothing is revoked
    "pg_default_privileges": [
        "GRANT USAGE ON SCHEMAS TO dbrole_readonly", "GRANT SELECT ON TABLES TO dbrole_readonly",
        "GRANT SELECT ON SEQUENCES TO dbrole_readonly",
        "GRANT EXECUTE ON FUNCTIONS TO dbrole_readonly",
        "GRANT USAGE ON SCHEMAS TO dbrole_offline", "GRANT SELECT ON TABLES TO dbrole_offline",
        "GRANT SELECT ON SEQUENCES TO dbrole_offline",
        "GRANT EXECUTE ON FUNCTIONS TO dbrole_offline",
        "GRANT INSERT ON TABLES TO dbrole_readwrite", "GRANT UPDATE ON TABLES TO dbrole_readwrite",
        "GRANT DELETE ON TABLES TO dbrole_readwrite",
        "GRANT USAGE ON SEQUENCES TO dbrole_readwrite",
        "GRANT UPDATE ON SEQUENCES TO dbrole_readwrite",
        "GRANT TRUNCATE ON TABLES TO dbrole_admin", "GRANT REFERENCES ON TABLES TO dbrole_admin",
        "GRANT TRIGGER ON TABLES TO dbrole_admin", "GRANT CREATE ON SCHEMAS TO dbrole_admin",
    ],
    "pg_default_extensions": [],   # names or {name, schema}: created there too
    # ---- pgbouncer
    "pgbouncer_poolmode": "transaction",   # session | transaction | statement
    "pgbouncer_max_db_conn": 0,    # max server connections per database; 0 = no limit
    # ---- node tuning (node role, every node; a cluster's value applies to its members)
    "node_timezone": "",           # e.g. Asia/Hong_Kong; empty: the node's own is kept
    "node_sysctl_params": {},      # kernel parameter -> value (sysctl), e.g. vm.swappiness: 10
    # lines of /etc/crontab ("MIN HOUR DOM MON DOW USER COMMAND"); overwrite: /etc/crontab
    # becomes Debian's header and run-parts lines plus these; false: a marked block is
    # appended to the node's own file (_utils/pigsty_crontab.py)
    "node_crontab": [],
    "node_crontab_overwrite": True,
    # a tuning profile as kernel parameters (_utils/pigsty_node_tune.py; node_sysctl_params
    # wins key by key): none | oltp | olap | crit | tiny. Pigsty's default is oltp (a tuned
    # profile, v1's sandbox tiny); ours leaves the kernel alone unless asked
    "node_tune": "none",
    "node_packages": [],           # extra Debian packages on every node (node.packages)
    # an administrator account with passwordless sudo and these ssh keys (node.admin,
    # _utils/pigsty_node_admin.py). Pigsty enables it by default; ours only when asked (Salt
    # needs no ssh account on the nodes)
    "node_admin_enabled": False,
    "node_admin_uid": 88,          # its uid and gid
    "node_admin_username": "dba",
    "node_admin_pk_list": [],      # OpenSSH public key lines: its whole authorized_keys
    # ---- infra (meta nodes): global parameters, set them in pigsty:vars (see INFRA_PARAMS)
    "prometheus_port": 9090,
    "prometheus_scrape_interval": "10s",
    "prometheus_scrape_timeout": "8s",
    "prometheus_eval_interval": "10s",
    "prometheus_retention": "15d",
    "prometheus_alert_for": None,  # a duration: every alert's `for` becomes this (sandbox: short)
    "alertmanager_port": 9093,
    # Alertmanager's route and receivers, in Alertmanager's own format. The default receiver
    # sends nowhere; pillar names a real one (the sandbox: the webhook sink below).
    "alertmanager_route": {"receiver": "default", "group_by": ["alertname", "cls", "ins"],
                           "group_wait": "30s", "group_interval": "5m",
                           "repeat_interval": "4h"},
    "alertmanager_receivers": [{"name": "default"}],
    "alert_sink_enabled": False,   # tiny webhook sink on meta: appends each alert POST to a file
    "alert_sink_port": 9095,
    "grafana_port": 3000,
    "grafana_repo": None,          # an apt source line for Grafana ("deb [...] URL stable main")
    "grafana_package_url": None,   # or the URL of a grafana .deb (Debian 12 ships no Grafana)
    "nginx_port": 80,              # plain HTTP: the package repository (apt), and 301 to HTTPS
    "nginx_ssl_port": 443,         # the portal and its virtual hosts (meta's certificate)
    "nginx_home": "/www",          # portal home page; the local repository is NGINX_HOME/pigsty
    "infra_portal": {              # name-based virtual hosts of Nginx (Pigsty's domains)
        "home": {"domain": "pigsty"},
        "prometheus": {"domain": "p.pigsty"},
        "alertmanager": {"domain": "a.pigsty"},
        "grafana": {"domain": "g.pigsty"},
        "haproxy": {"domain": "h.pigsty"},
    },
    "repo_packages_extra": [],     # more packages for the local repository (with dependencies)
    "node_repo_local": False,      # database nodes install from meta's repository only
    "dns_port": 53,
    "dns_records": [],             # extra records, Pigsty-style: "10.10.10.10 x.pigsty y.pigsty"
    "dns_upstream": [],            # upstream servers for dnsmasq; empty: answer local names only
    "node_dns_method": "overwrite",  # overwrite: resolv.conf names meta's dnsmasq; none: untouched
    "ntp_allow": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],   # who may sync from meta
    # logs: every node's journal (PostgreSQL via Patroni, Patroni, pgbouncer, HAProxy, etcd,
    # ...) uploaded over HTTPS to the first meta node's systemd-journal-remote
    "log_collect": True,
    "log_port": 19532,
    "log_retention_size": "1G",    # meta keeps at most this much (journalctl --vacuum-size)
    "log_retention_time": "15d",   # ... and nothing older (--vacuum-time; Pigsty's loki_retention)
    "ntp_upstream": [],            # chrony sources of the meta node; empty: its local clock
    "node_ntp_enabled": True,      # nodes sync from meta's chrony
    "ntp_no_clock_control": False,  # chronyd -x: serve and track time, never set the clock
    # ---- backup and point-in-time recovery (pgBackRest 2.45, Debian's), docs/backup.md.
    #      The repository is on the meta node(s): losing every database node loses nothing
    #      archived. Transport: pgBackRest's TLS server on the repository host and on every
    #      database node, clients authenticated by the CN of their node certificate.
    "pgbackrest_enabled": True,     # per cluster: WAL archiving and backups of this cluster
    "pgbackrest_method": "meta",    # global: which entry of pgbackrest_repo is the repository
    "pgbackrest_repo": {            # global: repositories by name (Pigsty's shape)
        "meta": {
            "path": "/pg/backup",            # on the repository host (the first meta node)
            "retention_full_type": "count",  # count | time (days)
            "retention_full": 2,             # full backups (or days) kept with their WAL
            "retention_diff": 6,             # differential backups kept
            "compress_type": "lz4",          # lz4 | zst | gz | bz2 | none
            "compress_level": 1,
            "bundle": True,                  # repo bundling of small files
        },
    },
    "pgbackrest_port": 8432,        # global: the pgBackRest TLS servers' port (meta and db nodes)
    # global: the backup metrics (pigsty_backup_*) on the repository host's loopback
    # (node_exporter's textfile collector; Pigsty's pgbackrest_exporter port)
    "pgbackrest_exporter_port": 9854,
    "pgbackrest_log_dir": "/pg/log/pgbackrest",
    # archive_timeout: a WAL segment is archived at least this often (seconds) when the
    # primary writes anything: the bound of what a restore from the repository can lose.
    "pg_archive_timeout": 60,
    # backups to take (type full | diff | incr, cron: five fields, UTC): Salt's scheduler on
    # the master runs pigsty_backup.run_due every minute (master.d/reactor.conf)
    "pgbackrest_schedule": [
        {"type": "full", "cron": "0 1 * * 0"},
        {"type": "incr", "cron": "0 1 * * 1-6"},
    ],
}

# Pigsty's four default services (port -> what it serves); extra ones come from pg_services.
# Membership follows the LIVE roles, not pillar's: every member is a server and Patroni's
# checks decide. 5434 serves the live replicas (/replica) and, only when none is up, the
# live primary: each member's backup copy ("<instance>-primary") tracks its server in the
# primary service. 5438 serves offline members and falls back to any live replica. So after
# a failover the read services route as they would had pillar named the new roles.
DEFAULT_SERVICES = [
    {"name": "primary", "port": 5433, "dest": "pgbouncer", "check": "/primary",
     "selector": "all", "backup": None},
    {"name": "replica", "port": 5434, "dest": "pgbouncer", "check": "/replica",
     "selector": "all", "backup": "all", "backup_track": "primary"},
    {"name": "default", "port": 5436, "dest": "postgres", "check": "/primary",
     "selector": "all", "backup": None},
    {"name": "offline", "port": 5438, "dest": "postgres", "check": "/replica",
     "selector": "offline", "backup": "all"},
]

# Per-member keys allowed under ``hosts: {IP: {...}}``.
HOST_KEYS = {"pg_seq", "pg_role", "pg_offline_query", "pg_weight", "pg_listen", "pg_upstream", "pg_delay"}
# Pigsty parameters that validation refuses with their own reason (not a typo: not built yet).
NOT_YET = {}
# Pigsty's instance parameters that mean nothing as a cluster's or global var: name -> where.
INSTANCE_ONLY = {
    "pg_upstream": "an instance parameter: set it on the standby cluster's member with pg_role: "
                   "primary (hosts: ADDRESS: {pg_upstream: UPSTREAM_ADDRESS})",
}
# Pigsty parameters accepted with our fixed value only: name -> (that value, why no other).
FIXED = {
    "node_admin_ssh_exchange": (False, "Salt reaches every node through its minion, and no ssh "
                                       "keys are exchanged among the nodes: list the keys that "
                                       "may log in as the admin in node_admin_pk_list"),
    "node_admin_pk_current": (False, "Salt has no operator's ssh key to copy (Pigsty copies the "
                                     "Ansible user's ~/.ssh/id_rsa.pub): put that public key in "
                                     "node_admin_pk_list"),
}
# standby: a replica that may be the synchronous standby (with pg_rpo: 0 or pg_conf: crit;
# when a cluster names any, only they may be: pigsty_pgsql.sync_candidate)
ROLES = ("primary", "replica", "offline", "standby")
# Pigsty's reserved role names that mean something we build otherwise: name -> how
ROLES_ELSEWHERE = {
    "delayed": "a delayed copy is a standby cluster: pg_upstream and pg_delay on the primary member "
               "of a cluster of its own (a delayed member inside a cluster is not built)",
}

# The entries of infra_portal that Nginx serves (the portal, its proxies, the HAProxy pages):
# their domains are also in the meta nodes' certificates (pigsty_pki.node_names).
PORTAL_SERVICES = ("home", "prometheus", "alertmanager", "grafana", "haproxy")

# Keys of the node map ``pigsty:nodes: {MINION_ID: {...}}``.
NODE_KEYS = {"ip", "meta"}

# Ports that a database node binds (parameter name -> default), checked for clashes.
NODE_PORT_PARAMS = ("pg_port", "pgbouncer_port", "patroni_port", "haproxy_admin_port",
                    "node_exporter_port", "pg_exporter_port", "pgbouncer_exporter_port")

# System-user password parameters that every cluster must set (in its private pillar file).
REQUIRED_SECRETS = ("pg_admin_password", "pg_replication_password", "pg_monitor_password",
                    "patroni_password", "haproxy_admin_password")
# ... and the one a cluster needs when its DCS is etcd with authentication (etcd_auth)
ETCD_SECRET = "pg_etcd_password"

# Parameters of the infra role (meta nodes): global, so they belong in pigsty:vars only.
INFRA_PARAMS = frozenset((
    "prometheus_port", "prometheus_scrape_interval", "prometheus_scrape_timeout",
    "prometheus_eval_interval", "prometheus_retention", "prometheus_alert_for",
    "alertmanager_port", "alertmanager_route", "alertmanager_receivers", "alert_sink_enabled",
    "alert_sink_port", "grafana_port", "grafana_repo", "grafana_package_url", "nginx_port",
    "nginx_ssl_port", "nginx_home", "infra_portal", "repo_packages_extra", "node_repo_local", "dns_port",
    "dns_records", "dns_upstream", "node_dns_method", "ntp_allow", "ntp_upstream",
    "node_ntp_enabled", "ntp_no_clock_control", "dcs_type", "consul_hosts", "etcd_auth", "dcs_servers",
    "pgbackrest_method", "pgbackrest_repo", "pgbackrest_port", "pgbackrest_exporter_port",
    "log_collect", "log_port", "log_retention_size", "log_retention_time",
))

# Packages of a database node (pgsql.install) and of the DCS (dcs); the local repository
# on meta carries them with their whole dependency closure, plus the node role's own.
# The Debian package's own service user: the dbsu unless pg_dbsu names another one (which
# pgsql.install then creates, with its home at DBSU_HOME, Pigsty's pg_dbsu_home).
DEBIAN_DBSU = "postgres"
DEBIAN_DBSU_HOME = "/var/lib/postgresql"
DBSU_HOME = "/var/lib/pgsql"
PGSQL_PACKAGES = ("postgresql-{pg_version}", "patroni", "python3-etcd", "python3-psycopg2",
                  "pgbouncer", "haproxy", "vip-manager", "prometheus-node-exporter",
                  "prometheus-postgres-exporter", "prometheus-pgbouncer-exporter", "pgbackrest")
# The backup repository host (meta, infra.backup_repo)
BACKUP_REPO_PACKAGES = ("pgbackrest", "prometheus-node-exporter")   # + the backup metrics' exporter
DCS_PACKAGES = ("etcd-server", "etcd-client")
NODE_PACKAGES = ("chrony", "systemd-journal-remote")   # journal-upload (node.logs), -remote (infra.logs)
NODE_ADMIN_PACKAGES = ("sudo",)     # node.admin, on nodes with node_admin_enabled

# The meta node's daily patrol report (salt-run pigsty.patrol) and the scheduled cleanup
# (salt-run pigsty.cleanup), master.d/reactor.conf's schedule: where the reports are kept,
# for how long, the hour (UTC) after which a day's report is due, and each check's
# thresholds (the report prints the one it used). Not pillar parameters: the master's own.
PATROL = {
    "dir": "/var/lib/pigsty/patrol",   # <dir>/<cluster>/<UTC date>.json and latest.json
    "retention_days": 30,              # reports older than this are removed
    "hour": 2,                         # a day's report is due from 02:00 UTC (after 01:00's backups)
    "lag_warn_bytes": 16 * 1024 ** 2,  # the PostgresReplicationLag alert's 16 MiB
    "lag_fail_bytes": 1024 ** 3,
    # backup: warn past the PostgresBackupTooOld alert's limit (pigsty_backup_metrics), fail
    # one more gap of the schedule later
    "archive_ready_warn": 64,          # WAL segments waiting (the PostgresArchiveBacklog alert's)
    "archive_recent_hours": 24,        # failures this recent, archiving working again: warn
    "xid_warn": 500000000,             # age(datfrozenxid): autovacuum forces freezing at 200 M
    "xid_fail": 1000000000,            # the PostgresXidWarpAround alert's 1 billion
    "disk_warn_pct": 80,               # the data directory's filesystem, used %
    "disk_fail_pct": 90,               # the NodeFsSpaceFull alert's 90 %
    "dead_min": 10000,                 # a table counts with at least this many dead tuples ...
    "dead_warn_ratio": 0.2,            # ... and dead / (live + dead) above autovacuum's 0.2 scale
    "dead_fail_ratio": 0.5,
    "top_tables": 5,                   # tables listed (most dead tuples first)
    "node_timeout": 60,                # seconds for the members' answers (pigsty_patrol.facts)
    # cleanup: pgBackRest's own log files (pgbackrest_log_dir, never rotated by pgBackRest)
    # and the alert sink's file are moved to NAME.1 past this size (one old copy kept)
    "log_max_bytes": 64 * 1024 ** 2,
}
