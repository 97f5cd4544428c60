# Access rules of this instance (Pigsty's rule model: pg_hba_rules, pgb_hba_rules), online:
# Postgres' rules are part of Patroni's config (Patroni rewrites pg_hba.conf and reloads
# Postgres on SIGHUP), pgbouncer's are reloaded through its admin console.
#   salt -G 'pg_cluster:pg-test' state.apply pgsql.hba
include:
  - pgsql.patroni
  - pgsql.pgbouncer
