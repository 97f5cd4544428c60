{%- from 'pgsql/map.jinja' import pg with context %}
include:
  - pgsql.watchdog    # first: a node that cannot have a required watchdog changes nothing
  - pgsql.install
  - node.pki          # the node certificate Patroni's REST API serves (HTTPS)

{%- set host = salt['pigsty_install.patroni_host']() %}
# Patroni's watchdog (patroni_watchdog_mode): pgsql.watchdog has checked the device before
# anything else; here it is given to the dbsu (who runs Patroni), before Patroni's
# configuration is written.
pgsql-watchdog:
  pigsty_watchdog.ready:
    - name: {{ host.watchdog_device }}
    - mode: {{ host.watchdog_mode | json }}
    - user: {{ pg.pg_dbsu }}
    - require:
      - pkg: pgsql-packages
      - pigsty_watchdog: pgsql-watchdog-check
{%- if host.watchdog_mode != 'off' %}

# ... and at every start of Patroni (a reboot loses the module and the device's owner):
# Debian's unit has these lines commented out (with sudo); "+" runs them as root, "-"
# lets Patroni start when they fail (automatic runs without a device).
pgsql-watchdog-unit:
  file.managed:
    - name: /etc/systemd/system/patroni.service.d/pigsty-watchdog.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (Pigsty on Salt): patroni_watchdog_mode {{ host.watchdog_mode }}
        [Service]
        ExecStartPre=-+/bin/sh -c 'test -e {{ host.watchdog_device }} || /sbin/modprobe softdog'
        ExecStartPre=-+/bin/chown {{ pg.pg_dbsu }} {{ host.watchdog_device }}
    - require_in:
      - service: patroni-service
{%- else %}

pgsql-watchdog-unit:
  file.absent:
    - name: /etc/systemd/system/patroni.service.d/pigsty-watchdog.conf
{%- endif %}
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: pgsql-watchdog-unit
{%- if host.nonlocal_bind %}

# pg_listen names the cluster's VIP, which only the primary carries: every member binds it
# before it has it (Pigsty's tuned profiles set the same), so a promoted member takes
# connections on the VIP without a restart.
pgsql-listen-nonlocal-bind:
  sysctl.present:
    - name: net.ipv4.ip_nonlocal_bind
    - value: 1
    - config: /etc/sysctl.d/90-pigsty-listen.conf
    - require_in:
      - service: patroni-service
{%- endif %}

pgsql-data-parent:
  file.directory:
    - name: {{ salt['file.dirname'](pg.pg_data) }}
    - user: {{ pg.pg_dbsu }}
    - group: postgres
    - mode: '0700'
    - require:
      - pkg: pgsql-packages

# Rendered from pillar by _utils/pigsty_pgsql.py; holds the replication password, so the
# diff is never shown.
patroni-config:
  file.managed:
    - name: /etc/patroni/config.yml
    - source: salt://pgsql/files/patroni.yml.jinja
    - template: jinja
    - user: {{ pg.pg_dbsu }}
    - group: postgres
    - mode: '0600'
    - show_changes: False
    - require:
      - pkg: pgsql-packages
      - pigsty_watchdog: pgsql-watchdog
      - x509: pki-node-cert       # PostgreSQL's ssl_cert_file / ssl_key_file, Patroni's REST

{%- if pg.pg_role != 'primary' %}
# A replica starts only once its cluster has a leader, so it can never win the bootstrap
# race against the intended primary.
patroni-cluster-has-leader:
  patroni.leader_present:
    - name: {{ pg.pg_cluster }}
    - members: {{ pg.pg_members | map(attribute='ip') | list | json }}
    - port: {{ pg.patroni_port }}
    - timeout: 300
    - require_in:
      - service: patroni-service
{%- endif %}

patroni-service:
  service.running:
    - name: patroni
    - enable: True
    - reload: True
    - require:
      - file: pgsql-data-parent
    - watch:
      - file: patroni-config
      # a renewed certificate: Patroni serves it after a reload (SIGHUP)
      - x509: pki-node-cert

# PostgreSQL re-reads its certificate and key on a reload; Patroni reloads it only when its
# settings change, and a renewal keeps the file names. Skipped while it is not up yet (it
# then starts with the new files anyway).
pgsql-ssl-reload:
  cmd.run:
    - name: psql -X -q -c 'SELECT pg_reload_conf()'
    - runas: {{ pg.pg_dbsu }}
    - onlyif: pg_isready -q -h /var/run/postgresql -p {{ pg.pg_port }}
    - onchanges:
      - x509: pki-node-cert
    - require:
      - service: patroni-service

patroni-running:
  patroni.running:
    - name: {{ pg.pg_instance }}
    - port: {{ pg.patroni_port }}
    - timeout: 300
    - require:
      - service: patroni-service

patroni-dcs-config:
  patroni.dcs_config:
    - name: {{ pg.pg_cluster }}
    - config: {{ salt['pigsty.dcs_config']() | json }}
    - port: {{ pg.patroni_port }}
    - require:
      - patroni: patroni-running
