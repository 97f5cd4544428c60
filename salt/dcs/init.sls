{%- set dcs = salt['pigsty.dcs']() %}
# DCS: etcd on the meta nodes ({{ dcs.members | length }} member(s)). The config is written
# before the package is installed, so Debian's postinst starts etcd with it. The v2 API is
# enabled because Debian's vip-manager 1.0.2 reads the leader key through it.
# etcd speaks TLS only, with the node certificate of node.pki (the contract in
# docs/security.md): clients and peers over https with a client certificate signed by the
# Pigsty CA. A client without an Authorization header is the v2 user named like its
# certificate's CN (the database nodes' users: pigsty_etcd.auth); root logs in with its password.
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
include:
  - node.pki

etcd-config:
  file.managed:
    - name: /etc/default/etcd
    - mode: '0644'
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        ETCD_NAME="{{ dcs.name }}"
        ETCD_DATA_DIR="/var/lib/etcd/pigsty"
        ETCD_LISTEN_CLIENT_URLS="https://{{ me.ip }}:{{ dcs.client_port }},https://127.0.0.1:{{ dcs.client_port }}"
        ETCD_ADVERTISE_CLIENT_URLS="https://{{ me.ip }}:{{ dcs.client_port }}"
        ETCD_LISTEN_PEER_URLS="https://{{ me.ip }}:{{ dcs.peer_port }}"
        ETCD_INITIAL_ADVERTISE_PEER_URLS="https://{{ me.ip }}:{{ dcs.peer_port }}"
        ETCD_INITIAL_CLUSTER="{% for m in dcs.members %}{{ m.name }}=https://{{ m.ip }}:{{ dcs.peer_port }}{{ ',' if not loop.last }}{% endfor %}"
        ETCD_INITIAL_CLUSTER_STATE="new"
        ETCD_INITIAL_CLUSTER_TOKEN="pigsty"
        ETCD_ENABLE_V2="true"
        ETCD_AUTO_COMPACTION_RETENTION="1"
        ETCD_QUOTA_BACKEND_BYTES="4294967296"
        # clients: mutual TLS; the certificate's CN names the v2 user of a request that
        # carries no password (no bcrypt per request, as a password costs in the v2 API)
        ETCD_CERT_FILE="{{ dcs.cert }}"
        ETCD_KEY_FILE="{{ dcs.key }}"
        ETCD_TRUSTED_CA_FILE="{{ dcs.ca }}"
        ETCD_CLIENT_CERT_AUTH="true"
        # peers: mutual TLS with certificates of the Pigsty CA
        ETCD_PEER_CERT_FILE="{{ dcs.cert }}"
        ETCD_PEER_KEY_FILE="{{ dcs.key }}"
        ETCD_PEER_TRUSTED_CA_FILE="{{ dcs.ca }}"
        ETCD_PEER_CLIENT_CERT_AUTH="true"
{%- if dcs.members | length == 1 %}
        # one member: no other node's certificate may open a peer connection
        ETCD_PEER_CERT_ALLOWED_CN="{{ dcs.name }}"
{%- endif %}
    - require:
      - x509: pki-node-cert

etcd-packages:
  pkg.installed:
    - pkgs:
      - etcd-server
      - etcd-client
    - require:
      - file: etcd-config

# etcd (user etcd) reads the node key: 0640 root:ssl-cert
etcd-reads-node-key:
  group.present:
    - name: ssl-cert
    - system: True
    - addusers:
      - etcd
    - require:
      - pkg: etcd-packages
      - group: pki-group

etcd-service:
  service.running:
    - name: etcd
    - enable: True
    - watch:
      - file: etcd-config
      - group: etcd-reads-node-key
      - x509: pki-node-cert
    - require:
      - pkg: etcd-packages

etcd-healthy:
  pigsty_wait.http:
    - name: https://{{ me.ip }}:{{ dcs.client_port }}/health
    - ca_file: {{ dcs.ca }}
    - cert_file: {{ dcs.cert }}
    - key_file: {{ dcs.key }}
    - match: '"health":"true"'
    - timeout: 60
    - require:
      - service: etcd-service

{%- if dcs.auth %}

# A user and role per cluster (its own Patroni prefix), root, guest closed, then
# authentication on (v2 and v3). Passwords from this node's pillar (pillar/dcs*.sls).
etcd-auth:
  pigsty_etcd.auth:
    - name: https://127.0.0.1:{{ dcs.client_port }}
    - ca_file: {{ dcs.ca }}
    - cert_file: {{ dcs.cert }}
    - key_file: {{ dcs.key }}
    - require:
      - pigsty_wait: etcd-healthy
{%- endif %}
{%- endif %}
