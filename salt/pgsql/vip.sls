{%- from 'pgsql/map.jinja' import pg with context %}
# L2 VIP that follows the primary, without the Salt master: vip-manager watches Patroni's
# leader key in etcd and holds the VIP only on the node whose instance is the leader.
# Debian's vip-manager 1.0.2 reads the etcd v2 API (Patroni runs on `etcd:`, etcd has v2 on),
# over https with the Pigsty CA and the node certificate: etcd takes it as this node's etcd
# user, which holds the cluster's role (no password: _utils/pigsty_etcd.py).
include:
  - pgsql.install
{%- if pg.pg_vip_enabled %}

vip-manager-config:
  file.managed:
    - name: /etc/vip-manager.yml
    # root only, and no diff in the state's output (it held the cluster's etcd password once)
    - mode: '0600'
    - user: root
    - group: root
    - show_changes: False
    - contents: |
        # Managed by Salt (Pigsty on Salt): VIP of {{ pg.pg_cluster }}
{%- for key, value in salt['pigsty.vip_manager']() | dictsort %}
        {{ key }}: {{ value | json }}
{%- endfor %}
    - require:
      - pkg: pgsql-packages

vip-manager-unit:
  file.managed:
    - name: /etc/systemd/system/vip-manager.service.d/pigsty.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (Pigsty on Salt): read /etc/vip-manager.yml, always come back
        [Service]
        ExecStart=
        ExecStart=/usr/bin/vip-manager --config=/etc/vip-manager.yml
        Restart=always
        RestartSec=1
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: vip-manager-unit

vip-manager-service:
  service.running:
    - name: vip-manager
    - enable: True
    - watch:
      - file: vip-manager-config
      - file: vip-manager-unit
{%- else %}

vip-manager-service:
  service.dead:
    - name: vip-manager
    - enable: False
    - require:
      - pkg: pgsql-packages
{%- endif %}
