{%- from 'infra/map.jinja' import infra with context %}
# A tiny webhook sink for Alertmanager (alert_sink_enabled): it appends every POSTed body
# as one JSON line to /var/lib/pigsty-alerts/alerts.jsonl, so tests and operators can see
# what Alertmanager sent. Listens on 127.0.0.1:{{ infra.alert_sink_port }} only (Alertmanager is on this node).
{%- if infra.alert_sink_enabled %}
alert-sink-script:
  file.managed:
    - name: /usr/local/bin/pigsty-alert-sink
    - source: salt://infra/files/alert_sink.py
    - mode: '0755'

alert-sink-unit:
  file.managed:
    - name: /etc/systemd/system/pigsty-alert-sink.service
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        [Unit]
        Description=Webhook sink for Alertmanager (Pigsty on Salt)
        After=network.target

        [Service]
        DynamicUser=yes
        StateDirectory=pigsty-alerts
        ExecStart=/usr/local/bin/pigsty-alert-sink --listen 127.0.0.1:{{ infra.alert_sink_port }} --file /var/lib/pigsty-alerts/alerts.jsonl
        Restart=always
        RestartSec=2

        [Install]
        WantedBy=multi-user.target
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: alert-sink-unit

alert-sink-service:
  service.running:
    - name: pigsty-alert-sink
    - enable: True
    - watch:
      - file: alert-sink-script
      - file: alert-sink-unit
{%- else %}
alert-sink-off:
  service.dead:
    - name: pigsty-alert-sink
    - enable: False
{%- endif %}
