{%- from 'infra/map.jinja' import infra with context %}
{%- set gf = salt['pigsty.grafana']() %}
# Grafana on {{ gf.port }}, provisioned with the Prometheus datasource and Pigsty's dashboards
# (salt://infra/files/dashboards). Debian 12 has no Grafana package: it is installed only
# when pillar names a source (grafana_repo: an apt line, or grafana_package_url: a .deb).
{%- if not gf.enabled %}
grafana-skipped:
  test.show_notification:
    - text: {{ gf.reason | json }}
{%- else %}
{%-   if gf.repo %}
grafana-apt-source:
  file.managed:
    - name: /etc/apt/sources.list.d/grafana.list
    - contents: |
        # Managed by Salt (Pigsty on Salt): pigsty:vars:grafana_repo
        {{ gf.repo }}

grafana-package:
  pkg.installed:
    - name: grafana
    - refresh: True
    - require:
      - file: grafana-apt-source
{%-   else %}
grafana-package:
  pkg.installed:
    - sources:
      - grafana: {{ gf.package_url | json }}
{%-   endif %}

grafana-datasource:
  file.managed:
    - name: /etc/grafana/provisioning/datasources/pigsty.yml
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        apiVersion: 1
        datasources:
          - name: Prometheus
            uid: prometheus
            type: prometheus
            access: proxy
            url: http://127.0.0.1:{{ infra.prometheus_port }}
            isDefault: true
            editable: false
    - makedirs: True
    - require:
      - pkg: grafana-package

grafana-dashboard-provider:
  file.managed:
    - name: /etc/grafana/provisioning/dashboards/pigsty.yml
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        apiVersion: 1
        providers:
          - name: pigsty
            folder: Pigsty
            type: file
            disableDeletion: true
            allowUiUpdates: false
            updateIntervalSeconds: 30
            options:
              path: /var/lib/grafana/dashboards/pigsty
    - makedirs: True
    - require:
      - pkg: grafana-package

grafana-dashboards:
  file.recurse:
    - name: /var/lib/grafana/dashboards/pigsty
    - source: salt://infra/files/dashboards
    - include_pat: '*.json'
    - clean: True
    - makedirs: True
    - require:
      - pkg: grafana-package

grafana-server-config:
  file.replace:
    - name: /etc/grafana/grafana.ini
    - pattern: '^;?http_port = .*$'
    - repl: 'http_port = {{ gf.port }}'
    - require:
      - pkg: grafana-package

# loopback only: people reach Grafana through the portal (https://g.pigsty/, its own login)
grafana-server-addr:
  file.replace:
    - name: /etc/grafana/grafana.ini
    - pattern: '^;?http_addr =.*$'
    - repl: 'http_addr = 127.0.0.1'
    - require:
      - pkg: grafana-package

grafana-service:
  service.running:
    - name: grafana-server
    - enable: True
    - watch:
      - file: grafana-datasource
      - file: grafana-dashboard-provider
      - file: grafana-server-config
      - file: grafana-server-addr

grafana-ready:
  pigsty_wait.http:
    - name: http://127.0.0.1:{{ gf.port }}/api/health
    - timeout: 60
    - require:
      - service: grafana-service

# the admin password of the meta nodes' private pillar, never Grafana's default
grafana-admin-password:
  pigsty_grafana.admin_password:
    - name: http://127.0.0.1:{{ gf.port }}
    - require:
      - pigsty_wait: grafana-ready
{%- endif %}
