{%- set host = salt['pigsty_install.patroni_host']() %}
# patroni_watchdog_mode, checked before the pgsql role changes anything: automatic or
# required load softdog where the node has no /dev/watchdog; required stops the run here
# (failhard) when there is still none (a systemd-nspawn container has none): Patroni would
# never become leader on this node. pgsql.patroni gives the device to the dbsu.
pgsql-watchdog-check:
  pigsty_watchdog.ready:
    - name: {{ host.watchdog_device }}
    - mode: {{ host.watchdog_mode | json }}
    - user: null
    - failhard: {{ host.watchdog_mode == 'required' }}
