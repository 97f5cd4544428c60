{%- from 'pgsql/map.jinja' import pg with context %}
# Users and databases from pillar. Catalog changes go to the live primary only (asked from
# Postgres itself, not assumed from pillar); on the other members this is a no-op.
{%- set role = salt['pigsty.patroni_role']() %}
{%- if role == 'primary' %}
pg-default-roles:
  pigsty_pg.default_roles_present:
    - name: {{ pg.pg_admin_username }}
    - privileges: {{ pg.pg_default_privileges | json }}

pg-system-user-{{ pg.pg_admin_username }}:
  pigsty_pg.user_present:
    - name: {{ pg.pg_admin_username }}
    - password: {{ pg.pg_admin_password | json }}
    - superuser: True
    - roles: [dbrole_admin]
    - comment: pigsty admin user
    - require:
      - pigsty_pg: pg-default-roles

# Pigsty's default privileges for objects the admin user creates (needs the user first).
pg-default-privileges:
  pigsty_pg.default_roles_present:
    - name: {{ pg.pg_admin_username }}
    - admin_user: {{ pg.pg_admin_username }}
    - privileges: {{ pg.pg_default_privileges | json }}
    - require:
      - pigsty_pg: pg-system-user-{{ pg.pg_admin_username }}

pg-system-user-{{ pg.pg_monitor_username }}:
  pigsty_pg.user_present:
    - name: {{ pg.pg_monitor_username }}
    - password: {{ pg.pg_monitor_password | json }}
    - roles: [pg_monitor, dbrole_readonly]
    - connlimit: 16
    - comment: pigsty monitor user
    - require:
      - pigsty_pg: pg-default-roles

# pg_stat_statements (preloaded by the tuning profiles) in the database the postgres exporter
# connects to: its pg_query collector reads the view there (cluster-wide, every database).
pg-monitor-extensions:
  pigsty_pg.database_present:
    - name: postgres
    - extensions: [pg_stat_statements]
    - require:
      - pigsty_pg: pg-default-roles

{%- if pg.pg_default_schemas or pg.pg_default_extensions %}
{%-   for dbname in ['template1', 'postgres'] %}

# Pigsty's pg_default_schemas / pg_default_extensions: in template1, so every database
# created from it has them, and in postgres.
pg-default-contents-{{ dbname }}:
  pigsty_pg.database_present:
    - name: {{ dbname }}
    - schemas: {{ pg.pg_default_schemas | json }}
    - extensions: {{ pg.pg_default_extensions | json }}
    - require:
      - pigsty_pg: pg-default-roles
{%-     if dbname == 'postgres' %}
      - pigsty_pg: pg-monitor-extensions
{%-     endif %}
{%-     if dbname == 'template1' and pg.pg_databases %}
    - require_in:
{%-       for db in pg.pg_databases %}
      - pigsty_pg: pg-database-{{ db.name }}
{%-       endfor %}
{%-     endif %}
{%-   endfor %}
{%- endif %}

pg-system-user-{{ pg.pg_replication_username }}:
  pigsty_pg.user_present:
    - name: {{ pg.pg_replication_username }}
    - password: {{ pg.pg_replication_password | json }}
    - replication: True
    - bypassrls: True
    - roles: [pg_monitor, dbrole_readonly]
    - comment: pigsty replication user
    - require:
      - pigsty_pg: pg-default-roles
{%- for user in pg.pg_users %}
{%-   set spec = user.copy() %}
{%-   do spec.pop('name') %}
{#-   pgbouncer-side fields: pgbouncer's userlist / pools, not the role #}
{%-   for key in ['pgbouncer', 'pool_mode', 'pool_connlimit'] %}{% do spec.pop(key, None) %}{% endfor %}

pg-user-{{ user.name }}:
{%-   if user.get('state', 'present') == 'absent' %}
  pigsty_pg.user_absent:
    - name: {{ user.name }}
{%-   else %}
{%-     do spec.pop('state', None) %}
  pigsty_pg.user_present:
    - name: {{ user.name }}
{%-     for key, value in spec | dictsort %}
    - {{ key }}: {{ value | json }}
{%-     endfor %}
{%-   endif %}
    - require:
      - pigsty_pg: pg-default-roles
{%- endfor %}
{%- for db in pg.pg_databases %}
{%-   set spec = db.copy() %}
{%-   do spec.pop('name') %}
{%-   do spec.pop('pgbouncer', None) %}
{%-   do spec.pop('state', None) %}

pg-database-{{ db.name }}:
{%-   if db.get('state', 'present') == 'absent' %}
{%-     set leaving = pg.pg_users | selectattr('state', 'defined') | selectattr('state', 'equalto', 'absent') | list %}
  pigsty_pg.database_absent:
    - name: {{ db.name }}
    - require:
      - pigsty_pg: pg-default-roles
{%-     if leaving %}
    # before its owner can be dropped
    - require_in:
{%-       for user in leaving %}
      - pigsty_pg: pg-user-{{ user.name }}
{%-       endfor %}
{%-     endif %}
{%-   else %}
  pigsty_pg.database_present:
    - name: {{ db.name }}
{%-     for key, value in spec | dictsort %}
    - {{ key }}: {{ value | json }}
{%-     endfor %}
    - require:
{%-     for user in pg.pg_users %}
      - pigsty_pg: pg-user-{{ user.name }}
{%-     endfor %}
      - pigsty_pg: pg-default-roles
{%-   endif %}
{%- endfor %}
{%- else %}
pg-users-on-primary-only:
  test.succeed_without_changes:
    - name: {{ pg.pg_instance }} is not the primary (Patroni role {{ role }}); users and databases are managed on the primary
{%- endif %}
