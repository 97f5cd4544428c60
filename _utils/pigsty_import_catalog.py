"""What each Pigsty parameter means for Pigsty on Salt: the tables the inventory import reads.

Parameters are looked up in this order by ``pigsty_import``: its own handlers (a parameter
that maps with a conversion; pigsty_import_logs, _node and _tls hold some of them), ``DIRECT`` (same name and meaning as ours), ``SAME_AS_OURS``
(no counterpart, but the value may be what we always do), ``SKIPPED_PREFIXES`` (components
we do not run), ``REASONS`` and ``UNSUPPORTED_PREFIXES`` (why it is not supported).

Pure data: no Salt imports.
"""
import re

import pigsty_defaults as D

# Pigsty's published default passwords (v1 and v2): carried over, but flagged.
PUBLISHED_PASSWORDS = {"DBUser.DBA", "DBUser.Monitor", "DBUser.Replicator", "DBUser.Meta",
                       "DBUser.Viewer", "DBUser.Stats", "pigsty", "Patroni.API", "test"}
SECRET_NAME_RE = re.compile(r"password|passwd|secret|token", re.I)
# Extensions that Debian's postgresql-15 package ships (contrib); others need packages
# that pg_extensions installs (the importer cannot tell which Debian package has one).
CONTRIB_EXTENSIONS = frozenset((
    "adminpack amcheck autoinc bloom btree_gin btree_gist citext cube dblink dict_int "
    "dict_xsyn earthdistance file_fdw fuzzystrmatch hstore insert_username intagg intarray isn "
    "lo ltree moddatetime old_snapshot pageinspect pg_buffercache pg_freespacemap pg_prewarm "
    "pg_stat_statements pg_surgery pg_trgm pg_visibility pg_walinspect pgcrypto pgrowlocks "
    "pgstattuple plpgsql postgres_fdw refint seg sslinfo tablefunc tcn tsm_system_rows "
    "tsm_system_time unaccent uuid-ossp xml2").split())
# Preload libraries that Debian's postgresql-15 ships (pg_libs keeps these on import).
CONTRIB_LIBRARIES = frozenset((
    "auto_explain pg_stat_statements pg_prewarm passwordcheck auth_delay sepgsql "
    "basebackup_to_shell basic_archive pg_walinspect").split())
PROFILES = {"oltp", "olap", "crit", "tiny"}
RTO_BY_TTL = {20: "fast", 30: "norm", 60: "safe"}
PIGSTY_SERVER_OPTIONS = ("inter 3s fastinter 1s downinter 5s rise 3 fall 3 on-marked-down "
                         "shutdown-sessions slowstart 30s maxconn 3000 maxqueue 128 weight 100")

PG_MODES_SKIPPED = {"citus": "Citus", "gpsql": "Greenplum", "mssql": "Babelfish (MSSQL)",
                    "ivory": "IvorySQL", "polar": "PolarDB", "oracle": "Oracle compatible",
                    "mysql": "OpenHalo (MySQL)", "mxdb": "MatrixDB"}
COMPONENT_KEYS = [  # (var or host key that marks a group, component, reason)
    ("redis_cluster", "Redis", "we run no Redis"),
    ("minio_cluster", "MinIO", "we run no MinIO (object storage for backups: the backup issue)"),
    ("mongo_cluster", "MongoDB/FerretDB", "we run no FerretDB/MongoDB"),
    ("kafka_cluster", "Kafka", "we run no Kafka"),
    ("gp_role", "Greenplum/MatrixDB", "we run no Greenplum/MatrixDB"),
    ("pg_shard", "sharded PostgreSQL (Citus/Greenplum)", "we run plain HA clusters only"),
    ("supa_cluster", "Supabase", "we run no Supabase"),
]

# Component prefixes of parameters for components we do not run at all.
SKIPPED_PREFIXES = [
    ("redis_", "Redis"), ("minio_", "MinIO"), ("mongo_", "FerretDB/MongoDB"),
    ("ferret_", "FerretDB"), ("docker_", "Docker"),
    ("kafka_", "Kafka"), ("gp_", "Greenplum"), ("mx_", "MatrixDB"), ("juice", "JuiceFS"),
    ("vmetrics_", "VictoriaMetrics"),
    ("vtraces_", "VictoriaTraces"), ("supa_", "Supabase"), ("app_", "Docker apps"),
    ("citus_", "Citus"), ("pg_shard", "sharding"), ("pg_sindex", "sharding"),
    ("pg_group", "Citus"), ("blackbox_", "blackbox exporter"), ("pushgateway_", "Pushgateway"),
    ("keepalived_", "keepalived (we move the VIP with vip-manager)"),
]

