{%- set logs = salt['pigsty_logs.config']() %}
# Logs: this node's journal (PostgreSQL through Patroni, Patroni, pgbouncer, HAProxy,
# vip-manager, etcd, exporters, Salt) goes to the first meta node with
# systemd-journal-upload, over HTTPS: it checks meta's certificate against the Pigsty CA
# ({{ logs.sink.url if logs.sink else 'log_collect is off' }}) and offers its node certificate.
# It keeps its place (--save-state): entries written while meta is away are sent later.
# `salt-run pigsty.logs cluster=NAME` reads them back on meta (_utils/pigsty_logs.py).
include:
  - node.pki

{%- if logs.enabled %}
node-logs-package:
  pkg.installed:
    - name: systemd-journal-remote

node-logs-upload-config:
  file.managed:
    - name: /etc/systemd/journal-upload.conf.d/pigsty.conf
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (Pigsty on Salt): upload this node's journal to the meta node
        [Upload]
        URL={{ logs.sink.url }}
        ServerKeyFile={{ logs.pki.node_key }}
        ServerCertificateFile={{ logs.pki.node_crt }}
        TrustedCertificateFile={{ logs.pki.ca_crt }}
    - require:
      - pkg: node-logs-package

# the service's dynamic user reads the node key through its group; it retries every 10 s
# while meta is unreachable (Debian's unit gives up after five quick failures)
node-logs-upload-unit:
  file.managed:
    - name: /etc/systemd/system/systemd-journal-upload.service.d/pigsty.conf
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        [Unit]
        StartLimitIntervalSec=0
        [Service]
        SupplementaryGroups=ssl-cert
        Restart=always
        RestartSec=10s

node-logs-upload:
  service.running:
    - name: systemd-journal-upload
    - enable: True
    - watch:
      - file: node-logs-upload-config
      - file: node-logs-upload-unit
      - x509: pki-node-cert
{%- else %}
node-logs-upload:
  service.dead:
    - name: systemd-journal-upload
    - enable: False
{%- endif %}
