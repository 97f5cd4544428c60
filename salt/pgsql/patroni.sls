{%- from 'pgsql/map.jinja' import pg with context %}
include:
  - pgsql.install
  - node.pki          # the node certificate Patroni's REST API serves (HTTPS)

pgsql-data-parent:
  file.directory:
    - name: {{ salt['file.dirname'](pg.pg_data) }}
    - user: {{ pg.pg_dbsu }}
    - group: postgres
    - mode: '0700'
    - require:
      - pkg: pgsql-packages

# Rendered from pillar by _utils/pigsty_pgsql.py; holds the replication password, so the
# diff is never shown.
patroni-config:
  file.managed:
    - name: /etc/patroni/config.yml
    - source: salt://pgsql/files/patroni.yml.jinja
    - template: jinja
    - user: {{ pg.pg_dbsu }}
    - group: postgres
    - mode: '0600'
    - show_changes: False
    - require:
      - pkg: pgsql-packages
      - x509: pki-node-cert       # PostgreSQL's ssl_cert_file / ssl_key_file, Patroni's REST

{%- if pg.pg_role != 'primary' %}
# A replica starts only once its cluster has a leader, so it can never win the bootstrap
# race against the intended primary.
patroni-cluster-has-leader:
  patroni.leader_present:
    - name: {{ pg.pg_cluster }}
    - members: {{ pg.pg_members | map(attribute='ip') | list | json }}
    - port: {{ pg.patroni_port }}
    - timeout: 300
    - require_in:
      - service: patroni-service
{%- endif %}

patroni-service:
  service.running:
    - name: patroni
    - enable: True
    - reload: True
    - require:
      - file: pgsql-data-parent
    - watch:
      - file: patroni-config
      # a renewed certificate: Patroni serves it after a reload (SIGHUP)
      - x509: pki-node-cert

# PostgreSQL re-reads its certificate and key on a reload; Patroni reloads it only when its
# settings change, and a renewal keeps the file names. Skipped while it is not up yet (it
# then starts with the new files anyway).
pgsql-ssl-reload:
  cmd.run:
    - name: psql -X -q -c 'SELECT pg_reload_conf()'
    - runas: {{ pg.pg_dbsu }}
    - onlyif: pg_isready -q -h /var/run/postgresql -p {{ pg.pg_port }}
    - onchanges:
      - x509: pki-node-cert
    - require:
      - service: patroni-service

patroni-running:
  patroni.running:
    - name: {{ pg.pg_instance }}
    - port: {{ pg.patroni_port }}
    - timeout: 300
    - require:
      - service: patroni-service

patroni-dcs-config:
  patroni.dcs_config:
    - name: {{ pg.pg_cluster }}
    - config: {{ salt['pigsty.dcs_config']() | json }}
    - port: {{ pg.patroni_port }}
    - require:
      - patroni: patroni-running
