{%- set dcs = salt['pigsty.dcs']() %}
# DCS: etcd on the meta nodes ({{ dcs.members | length }} member(s)). The config is written
# before the package is installed, so Debian's postinst starts etcd with it. The v2 API is
# enabled because Debian's vip-manager 1.0.2 reads the leader key through it.
{%- if dcs.type == 'consul' %}
# dcs_type consul: Patroni and vip-manager use the Consul the user runs (consul_hosts);
# nothing is installed here (Debian 12 has no Consul package). Only its health is checked.
dcs-consul-reachable:
  test.configurable_test_state:
    - name: consul at {{ dcs.consul_hosts | join(', ') }}
    - changes: False
    - result: {{ salt['pigsty_dcs.health']().values() | list | select | list | length > 0 }}
    - comment: Consul leader found through {{ salt['pigsty_dcs.health']() | json }}
{%- elif dcs.name %}
{%- set me = (dcs.members | selectattr('name', 'equalto', dcs.name) | first) %}
etcd-config:
  file.managed:
    - name: /etc/default/etcd
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        ETCD_NAME="{{ dcs.name }}"
        ETCD_DATA_DIR="/var/lib/etcd/pigsty"
        ETCD_LISTEN_CLIENT_URLS="http://{{ me.ip }}:{{ dcs.client_port }},http://127.0.0.1:{{ dcs.client_port }}"
        ETCD_ADVERTISE_CLIENT_URLS="http://{{ me.ip }}:{{ dcs.client_port }}"
        ETCD_LISTEN_PEER_URLS="http://{{ me.ip }}:{{ dcs.peer_port }}"
        ETCD_INITIAL_ADVERTISE_PEER_URLS="http://{{ me.ip }}:{{ dcs.peer_port }}"
        ETCD_INITIAL_CLUSTER="{% for m in dcs.members %}{{ m.name }}=http://{{ m.ip }}:{{ dcs.peer_port }}{{ ',' if not loop.last }}{% endfor %}"
        ETCD_INITIAL_CLUSTER_STATE="new"
        ETCD_INITIAL_CLUSTER_TOKEN="pigsty"
        ETCD_ENABLE_V2="true"
        ETCD_AUTO_COMPACTION_RETENTION="1"
        ETCD_QUOTA_BACKEND_BYTES="4294967296"

etcd-packages:
  pkg.installed:
    - pkgs:
      - etcd-server
      - etcd-client
    - require:
      - file: etcd-config

etcd-service:
  service.running:
    - name: etcd
    - enable: True
    - watch:
      - file: etcd-config
    - require:
      - pkg: etcd-packages

etcd-healthy:
  pigsty_wait.http:
    - name: http://{{ me.ip }}:{{ dcs.client_port }}/health
    - match: '"health":"true"'
    - timeout: 60
    - require:
      - service: etcd-service
{%- endif %}
