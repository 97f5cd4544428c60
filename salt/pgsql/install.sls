{%- from 'pgsql/map.jinja' import pg with context %}
# Debian's postgresql package must not create and start its own 15/main cluster:
# Patroni owns the instance.
pgsql-no-main-cluster:
  file.managed:
    - name: /etc/postgresql-common/createcluster.conf
    - contents: |
        # managed by Salt (Pigsty on Salt): Patroni owns the instance
        create_main_cluster = false
    - makedirs: True

pgsql-packages:
  pkg.installed:
    - pkgs:
      - postgresql-{{ pg.pg_version }}
      - patroni
      - python3-etcd
      - python3-psycopg2
      - pgbouncer
      - haproxy
      - vip-manager
      - prometheus-node-exporter
      - prometheus-postgres-exporter
      - prometheus-pgbouncer-exporter
    - require:
      - file: pgsql-no-main-cluster

# The umbrella unit would start Debian-managed clusters; there are none, keep it off.
pgsql-debian-umbrella-off:
  service.disabled:
    - name: postgresql
    - require:
      - pkg: pgsql-packages
