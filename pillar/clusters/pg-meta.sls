# pg-meta private vars: only the cluster's members receive this file (pillar/top.sls).
# SANDBOX PASSWORDS: replace every one of them before using this outside the sandbox.
pigsty:
  clusters:
    pg-meta:
      vars:
        pg_admin_password: Sandbox.DBA.meta
        pg_replication_password: Sandbox.Repl.meta
        pg_monitor_password: Sandbox.Mon.meta
        pg_etcd_password: Sandbox.Etcd.meta
        patroni_password: Sandbox.Patroni.meta   # Patroni REST API (unsafe methods)
        haproxy_admin_password: Sandbox.HAProxy.meta   # the admin page (9101)
        pg_users:
          - {name: dbuser_meta, password: Sandbox.Meta, pgbouncer: true, roles: [dbrole_admin], comment: pigsty admin user}
          - {name: dbuser_view, password: Sandbox.View, pgbouncer: true, roles: [dbrole_readonly], comment: read-only viewer for meta database}
        pg_databases:
          - {name: meta, owner: dbuser_meta, comment: pigsty meta database}
