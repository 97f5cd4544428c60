{%- from 'pgsql/map.jinja' import pg with context %}
{%- set tls = salt['pigsty_pki.exporter_tls']() %}
# Exporters on the node address: node {{ pg.node_exporter_port }}, postgres
# {{ pg.pg_exporter_port }}, pgbouncer {{ pg.pgbouncer_exporter_port }}. HTTPS only, with the node
# certificate (node.pki), and a client certificate of the Pigsty CA required: Prometheus
# presents its meta node's (_utils/pigsty_exporter_tls.py, docs/security.md). Renewed
# certificates are loaded again by the exporters themselves, at the next connection.
include:
  - pgsql.install
  - node.pki

# The exporters read the node key, 0640 root:ssl-cert (node.pki): Debian's node and postgres
# exporters run as prometheus, the role's pgbouncer exporter as the dbsu. A running process
# gets a new group on its restart (watch).
exporters-read-node-key:
  group.present:
    - name: {{ salt['pigsty_pki.request']().group }}
    - system: True
    - addusers:
      - prometheus
      - {{ pg.pg_dbsu }}
    - require:
      - pkg: pgsql-packages
      - group: pki-group

# exporter-toolkit's web configuration (node and postgres exporters): paths only, no secret
exporter-web-config:
  file.managed:
    - name: {{ tls.web_config_path }}
    - contents: {{ tls.web_config | json }}
    - user: root
    - group: prometheus
    - mode: '0640'
    - makedirs: True
    - require:
      - pkg: pgsql-packages
      - x509: pki-node-cert

node-exporter-args:
  file.managed:
    - name: /etc/default/prometheus-node-exporter
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        ARGS="--web.listen-address={{ pg.node_ip }}:{{ pg.node_exporter_port }} --web.config.file={{ tls.web_config_path }} --collector.systemd --collector.processes"
    - require:
      - pkg: pgsql-packages

node-exporter-service:
  service.running:
    - name: prometheus-node-exporter
    - enable: True
    - watch:
      - file: node-exporter-args
      - file: exporter-web-config
      - group: exporters-read-node-key

# Queries on top of the exporter's defaults (salt://pgsql/files/pg_exporter_queries.yml:
# replication, slots, WAL, checkpoints, archiver, locks, transaction age, tables, bloat,
# pg_stat_statements). The exporter discovers the databases: per-table queries run in each.
pg-exporter-queries:
  file.managed:
    - name: /etc/pigsty/pg_exporter_queries.yml
    - source: salt://pgsql/files/pg_exporter_queries.yml
    - makedirs: True
    - mode: '0644'

# The monitor password is in a libpq password file that only the exporter's user
# (Debian's unit: prometheus) reads, with '\\' and ':' escaped as libpq reads them; the DSN
# names no password. Exporter 0.11 splits its DSN on spaces (a password with a space breaks
# it, in every DSN form) and then logs the whole DSN, so the password must not be in it.
# Validation (pigsty_syntax) refuses control characters, which no pgpass line can carry.
pg-exporter-pgpass:
  file.managed:
    - name: /etc/pigsty/pg_exporter.pgpass
    - user: prometheus
    - group: prometheus
    - mode: '0600'
    - makedirs: True
    - show_changes: False
    - contents: |
        *:{{ pg.pg_port }}:*:{{ pg.pg_monitor_username }}:{{ pg.pg_monitor_password | replace('\\', '\\\\') | replace(':', '\\:') }}
    - require:
      - pkg: pgsql-packages

# Read by systemd (root): no secret in it, and none on a command line.
pg-exporter-env:
  file.managed:
    - name: /etc/default/prometheus-postgres-exporter
    - mode: '0600'
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        DATA_SOURCE_NAME='host=/var/run/postgresql port={{ pg.pg_port }} user={{ pg.pg_monitor_username }} dbname=postgres sslmode=disable'
        PGPASSFILE=/etc/pigsty/pg_exporter.pgpass
        ARGS="--web.listen-address={{ pg.node_ip }}:{{ pg.pg_exporter_port }} --web.config.file={{ tls.web_config_path }} --extend.query-path=/etc/pigsty/pg_exporter_queries.yml --auto-discover-databases --exclude-databases=template0,template1"
    - require:
      - pkg: pgsql-packages

pg-exporter-service:
  service.running:
    - name: prometheus-postgres-exporter
    - enable: True
    - watch:
      - file: pg-exporter-env
      - file: pg-exporter-pgpass
      - file: pg-exporter-queries
      - file: exporter-web-config
      - group: exporters-read-node-key

# Debian's prometheus-pgbouncer-exporter crashes against Debian's pgbouncer 1.18, so the
# role ships its own (salt://pgsql/files/pgbouncer_exporter.py). It runs as the dbsu and
# reads pgbouncer's console over the local socket (peer authentication): no password.
debian-pgbouncer-exporter-off:
  service.dead:
    - name: prometheus-pgbouncer-exporter
    - enable: False
    - require:
      - pkg: pgsql-packages

pgbouncer-exporter-script:
  file.managed:
    - name: /usr/local/bin/pigsty-pgbouncer-exporter
    - source: salt://pgsql/files/pgbouncer_exporter.py
    - mode: '0755'

pgbouncer-exporter-unit:
  file.managed:
    - name: /etc/systemd/system/pigsty-pgbouncer-exporter.service
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        [Unit]
        Description=Prometheus exporter for pgbouncer (Pigsty on Salt)
        After=network.target pgbouncer.service

        [Service]
        User={{ pg.pg_dbsu }}
        ExecStart=/usr/local/bin/pigsty-pgbouncer-exporter --listen {{ pg.node_ip }}:{{ pg.pgbouncer_exporter_port }} --port {{ pg.pgbouncer_port }} --user {{ pg.pg_dbsu }} {{ tls.pgbouncer_flags }}
        Restart=always
        RestartSec=2

        [Install]
        WantedBy=multi-user.target
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: pgbouncer-exporter-unit

pgbouncer-exporter-service:
  service.running:
    - name: pigsty-pgbouncer-exporter
    - enable: True
    - require:
      - service: debian-pgbouncer-exporter-off
      - x509: pki-node-cert
    - watch:
      - file: pgbouncer-exporter-script
      - file: pgbouncer-exporter-unit
      - group: exporters-read-node-key
