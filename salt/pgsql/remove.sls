{%- from 'pgsql/map.jinja' import pg with context %}
# Remove this node's instance: services stop in reverse order, the data directory goes.
# Run it through orch.pgsql_remove, which refuses to remove a running primary unless told.
# Every service a pgsql state starts (service.running in salt/pgsql/; a unit test keeps the
# list complete), the exporters first, patroni last.
{#- pgbackrest: the node's TLS server; the cluster's backups stay in the repository on meta #}
{%- set role_services = ['pigsty-pgbouncer-watchdog.timer', 'pigsty-pgbouncer-exporter', 'prometheus-postgres-exporter',
                         'prometheus-node-exporter', 'pgbackrest', 'vip-manager', 'haproxy', 'pgbouncer', 'patroni'] %}
{%- for svc in role_services %}
pgsql-remove-{{ svc }}:
  service.dead:
    - name: {{ svc }}
    - enable: False
{%-   if not loop.first %}
    - require:
      - service: pgsql-remove-{{ loop.previtem }}
{%-   endif %}
{%- endfor %}

pgsql-remove-data:
  file.absent:
    - name: {{ pg.pg_data }}
    - require:
      - service: pgsql-remove-patroni

pgsql-remove-patroni-config:
  file.absent:
    - name: /etc/patroni/config.yml
    - require:
      - service: pgsql-remove-patroni

# Files that hold this cluster's secrets: the exporter's password, pgbouncer's verifiers.
pgsql-remove-secrets:
  file.absent:
    - names:
      - /etc/pigsty/pg_exporter.pgpass
      - /etc/pgbouncer/userlist.txt
    - require:
      - service: pgsql-remove-prometheus-postgres-exporter
      - service: pgsql-remove-pgbouncer
