# pgsql role: one Postgres instance under Patroni, with Pgbouncer, HAProxy services, the
# VIP and the exporters. `salt -G 'pg_cluster:pg-test' state.apply pgsql` converges a
# cluster; orch.pgsql creates one in order.
include:
  - pgsql.watchdog    # first: a node without the watchdog patroni_watchdog_mode requires stops here
  - pgsql.install
  - pgsql.patroni
  - pgsql.pgbackrest
  # users before pgbouncer: pgbouncer's userlist copies the verifiers Postgres stores
  - pgsql.user
  - pgsql.pgbouncer
  - pgsql.pause_watchdog
  - pgsql.service
  - pgsql.vip
  - pgsql.monitor
  - pgsql.beacon
