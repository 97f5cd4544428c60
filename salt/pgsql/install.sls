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

# The list lives in _utils/pigsty_defaults.py (PGSQL_PACKAGES): the local repository on
# the meta node carries the same packages.
pgsql-packages:
  pkg.installed:
    - pkgs: {{ salt['pigsty.pgsql_packages']() | json }}
    - require:
      - file: pgsql-no-main-cluster

# The umbrella unit would start Debian-managed clusters; there are none, keep it off.
pgsql-debian-umbrella-off:
  service.disabled:
    - name: postgresql
    - require:
      - pkg: pgsql-packages
