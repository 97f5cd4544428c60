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

{%- set locales = salt['pigsty_install.locales']() %}
{%- set dbsu = salt['pigsty_install.dbsu']() %}
{%- if locales %}

# Locales that initdb needs (pg_locale, pg_lc_collate, pg_lc_ctype) and a Debian node does
# not have built in: generated before Patroni bootstraps the cluster.
{%-   for locale in locales %}

pgsql-locale-{{ locale }}:
  locale.present:
    - name: {{ locale }}
    - require:
      - pkg: pgsql-packages
{%-   endfor %}
{%- endif %}
{%- if dbsu.create %}

# pg_dbsu is not Debian's own postgres user: it is created (home: Pigsty's pg_dbsu_home),
# in the postgres group (the socket directory and the log directory are that group's), and
# Patroni and pgbouncer run as it.
pgsql-dbsu:
  user.present:
    - name: {{ dbsu.name }}
    - home: {{ dbsu.home }}
    - createhome: True
    - shell: /bin/bash
    - system: True
    - gid: {{ dbsu.group }}
    - require:
      - pkg: pgsql-packages

# Debian's pgbouncer (run as postgres on install) has already created its log file.
pgsql-dbsu-pgbouncer-log:
  file.managed:
    - name: /var/log/postgresql/pgbouncer.log
    - replace: False
    - user: {{ dbsu.name }}
    - group: {{ dbsu.group }}
    - mode: '0640'
    - require:
      - user: pgsql-dbsu
{%-   for unit in ['patroni', 'pgbouncer'] %}

pgsql-dbsu-{{ unit }}-unit:
  file.managed:
    - name: /etc/systemd/system/{{ unit }}.service.d/pigsty-dbsu.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (Pigsty on Salt): {{ unit }} runs as the dbsu (pg_dbsu)
        [Service]
        User={{ dbsu.name }}
        Group={{ dbsu.group }}
    - require:
      - user: pgsql-dbsu
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: pgsql-dbsu-{{ unit }}-unit
{%-   endfor %}
{%- endif %}
