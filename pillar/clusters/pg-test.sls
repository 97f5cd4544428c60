# pg-test private vars: only the cluster's members receive this file (pillar/top.sls).
# SANDBOX PASSWORDS: replace every one of them before using this outside the sandbox.
pigsty:
  clusters:
    pg-test:
      vars:
        pg_admin_password: Sandbox.DBA.test
        pg_replication_password: Sandbox.Repl.test
        pg_monitor_password: Sandbox.Mon.test
        pg_etcd_password: Sandbox.Etcd.test
        patroni_password: Sandbox.Patroni.test   # Patroni REST API (unsafe methods)
        haproxy_admin_password: Sandbox.HAProxy.test   # the admin page (9101)
        pg_users:
          - {name: test, password: Sandbox.Test, pgbouncer: true, roles: [dbrole_readwrite]}
        pg_databases:
          - {name: test, owner: test}
