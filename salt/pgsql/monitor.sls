{%- from 'pgsql/map.jinja' import pg with context %}
# Exporters on the node address: node {{ pg.node_exporter_port }}, postgres
# {{ pg.pg_exporter_port }}, pgbouncer {{ pg.pgbouncer_exporter_port }}.
include:
  - pgsql.install

node-exporter-args:
  file.managed:
    - name: /etc/default/prometheus-node-exporter
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        ARGS="--web.listen-address={{ pg.node_ip }}:{{ pg.node_exporter_port }} --collector.systemd --collector.processes"
    - require:
      - pkg: pgsql-packages

node-exporter-service:
  service.running:
    - name: prometheus-node-exporter
    - enable: True
    - watch:
      - file: node-exporter-args

# The monitor password is read by systemd (root) from this file: never on a command line.
pg-exporter-env:
  file.managed:
    - name: /etc/default/prometheus-postgres-exporter
    - mode: '0600'
    - show_changes: False
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        DATA_SOURCE_NAME='host=/var/run/postgresql port={{ pg.pg_port }} user={{ pg.pg_monitor_username }} password={{ pg.pg_monitor_password }} dbname=postgres sslmode=disable'
        ARGS="--web.listen-address={{ pg.node_ip }}:{{ pg.pg_exporter_port }}"
    - require:
      - pkg: pgsql-packages

pg-exporter-service:
  service.running:
    - name: prometheus-postgres-exporter
    - enable: True
    - watch:
      - file: pg-exporter-env

# Runs as the postgres OS user and reads pgbouncer's console over the local socket (peer
# authentication): no password involved.
pgbouncer-exporter-config:
  file.managed:
    - name: /etc/prometheus-pgbouncer-exporter.conf
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        host = {{ pg.node_ip }}
        port = {{ pg.pgbouncer_exporter_port }}
        pgbouncer-port = {{ pg.pgbouncer_port }}
        pgbouncer-user = {{ pg.pg_dbsu }}
        pgbouncer-host = /var/run/postgresql
    - require:
      - pkg: pgsql-packages

# It exits when pgbouncer is not up yet: let systemd bring it back.
pgbouncer-exporter-unit:
  file.managed:
    - name: /etc/systemd/system/prometheus-pgbouncer-exporter.service.d/pigsty.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        [Service]
        Restart=always
        RestartSec=2
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: pgbouncer-exporter-unit

pgbouncer-exporter-service:
  service.running:
    - name: prometheus-pgbouncer-exporter
    - enable: True
    - watch:
      - file: pgbouncer-exporter-config
      - file: pgbouncer-exporter-unit
