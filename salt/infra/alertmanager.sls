{%- from 'infra/map.jinja' import infra with context %}
# Alertmanager on 127.0.0.1:{{ infra.alertmanager_port }} (loopback only: this node's Prometheus
# sends to it, people reach it through the portal over HTTPS with its login): routes the
# alerts with pillar's alertmanager_route to alertmanager_receivers. Single instance per meta
# node (no HA gossip: with several meta nodes, each pair notifies on its own).
alertmanager-package:
  pkg.installed:
    - name: prometheus-alertmanager

alertmanager-args:
  file.managed:
    - name: /etc/default/prometheus-alertmanager
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        ARGS="--web.listen-address=127.0.0.1:{{ infra.alertmanager_port }} --cluster.listen-address= --storage.path=/var/lib/prometheus/alertmanager/"
    - require:
      - pkg: alertmanager-package

alertmanager-config:
  file.managed:
    - name: /etc/prometheus/alertmanager.yml
    - contents: {{ salt['pigsty.alertmanager_config']() | json }}
    - check_cmd: /usr/bin/amtool check-config
    - require:
      - pkg: alertmanager-package

alertmanager-service:
  service.running:
    - name: prometheus-alertmanager
    - enable: True
    - watch:
      - file: alertmanager-args

alertmanager-ready:
  pigsty_wait.http:
    - name: http://127.0.0.1:{{ infra.alertmanager_port }}/-/ready
    - status: 200
    - timeout: 60
    - require:
      - service: alertmanager-service

# reload only once the daemon answers: a SIGHUP before its handler is set kills it
alertmanager-reload:
  module.run:
    - name: service.reload
    - m_name: prometheus-alertmanager
    - onchanges:
      - file: alertmanager-config
    - require:
      - pigsty_wait: alertmanager-ready