# Parameters without a counterpart: exact names, then prefixes -> the reason.
REASONS = {
    "proxy_env": "download proxy: our nodes reach packages through apt (and meta's repository)",
    "region": "package mirror region: our nodes use Debian's mirrors or meta's repository",
    "nginx_indexes": "portal links: our portal is rendered from the inventory",
    "nginx_sslmode": "Nginx always serves the portal over HTTPS (the meta node's certificate); port 80 serves the repository and redirects",
    "nginx_upstream": None,  # special
    "grafana_endpoint": "Grafana runs on the meta nodes at grafana_port",
    "prometheus_data_dir": "Prometheus keeps Debian's data directory (/var/lib/prometheus)",
    "prometheus_sd_interval": "our targets are file_sd files rewritten on each change",
    "prometheus_reload": "Salt restarts or reloads Prometheus when its config changes",
    "dcs_name": "Consul's datacenter name: we run etcd (or use your Consul)",
    "dcs_safeguard": "we never purge a running DCS",
    "dcs_clean": "we never purge a running DCS",
    "dcs_registry": "we register no services in the DCS (Prometheus reads file_sd targets)",
    "consul_enabled": "Debian 12 has no Consul package: we run etcd on the meta nodes",
    "consul_data_dir": "Debian 12 has no Consul package: we run etcd on the meta nodes",
    "etcd_enabled": "etcd always runs on the meta nodes",
    "etcd_data_dir": "etcd keeps Debian's data directory (/var/lib/etcd)",
    "etcd_data": "etcd keeps Debian's data directory (/var/lib/etcd)",
    "exporter_install": "exporters come from Debian packages",
    "exporter_repo_url": "exporters come from Debian packages",
    "node_exporter_options": "node_exporter runs with Debian's default collectors",
    "pg_exporter_config": "the postgres exporter runs with our own queries",
    "pg_exporter_params": "the postgres exporter connects over the unix socket",
    "pg_exporter_url": "the postgres exporter connects over the unix socket",
    "pg_exporter_options": "the postgres exporter runs with our options",
    "pg_exporter_auto_discovery": "the postgres exporter scrapes the postgres database only",
    "pg_exporter_exclude_database": "the postgres exporter scrapes the postgres database only",
    "pg_exporter_include_database": "the postgres exporter scrapes the postgres database only",
    "pgbouncer_exporter_url": "our pgbouncer exporter reads the admin console over the socket",
    "pgbouncer_exporter_options": "our pgbouncer exporter takes no options",
    "haproxy_client_timeout": "ours: 24h, fixed",
    "haproxy_server_timeout": "ours: 24h, fixed",
    "grafana_admin_username": "Grafana keeps its own admin account",
    "grafana_admin_password": "Grafana keeps its own admin account",
    "nodename_overwrite": "Salt does not rename hosts: minion ids are the node names",
    "nodename_exchange": "Salt does not write /etc/hosts entries of other nodes",
    "node_cluster": "node clusters (cls of node metrics) are not modelled; node targets carry the pg cluster",
    "node_etc_hosts_default": "/etc/hosts is not managed (dnsmasq on meta answers these names)",
    "node_etc_hosts": "/etc/hosts is not managed (dnsmasq on meta answers these names)",
    "node_dns_servers": None,  # special
    "node_dns_options": "resolv.conf options are not managed",
    "node_dns_hosts": "/etc/hosts is not managed (dnsmasq on meta answers these names)",
    "node_dns_hosts_extra": "/etc/hosts is not managed (dnsmasq on meta answers these names)",
    "node_repo_remove": "with node_repo_local the nodes' other apt sources are set aside",
    "node_repo_local_urls": "the local repository is meta's http://META/pigsty",
    "node_repo_modules": "the local repository is meta's http://META/pigsty",
    "node_packages_default": "EL package names: the node role installs Debian's",
    "node_default_packages": "package names of Pigsty's distributions: the node role installs Debian's",
    "node_packages_meta": "EL package names: the infra role installs Debian's",
    "node_packages_meta_pip": "pip packages are not installed",
    "node_admin_ssh_exchange": D.FIXED["node_admin_ssh_exchange"][1],
    "node_admin_pk_current": D.FIXED["node_admin_pk_current"][1],
    "node_ntp_service": None,  # special
    "node_ntp_servers": None,  # special
    "node_data_dir": "data directories are Debian's",
    "node_disable_firewall": "the firewall is not managed",
    "node_disable_selinux": "Debian has no SELinux",
    "node_selinux_mode": "Debian has no SELinux",
    "node_firewall_mode": "the firewall is not managed",
    "node_disable_numa": "NUMA is not managed",
    "node_disable_swap": "swap is not managed",
    "node_static_network": "the network is not managed",
    "node_disk_prefetch": "disk prefetch is not managed",
    "node_kernel_modules": "kernel modules are not managed",
    "node_hugepage_count": "huge pages are not managed",
    "node_hugepage_ratio": "huge pages are not managed",
    "node_overcommit_ratio": "overcommit is not managed",
    "node_write_etc_hosts": "/etc/hosts is not managed",
    "node_id_from_pg": None,  # special (node names)
    "nodename": None,
    "pg_dbsu_uid": "Debian's postgresql package creates the dbsu with its own uid",
    "pg_dbsu_sudo": "the dbsu gets no sudo rules",
    "pg_dbsu_home": "the dbsu's home is Debian's /var/lib/postgresql",
    "pg_dbsu_ssh_exchange": "no ssh keys are exchanged (Salt reaches every node)",
    "pg_dbsu_password": "the dbsu logs in over the local socket only (peer), without a password",
    "pg_bin_dir": "binaries are Debian's /usr/lib/postgresql/15/bin",
    "pg_log_dir": "logs are Debian's /var/log/postgresql",
    "pg_packages": "EL package names: pgsql.install installs Debian's",
    "pgdg_repo": "packages come from Debian (and meta's repository)",
    "pg_add_repo": "packages come from Debian (and meta's repository)",
    "pg_safeguard": "we never wipe a running instance on create; removal needs orch.pgsql_remove",
    "pg_clean": "we never wipe a running instance on create; removal needs orch.pgsql_remove",
    "pg_rm_data": "removal is orch.pgsql_remove",
    "pg_rm_backup": "removal is orch.pgsql_remove",
    "pg_rm_pkg": "removal is orch.pgsql_remove",
    "pg_fs_main": "data stays on the node's filesystem at pg_data",
    "pg_fs_bkup": "data stays on the node's filesystem at pg_data",
    "pg_fs_backup": "data stays on the node's filesystem at pg_data",
    "pg_dummy_filesize": "no reserve file is created",
    "pg_init": "no custom init script is run",
    "pg_preflight_skip": "identity is checked by our validation, always",
    "pg_backup": "backups: the backup issue",
    "pg_hostname": None,  # special (node names)
    "pg_instances": "several instances per node are not supported (one instance per node)",
    "pg_upstream": D.INSTANCE_ONLY["pg_upstream"],
    "pg_exporters": "remote monitoring of other Postgres is not implemented",
    "pg_conf_custom": "extra postgresql.conf parameters are not accepted (tuning profiles only)",
    "pg_parameters": "extra postgresql.conf parameters are not accepted (tuning profiles only)",
    "pg_files": "extra files are not copied",
    "pg_spec": "instance sizing comes from the node's memory",
    "pg_pwd_enc": None,  # special
    "pg_default_version": None,
    "pg_mode": None,  # handled on the cluster
    "patroni_ssl_enabled": "Patroni's REST API always uses HTTPS in ours (the Pigsty CA)",
    "patroni_log_dir": "Patroni logs to the journal",
    "patroni_citus_db": "Citus is not run",
    "pgbouncer_log_dir": "Pgbouncer logs to /var/log/postgresql",
    "pgbouncer_auth_query": "Pgbouncer authenticates with its userlist (SCRAM verifiers)",
    "pgbouncer_exporter_enabled": None,
    "pgbackrest_enabled": None,
    "pgbackrest_method": "ours has one method, meta (the repository on the meta node over TLS)",
    "pgbackrest_repo": "ours has one repository, pgbackrest_repo.meta (path, retention, compression)",
    "pg_vip_enabled": None,
    "vip_reload": "vip-manager is restarted by Salt when its config changes",
    "repo_name": "the local repository is served at http://META/pigsty",
    "repo_address": "the local repository is served at http://META/pigsty",
    "repo_endpoint": "the local repository is served at http://META/pigsty",
    "repo_rebuild": "the local repository is rebuilt when its package list changes",
    "repo_remove": "the nodes' own apt sources are set aside with node_repo_local",
    "repo_upstreams": "yum/apt sources of Pigsty's distributions: the local repository is built from Debian's",
    "repo_upstream": "yum/apt sources of Pigsty's distributions: the local repository is built from Debian's",
    "repo_packages": "package names of Pigsty's distributions (repo_packages_extra takes Debian package names)",
    "repo_url_packages": "downloads by URL are not supported (repo_packages_extra takes Debian package names)",
    "repo_modules": "the local repository is built from Debian's",
    "repo_extra_packages": "package names of Pigsty's distributions (repo_packages_extra takes Debian package names)",
    "repo_enabled": None,
    "infra_seq": None,
    "etcd_seq": None,
    "etcd_cluster": None,
    "meta_node": None,
    "version": None,
    "admin_ip": None,
    "ansible_group_priority": "Ansible's group precedence: ours is fixed (member > cluster > global)",
    # logs (pigsty_import_logs maps the switches, the retention and the endpoints)
    "loki_clean": "ours never wipes the collected logs: they age out by log_retention_time and "
                  "log_retention_size",
    "vlogs_clean": "ours never wipes the collected logs: they age out by log_retention_time and "
                   "log_retention_size",
    "promtail_clean": "ours keeps each node's upload position (journal-upload's state file): a "
                      "node never sends its journal again",
    "vector_clean": "ours keeps each node's upload position (journal-upload's state file): a "
                    "node never sends its journal again",
    "vector_read_from": "a node's first upload starts at the beginning of its journal (there is "
                        "no 'end'), then it keeps its place",
    "loki_data_dir": "Loki's data directory: ours keeps the collected journals in "
                     "/var/log/journal/remote on the first meta node",
    "loki_data": "Loki's data directory: ours keeps the collected journals in "
                 "/var/log/journal/remote on the first meta node",
    "loki_options": "Loki's command line: ours runs systemd-journal-remote, configured by infra.logs",
    "vlogs_port": "VictoriaLogs' port: systemd-journal-remote listens on log_port (HTTPS)",
    "promtail_port": "Promtail's HTTP port: systemd-journal-upload listens on no port (it sends "
                     "to log_port on the first meta node)",
    "promtail_options": "Promtail's command line: systemd-journal-upload is configured by node.logs",
    "promtail_positions": "Promtail's positions file: systemd-journal-upload keeps its place in "
                          "/var/lib/systemd/journal-upload/state",
    "vector_data": "Vector's data directory: systemd-journal-upload keeps its place in "
                   "/var/lib/systemd/journal-upload/state",
    "vector_port": "Vector's metrics port: systemd-journal-upload listens on no port",
}
UNSUPPORTED_PREFIXES = [
    ("loki_", "Loki's own setting: ours collects the logs with systemd-journal-remote on the "
              "first meta node (log_collect, log_port, log_retention_*)"),
    ("vlogs_", "VictoriaLogs' own setting: ours collects the logs with systemd-journal-remote on "
               "the first meta node (log_collect, log_port, log_retention_*)"),
    ("promtail_", "Promtail's own setting: ours sends each node's journal with "
                  "systemd-journal-upload (log_collect)"),
    ("vector_", "Vector's own setting: ours sends each node's journal with "
                "systemd-journal-upload (log_collect)"),
    ("ansible_", "Ansible's connection settings: Salt reaches the nodes through their minions"),
    ("node_admin_", "not a node_admin_* parameter of ours (node_admin_enabled, _uid, _username, "
                    "_pk_list)"),
    ("grafana_", "Grafana's own settings are not managed (installed from grafana_repo or "
                 "grafana_package_url, with our datasource and dashboards)"),
    ("prometheus_", "Prometheus runs with our configuration"),
    ("alertmanager_", "Alertmanager runs with our configuration"),
    ("nginx_", "Nginx runs with our configuration"),
    ("dns_", "dnsmasq runs with our configuration"),
    ("pgbackrest_", "pgBackRest runs with our configuration (docs/backup.md)"),
    ("pg_exporter_", "the postgres exporter runs with our configuration"),
    ("pgbouncer_", "Pgbouncer runs with our configuration"),
    ("haproxy_", "HAProxy runs with our configuration"),
    ("patroni_", "Patroni runs with our configuration"),
    ("etcd_", "etcd runs with our configuration on the meta nodes"),
    ("vip_", "the VIP is vip-manager's (pg_vip_*)"),
    ("node_", "the node role does not manage this"),
    ("infra_", "the infra role runs with our configuration"),
    ("repo_", "the local repository is built from Debian's packages"),
    ("pg_", "no counterpart in Pigsty on Salt"),
]

