{%- set logs = salt['pigsty_logs.config']() %}
# Logs of every node, received on the first meta node by systemd-journal-remote over HTTPS
# (port {{ logs.sink.port if logs.sink else '-' }}, the node certificate of node.pki); each sender's entries go to
# {{ logs.remote_dir }}/remote-<its address>.journal. Debian 12's journal-remote cannot check client
# certificates ("Option --trust is not available"): the address says who sent what, and
# pigsty.logs reads only the inventory's addresses (docs/security.md).
# Retention: the master's schedule runs pigsty.logs_vacuum hourly (journalctl's vacuum:
# {{ logs.retention_size }}, {{ logs.retention_time }}); systemd 252's journal-remote has no limit of its own.
include:
  - node.pki

{%- if logs.enabled and logs.is_sink %}
infra-logs-package:
  pkg.installed:
    - name: systemd-journal-remote

infra-logs-remote-config:
  file.managed:
    - name: /etc/systemd/journal-remote.conf.d/pigsty.conf
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (Pigsty on Salt): receive every node's journal
        [Remote]
        SplitMode=host
        ServerKeyFile={{ logs.pki.node_key }}
        ServerCertificateFile={{ logs.pki.node_crt }}
    - require:
      - pkg: infra-logs-package

infra-logs-remote-unit:
  file.managed:
    - name: /etc/systemd/system/systemd-journal-remote.service.d/pigsty.conf
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (Pigsty on Salt): the service's user reads the node key through its group
        [Service]
        SupplementaryGroups=ssl-cert

infra-logs-socket-unit:
  file.managed:
    - name: /etc/systemd/system/systemd-journal-remote.socket.d/pigsty.conf
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (Pigsty on Salt): log_port, IPv4 (senders are named by their address)
        [Socket]
        ListenStream=
        ListenStream=0.0.0.0:{{ logs.sink.port }}

infra-logs-socket:
  service.running:
    - name: systemd-journal-remote.socket
    - enable: True
    - watch:
      - file: infra-logs-socket-unit

infra-logs-remote:
  service.running:
    - name: systemd-journal-remote
    - enable: True
    - require:
      - service: infra-logs-socket
    - watch:
      - file: infra-logs-remote-config
      - file: infra-logs-remote-unit
      - x509: pki-node-cert
{%- else %}
infra-logs-remote:
  service.dead:
    - name: systemd-journal-remote
    - enable: False

infra-logs-socket:
  service.dead:
    - name: systemd-journal-remote.socket
    - enable: False
{%- endif %}
