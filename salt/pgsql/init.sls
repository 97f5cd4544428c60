# pgsql role: one Postgres instance under Patroni, with Pgbouncer, HAProxy services, the
# VIP and the exporters. `salt -G 'pg_cluster:pg-test' state.apply pgsql` converges a
# cluster; orch.pgsql creates one in order.
include:
  - pgsql.install
  - pgsql.patroni
  - pgsql.pgbouncer
  - pgsql.service
  - pgsql.vip
  - pgsql.monitor
  - pgsql.user
  - pgsql.beacon
