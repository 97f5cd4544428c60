{#- The backup repository on the meta node (the first meta node of the inventory): the
    dbsu owns the repository directory and runs pgBackRest's TLS server, which
    the database nodes push WAL to (archive-push) and restore from, each authorised by its
    certificate's CN for its own cluster's stanza. Backups run here (pigsty_backup.backup).
    Database nodes are named in /etc/hosts: pgBackRest 2.45 checks a peer's certificate by
    DNS name, not by address. docs/backup.md. -#}
{%- set b = salt['pigsty_backup.settings']() %}
{%- if b.is_repo_host %}
include:
  - node.pki

pgbackrest-repo-package:
  pkg.installed:
    - name: pgbackrest

# The dbsu owns the repository (pg-meta's own instance on this node archives into it
# directly) and is in the node key's group (PKI contract: ssl-cert). Debian's postgresql
# package creates the same user when it is installed later (or first).
pgbackrest-repo-user:
  user.present:
    - name: {{ b.pg_dbsu }}
    - system: True
    - home: /var/lib/postgresql
    - shell: /bin/bash
    - groups: [{{ salt['pigsty_pki.request']().group }}]
    - remove_groups: False
    - require:
      - group: pki-group

pgbackrest-repo-dir:
  file.directory:
    - name: {{ b.repo.path }}
    - user: {{ b.pg_dbsu }}
    - group: {{ b.pg_dbsu }}
    - mode: '0750'
    - makedirs: True
    - require:
      - user: pgbackrest-repo-user

pgbackrest-repo-log-dir:
  file.directory:
    - name: {{ b.pgbackrest_log_dir }}
    - user: {{ b.pg_dbsu }}
    - group: {{ b.pg_dbsu }}
    - mode: '0750'
    - makedirs: True
    - require:
      - user: pgbackrest-repo-user

{%- for peer, ip in salt['pigsty_backup.peers']() | dictsort %}
pgbackrest-peer-{{ peer }}:
  host.present:
    - name: {{ peer }}
    - ip: {{ ip }}
{%- endfor %}

pgbackrest-repo-config:
  file.managed:
    - name: /etc/pgbackrest/pgbackrest.conf
    - contents: {{ salt['pigsty_backup.config']() | json }}
    - user: root
    - group: {{ b.pg_dbsu }}
    - mode: '0640'
    - makedirs: True
    - require:
      - pkg: pgbackrest-repo-package
      - user: pgbackrest-repo-user

pgbackrest-repo-server-unit:
  file.managed:
    - name: /etc/systemd/system/pgbackrest.service
    - source: salt://pgsql/files/pgbackrest-server.service.jinja
    - template: jinja
    - context: {role: 'repository host', user: {{ b.pg_dbsu }}, group: {{ b.pg_dbsu }}}
    - mode: '0644'

pgbackrest-repo-server:
  service.running:
    - name: pgbackrest
    - enable: True
    - require:
      - file: pgbackrest-repo-dir
      - file: pgbackrest-repo-log-dir
    - watch:
      - file: pgbackrest-repo-config
      - file: pgbackrest-repo-server-unit
      - x509: pki-node-cert          # a renewed certificate is loaded by a restart
{%- endif %}
{%- if b.is_repo_host %}

# Backup metrics (pigsty_backup_*, docs/backup.md): a text file that the master's scheduler
# rewrites every minute (pigsty_backup.metrics -> pigsty_backup.publish_metrics here),
# served by a node_exporter with its textfile collector only, on loopback; this node's
# Prometheus scrapes it (job backup).
pgbackrest-metrics-package:
  pkg.installed:
    - name: prometheus-node-exporter
{%-   if not b.pg_cluster %}

# the package's own node_exporter (every collector, every address, plain HTTP) is the
# pgsql role's to configure (pgsql.monitor, HTTPS); a meta node without a cluster keeps it off
pgbackrest-metrics-node-exporter-off:
  service.dead:
    - name: prometheus-node-exporter
    - enable: False
    - require:
      - pkg: pgbackrest-metrics-package
{%-   endif %}

pgbackrest-metrics-dir:
  file.directory:
    - name: {{ b.metrics_dir }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True

pgbackrest-metrics-exporter-unit:
  file.managed:
    - name: /etc/systemd/system/pigsty-backup-exporter.service
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        [Unit]
        Description=Backup metrics of the pgBackRest repository for Prometheus (Pigsty on Salt)
        After=network.target

        [Service]
        User=prometheus
        ExecStart={{ b.metrics_exporter }}
        Restart=always
        RestartSec=2

        [Install]
        WantedBy=multi-user.target
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: pgbackrest-metrics-exporter-unit

pgbackrest-metrics-exporter:
  service.running:
    - name: pigsty-backup-exporter
    - enable: True
    - require:
      - pkg: pgbackrest-metrics-package
      - file: pgbackrest-metrics-dir
    - watch:
      - file: pgbackrest-metrics-exporter-unit
{%- endif %}
