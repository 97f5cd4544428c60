{%- from 'infra/map.jinja' import infra with context %}
# Alertmanager on 127.0.0.1:{{ infra.alertmanager_port }} (loopback only: this node's Prometheus
# sends to it, people reach it through the portal over HTTPS with its login): routes the
# alerts with pillar's alertmanager_route to alertmanager_receivers. With several meta nodes
# the Alertmanagers form a cluster (gossip on <node ip>:9094, mutual TLS with the nodes'
# certificates): each Prometheus sends to its own, and an alert is notified once.
{%- set cluster = salt['pigsty.alertmanager_cluster']() %}
alertmanager-package:
  pkg.installed:
    - name: prometheus-alertmanager

alertmanager-args:
  file.managed:
    - name: /etc/default/prometheus-alertmanager
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        ARGS="--web.listen-address=127.0.0.1:{{ infra.alertmanager_port }} {{ cluster.args | join(' ') }} --storage.path=/var/lib/prometheus/alertmanager/"
    - require:
      - pkg: alertmanager-package
      - file: alertmanager-cluster-tls

alertmanager-cluster-tls:
{%- if cluster.tls %}
  file.managed:
    - name: {{ cluster.tls_path }}
    - contents: {{ cluster.tls | yaml(False) | json }}
    - mode: '0644'
    - require:
      - pkg: alertmanager-package
{%- else %}
  file.absent:
    - name: {{ cluster.tls_path }}
{%- endif %}

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
      - file: alertmanager-cluster-tls

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
