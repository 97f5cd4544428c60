# Pigsty inventory: the public part, read by every node.
# Identity model and parameter names are Pigsty's (pg_cluster / pg_seq / pg_role); each
# cluster's users, databases and passwords are in pillar/clusters/<cluster>.sls, which
# only that cluster's members receive. Parameters and defaults: _utils/pigsty_defaults.py.
#
# Default topology = Pigsty's 4-node sandbox.
pigsty:
  vars:                       # global parameters (Pigsty's all.vars)
    pg_vip_interface: eth1    # the private network of the sandbox and of the Vagrant boxes
    # infra (meta): alerts go to the webhook sink on meta, fast enough for the tests to see
    # them fire and resolve (defaults: each alert's own `for`, 30s / 5m grouping)
    alert_sink_enabled: true
    prometheus_alert_for: 15s
    alertmanager_receivers:
      - name: sink
        webhook_configs:
          - {url: "http://127.0.0.1:9095/alerts", send_resolved: true}
    alertmanager_route: {receiver: sink, group_by: [alertname, cls, ins], group_wait: 5s,
                         group_interval: 10s, repeat_interval: 1h}
    ntp_allow: [10.10.10.0/24]
    node_repo_local: true     # database nodes install from meta's repository (http://10.10.10.10/pigsty) only
    # The sandbox's machines are systemd-nspawn containers without CAP_SYS_TIME: chronyd
    # runs with -x there (serves and tracks time, never sets the clock).
    ntp_no_clock_control: true
    # nothing speaks plain text across the sandbox's network: every remote password login
    # to PostgreSQL and pgbouncer needs SSL (the admin's always does)
    pg_ssl_required: true
    # the DCS: three etcd members, as the architecture recommends, on meta and two database
    # nodes (Pigsty's dcs_servers, name: ip). Losing any one keeps the DCS; the first
    # (meta) bootstraps it, the others join one at a time (orch.dcs).
    dcs_servers:
      meta: 10.10.10.10
      node-1: 10.10.10.11
      node-2: 10.10.10.12
  nodes:                      # minion id -> node
    meta:   {ip: 10.10.10.10, meta: true}
    node-1: {ip: 10.10.10.11}
    node-2: {ip: 10.10.10.12}
    node-3: {ip: 10.10.10.13}
  clusters:
    pg-meta:                  # single-primary cluster on the meta node
      hosts:
        10.10.10.10: {pg_seq: 1, pg_role: primary}
      vars:
        pg_vip_enabled: true
        pg_vip_address: 10.10.10.2/24
    pg-test:                  # three-node HA cluster
      hosts:
        10.10.10.11: {pg_seq: 1, pg_role: primary}
        10.10.10.12: {pg_seq: 2, pg_role: replica}
        10.10.10.13: {pg_seq: 3, pg_role: replica, pg_offline_query: true}
      vars:
        pg_vip_enabled: true
        pg_vip_address: 10.10.10.3/24
