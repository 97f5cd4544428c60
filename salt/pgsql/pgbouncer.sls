{%- from 'pgsql/map.jinja' import pg with context %}
# Pgbouncer on {{ pg.pgbouncer_port }}: databases and users from pillar. The userlist holds
# SCRAM verifiers, never plain passwords: the very verifiers the local Postgres stores (read
# from pg_authid and checked against the pillar password), so clients log in with SCRAM and
# pgbouncer passes the authentication through to Postgres. A verifier that still matches is
# kept, so a re-apply changes nothing. pgsql.user runs first (init.sls) on the primary.
include:
  - pgsql.install
  - node.pki

pgbouncer-config:
  file.managed:
    - name: /etc/pgbouncer/pgbouncer.ini
    - source: salt://pgsql/files/pgbouncer.ini.jinja
    - template: jinja
    - user: {{ pg.pg_dbsu }}
    - group: postgres
    - mode: '0640'
    - require:
      - pkg: pgsql-packages
      - x509: pki-node-cert       # client_tls_cert_file / key_file, server_tls_ca_file

pgbouncer-databases:
  file.managed:
    - name: /etc/pgbouncer/database.txt
    - contents: {{ salt['pigsty.pgbouncer']()['database_file'] | yaml_dquote }}
    - user: {{ pg.pg_dbsu }}
    - group: postgres
    - mode: '0640'
    - require:
      - pkg: pgsql-packages

pgbouncer-hba:
  file.managed:
    - name: /etc/pgbouncer/pgb_hba.conf
    - source: salt://pgsql/files/pgb_hba.conf.jinja
    - template: jinja
    - user: {{ pg.pg_dbsu }}
    - group: postgres
    - mode: '0640'
    - require:
      - pkg: pgsql-packages

pgbouncer-userlist:
  file.managed:
    - name: /etc/pgbouncer/userlist.txt
    - source: salt://pgsql/files/userlist.txt.jinja
    - template: jinja
    - user: {{ pg.pg_dbsu }}
    - group: postgres
    - mode: '0600'
    - show_changes: False
    - require:
      - pkg: pgsql-packages

pgbouncer-service:
  service.running:
    - name: pgbouncer
    - enable: True
    - require:
      - file: pgbouncer-config

# Databases, HBA and users change online: RELOAD through the admin console. Only a change
# of pgbouncer.ini itself (listen address, port, pool settings) restarts pgbouncer.
pgbouncer-reload:
  module.run:
    - name: pgbouncer.reload
    - port: {{ pg.pgbouncer_port }}
    - wait: 30        # a restart just before: its console may not accept yet
    - onchanges:
      - file: pgbouncer-databases
      - file: pgbouncer-hba
      - file: pgbouncer-userlist
      - x509: pki-node-cert       # RELOAD re-reads the TLS files (a renewed certificate)
    - require:
      - module: pgbouncer-restart-on-config   # a new pgbouncer.ini (first run) restarts first

pgbouncer-restart-on-config:
  module.run:
    - name: service.restart
    - m_name: pgbouncer
    - onchanges:
      - file: pgbouncer-config
    - require:
      - service: pgbouncer-service
