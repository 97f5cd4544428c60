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
    - timeout: 0.5
    - interval: {{ pg.patroni_beacon_interval }}
    - require:
      - patroni: patroni-running
