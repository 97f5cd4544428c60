{%- from 'infra/map.jinja' import infra with context %}
# Prometheus on {{ infra.prometheus_port }}: scrapes every database node's exporters
# (node, postgres, pgbouncer, HAProxy, Patroni) from file_sd targets, one JSON file per cluster,
# and the infra (itself, Alertmanager, etcd). A config or rule file that promtool rejects is
# never installed (check_cmd).
prometheus-package:
  pkg.installed:
    - name: prometheus

prometheus-args:
  file.managed:
    - name: /etc/default/prometheus
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        ARGS="--web.listen-address=:{{ infra.prometheus_port }} --storage.tsdb.retention.time={{ infra.prometheus_retention }}"
    - require:
      - pkg: prometheus-package

prometheus-target-dirs:
  file.directory:
    - names:
      - /etc/prometheus/targets/pgsql
      - /etc/prometheus/targets/infra
      - /etc/prometheus/rules
    - makedirs: True
    - require:
      - pkg: prometheus-package
{%- set files = salt['pigsty.prometheus_targets']() %}
{%- for path, text in files | dictsort %}

prometheus-targets-{{ path }}:
  file.managed:
    - name: {{ path }}
    - contents: {{ text | json }}
    - require:
      - file: prometheus-target-dirs
    - require_in:
      - file: prometheus-targets-clean
{%- endfor %}

# targets of clusters no longer in pillar go away, and so do the YAML target files of
# earlier versions (the targets are JSON files now: *.json is what prometheus.yml reads)
prometheus-targets-clean:
  file.directory:
    - names:
      - /etc/prometheus/targets/pgsql
      - /etc/prometheus/targets/infra
    - clean: True

prometheus-rules:
  file.managed:
    - name: /etc/prometheus/rules/pigsty.yml
    - contents: {{ salt['pigsty.prometheus_rules']() | json }}
    - check_cmd: /usr/bin/promtool check rules
    - require:
      - file: prometheus-target-dirs

prometheus-config:
  file.managed:
    - name: /etc/prometheus/prometheus.yml
    - contents: {{ salt['pigsty.prometheus_config']() | json }}
    - check_cmd: /usr/bin/promtool check config
    - require:
      - file: prometheus-rules

prometheus-service:
  service.running:
    - name: prometheus
    - enable: True
    - watch:
      - file: prometheus-args

prometheus-ready:
  pigsty_wait.http:
    - name: http://127.0.0.1:{{ infra.prometheus_port }}/-/ready
    - status: 200
    - timeout: 60
    - require:
      - service: prometheus-service

# config and rules reload online (SIGHUP), once the daemon answers (a SIGHUP before its
# handler is set kills it); the arguments above restart it
prometheus-reload:
  module.run:
    - name: service.reload
    - m_name: prometheus
    - onchanges:
      - file: prometheus-config
      - file: prometheus-rules
    - require:
      - pigsty_wait: prometheus-ready
