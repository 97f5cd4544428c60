{%- set dcs = salt['pigsty_dcs.layout']() %}
# DCS: etcd on {{ dcs.members | length }} member(s) (dcs_servers, or the meta nodes): the first
# bootstraps, the others join it as learners and are promoted (_utils/pigsty_etcd_members.py).
# The config is written before the package is installed, so Debian's postinst starts etcd
# with it. The v2 API is enabled because Debian's vip-manager 1.0.2 reads the leader key
# through it.
# etcd speaks TLS only: clients with the node certificate of node.pki (the contract in
# docs/security.md), peers with the etcd peer certificate that only the members get (one CN,
# the only one etcd admits on the peer port: a database node's own certificate opens no peer
# connection). A client without an Authorization header is the v2 user named like its
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

etcd-peer-key:
  x509.private_key_managed:
    - name: {{ dcs.peer_key }}
    - algo: rsa
    - keysize: 2048
    - user: root
    - group: {{ dcs.peer.group }}
    - mode: '0640'
    - require:
      - group: pki-group
      - file: pki-dir

etcd-peer-cert:
  x509.certificate_managed:
    - name: {{ dcs.peer_cert }}
    - private_key: {{ dcs.peer_key }}
{%- if dcs.peer.ca_server %}
    - ca_server: {{ dcs.peer.ca_server }}
{%- endif %}
    - signing_policy: {{ dcs.peer.signing_policy }}
    - CN: {{ dcs.peer.CN | json }}
    - subjectAltName: {{ dcs.peer.subjectAltName | json }}
    - days_remaining: {{ dcs.peer.days_remaining }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - x509: etcd-peer-key
      - x509: pki-ca-cert

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
        # peers: mutual TLS with the members' peer certificates (of the Pigsty CA, one CN)
        ETCD_PEER_CERT_FILE="{{ dcs.peer_cert }}"
        ETCD_PEER_KEY_FILE="{{ dcs.peer_key }}"
        ETCD_PEER_TRUSTED_CA_FILE="{{ dcs.ca }}"
        ETCD_PEER_CLIENT_CERT_AUTH="true"
        ETCD_PEER_CERT_ALLOWED_CN="{{ dcs.peer_cn }}"
    - require:
      - x509: pki-node-cert
      - x509: etcd-peer-cert

# How this member starts when its data directory is empty (etcd reads these then only):
# the first member a new cluster of itself, another one the cluster it was added to as a
# learner, as the members list it then (pigsty_dcs.initial). Apart from /etc/default/etcd
# and not watched; left as it is once the member has started.
{%- set initial = salt['pigsty_dcs.initial']() %}
{%- if initial.get('error') %}
etcd-joins:
  test.fail_without_changes:
    - name: {{ ("etcd member " ~ dcs.name ~ " cannot start yet: " ~ initial.error) | json }}
    - require_in:
      - pkg: etcd-packages
{%- elif initial.get('env') %}
etcd-initial:
  file.managed:
    - name: /etc/default/etcd-initial
    - mode: '0644'
    - contents: |
        # Managed by Salt (Pigsty on Salt): read by etcd only on its first start
{%- for key, value in initial.env | dictsort %}
        {{ key }}="{{ value }}"
{%- endfor %}
    - require_in:
      - pkg: etcd-packages
{%- endif %}

etcd-initial-unit:
  file.managed:
    - name: /etc/systemd/system/etcd.service.d/pigsty-initial.conf
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        [Service]
        EnvironmentFile=-/etc/default/etcd-initial

etcd-packages:
  pkg.installed:
    - pkgs:
      - etcd-server
      - etcd-client
    - require:
      - file: etcd-config
      - file: etcd-initial-unit

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
      - x509: etcd-peer-cert
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

{%- if dcs.auth and dcs.manager %}

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
{%- if dcs.manager %}

# The membership follows the inventory: members it lacks are added as learners, started
# learners are promoted (as root, password from this node's pillar, through etcdctl's
# environment). A learner not started yet is said, and started by its node's dcs state.
etcd-members:
  pigsty_etcd.members:
    - name: https://127.0.0.1:{{ dcs.client_port }}
    - ca_file: {{ dcs.ca }}
    - cert_file: {{ dcs.cert }}
    - key_file: {{ dcs.key }}
    - require:
      - pigsty_wait: etcd-healthy
{%- if dcs.auth %}
      - pigsty_etcd: etcd-auth
{%- endif %}
{%- endif %}
{%- endif %}
