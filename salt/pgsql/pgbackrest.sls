{#- Backups of this node's cluster with pgBackRest (docs/backup.md): the package, the
    configuration (repository on the meta node, over TLS), the TLS server the repository
    host connects to for backups, and the name of the repository host in /etc/hosts
    (pgBackRest 2.45 checks a peer's certificate by DNS name, not by address). WAL
    archiving itself is in Patroni's config (pgsql.patroni). The stanza is created on the
    repository host (orch.pgsql, pigsty_backup.backup): pgBackRest runs it there only. -#}
{%- from 'pgsql/map.jinja' import pg with context %}
{#- on the repository host itself (pg-meta on meta) infra.backup_repo manages it all #}
{%- if pg.pgbackrest_enabled and not salt['pigsty_backup.settings']().is_repo_host %}
include:
  - node.pki
  - pgsql.install

{%- for peer, ip in salt['pigsty_backup.peers']() | dictsort %}
pgbackrest-peer-{{ peer }}:
  host.present:
    - name: {{ peer }}
    - ip: {{ ip }}
{%- endfor %}

pgbackrest-log-dir:
  file.directory:
    - name: {{ pg.pgbackrest_log_dir }}
    - user: {{ pg.pg_dbsu }}
    - group: {{ pg.pg_dbsu }}
    - mode: '0750'
    - makedirs: True
    - require:
      - pkg: pgsql-packages

pgbackrest-config:
  file.managed:
    - name: /etc/pgbackrest/pgbackrest.conf
    - contents: {{ salt['pigsty_backup.config']() | json }}
    - user: root
    - group: {{ pg.pg_dbsu }}
    - mode: '0640'
    - makedirs: True
    - require:
      - pkg: pgsql-packages

pgbackrest-server-unit:
  file.managed:
    - name: /etc/systemd/system/pgbackrest.service
    - source: salt://pgsql/files/pgbackrest-server.service.jinja
    - template: jinja
    - context: {role: 'database node', user: {{ pg.pg_dbsu }}, group: {{ pg.pg_dbsu }}}
    - mode: '0644'

# The node certificate (salt/node/pki.sls, state pki-node-cert) is the server's and the
# client's identity; its key is readable by the PKI group (ssl-cert). Debian's postgresql
# package puts postgres in it when the group exists first; this makes sure either way.
pgbackrest-key-access:
  group.present:
    - name: {{ salt['pigsty_pki.request']().group }}
    - addusers: [{{ pg.pg_dbsu }}]
    - require:
      - group: pki-group
      - pkg: pgsql-packages

pgbackrest-server:
  service.running:
    - name: pgbackrest
    - enable: True
    - require:
      - file: pgbackrest-log-dir
    - watch:
      - group: pgbackrest-key-access
      - file: pgbackrest-config
      - file: pgbackrest-server-unit
      - x509: pki-node-cert          # a renewed certificate is loaded by a restart
{%- endif %}