# Parameters without a counterpart whose value may equal what we always do:
# name -> (values that equal ours, what we do).
SAME_AS_OURS = {
    "pg_localhost": (("/var/run/postgresql", "/run/postgresql"), "the unix socket is in /var/run/postgresql"),
    "pg_reload": ((True,), "HBA changes are reloaded"),
    "pg_provision": ((True,), "users and databases are created"),
    "patroni_enabled": ((True,), "every member runs under Patroni"),
    "patroni_mode": (("default",), "Patroni manages the cluster (no pause)"),
    "pgbouncer_enabled": ((True,), "every member runs Pgbouncer"),
    "pgbouncer_auth_query": ((False,), "Pgbouncer uses its userlist"),
    "pg_exporter_enabled": ((True,), "every member runs the postgres exporter"),
    "pgbouncer_exporter_enabled": ((True,), "every member runs the pgbouncer exporter"),
    "node_exporter_enabled": ((True,), "every node runs node_exporter"),
    "haproxy_enabled": ((True,), "every member runs HAProxy"),
    "haproxy_reload": ((True,), "HAProxy is reloaded on config changes"),
    "haproxy_auth_enabled": ((False,), "the HAProxy admin page has no login"),
    "haproxy_client_timeout": (("24h",), "timeout client 24h"),
    "haproxy_server_timeout": (("24h",), "timeout server 24h"),
    "exporter_metrics_path": (("/metrics",), "exporters serve /metrics"),
    "nginx_enabled": ((True,), "Nginx runs on the meta nodes"),
    "nameserver_enabled": ((True,), "dnsmasq runs on the meta nodes"),
    "dns_enabled": ((True,), "dnsmasq runs on the meta nodes"),
    "prometheus_enabled": ((True,), "Prometheus runs on the meta nodes"),
    "alertmanager_enabled": ((True,), "Alertmanager runs on the meta nodes"),
    "infra_enabled": ((True,), "the infra role runs on the meta nodes"),
    "etcd_enabled": ((True,), "etcd runs on the meta nodes"),
    "dcs_registry": (("none",), "no services are registered in the DCS"),
    "pg_default_service_dest": (("pgbouncer",), "the primary and replica services route to Pgbouncer"),
    "pg_offline_query": ((False,), "instances take offline queries only with pg_offline_query: true on the member"),
    "pg_dbsu_password": (("",), "the dbsu has no password (local peer login only)"),
    "prometheus_sd_method": (("static",), "targets are files on the meta nodes (file_sd)"),
    "node_ntp_service": (("chrony",), "the nodes run chrony"),
    "loki_clean": ((False,), "the collected logs are never wiped"),
    "vlogs_clean": ((False,), "the collected logs are never wiped"),
    "promtail_clean": ((False,), "each node keeps its upload position"),
    "vector_clean": ((False,), "each node keeps its upload position"),
    "vector_read_from": (("beginning",), "a node's first upload starts at the beginning of its "
                                         "journal, then it keeps its place"),
    "docker_enabled": ((False,), "we run no Docker"),
    "consul_enabled": ((False,), "we run no Consul"),
    "vip_mode": (("none",), "no VIP"),
    "patroni_ssl_enabled": ((True,), "Patroni's REST API uses HTTPS with the Pigsty CA"),
    "repo_enabled": ((True,), "meta serves the local repository"),
    "node_repo_remove": ((False,), "the nodes' own sources are kept unless node_repo_local is on"),
    "node_admin_ssh_exchange": ((False,), "no ssh keys are exchanged among the nodes"),
    "node_admin_pk_current": ((False,), "no operator's key is copied (node_admin_pk_list only)"),
}

# Same name and meaning as ours: written as is (our validation has the last word).
DIRECT = frozenset(k for k in D.DEFAULTS if k not in {
    "pg_cluster", "pg_version", "pg_conf", "pg_users", "pg_databases", "pg_hba_rules",
    "pgb_hba_rules", "pg_services", "node_dns_method", "infra_portal", "dcs_type",
    "pg_vip_enabled", "pg_vip_address", D.ETCD_SECRET} and k not in D.REQUIRED_SECRETS)

SECRETS = D.REQUIRED_SECRETS + (D.ETCD_SECRET,)
# Parameters composed per cluster (a cluster's value wins over the global one).
COMPOSED = {"pg_users", "pg_databases", "pg_default_roles", "pg_hba_rules", "pg_hba_rules_extra",
            "pgbouncer_hba_rules", "pgbouncer_hba_rules_extra", "pg_default_hba_rules",
            "pgb_default_hba_rules", "pgb_hba_rules", "pg_services", "pg_services_extra",
            "pg_default_services", "vip_mode", "vip_address", "vip_cidrmask", "vip_interface",
            "pg_vip_enabled", "pg_vip_address", "pg_vip_interface"} | set(SECRETS)
