{%- from 'pgsql/map.jinja' import pg with context %}
# The Patroni beacon on this member: fires salt/beacon/<id>/patroni/pigsty/patroni/change
# on a role, state or timeline change; the master's reactor reconciles the cluster.
include:
  - pgsql.patroni

patroni-beacon:
  beacon.present:
    - name: patroni
    - save: True
    - cluster: {{ pg.pg_cluster }}
    - instance: {{ pg.pg_instance }}
    - ip: {{ pg.node_ip }}
    - port: {{ pg.patroni_port }}
    - cafile: {{ salt['pigsty_pki.request']().paths.ca_crt }}   # HTTPS (node.pki)
    - timeout: 0.5
    - interval: {{ pg.patroni_beacon_interval }}
    # beacon.present asks the minion's main process over the local event bus (list,
    # list_available, add); a reply lost on that bus reads as 'Beacon "patroni" is not
    # available' (seen once in CI right after a module sync). The asks are read-only until
    # the add, so a retry is safe.
    - retry:
        attempts: 4
        interval: 3
    - require:
      - patroni: patroni-running
