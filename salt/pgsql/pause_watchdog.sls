{%- from 'pgsql/map.jinja' import pg with context %}
# A pgbouncer paused by a switchover's hand-off is resumed on the node itself once the
# pause has expired and no hand-off runs, even when the minion that paused it is dead
# (the master's reconciliation does the same through Salt once the minion answers).
pgbouncer-watchdog-script:
  file.managed:
    - name: /usr/local/bin/pigsty-pgbouncer-watchdog
    - source: salt://pgsql/files/pgbouncer_pause_watchdog.py
    - mode: '0755'

pgbouncer-watchdog-units:
  file.managed:
    - names:
      - /etc/systemd/system/pigsty-pgbouncer-watchdog.service:
        - contents: |
            # Managed by Salt (Pigsty on Salt)
            [Unit]
            Description=Resume a pgbouncer left paused by a dead switchover hand-off
            After=pgbouncer.service
            [Service]
            Type=oneshot
            # a run every 5 s is a steady state, not worth a journal line (systemd's own
            # start/finish lines included); a resume is logged at warning level
            LogLevelMax=notice
            ExecStart=/usr/local/bin/pigsty-pgbouncer-watchdog --port {{ pg.pgbouncer_port }} --dbsu {{ pg.pg_dbsu }}
      - /etc/systemd/system/pigsty-pgbouncer-watchdog.timer:
        - contents: |
            # Managed by Salt (Pigsty on Salt)
            [Unit]
            Description=Check every 5 s for a pgbouncer pause whose hand-off is gone
            [Timer]
            OnActiveSec=5s
            OnUnitActiveSec=5s
            AccuracySec=1s
            [Install]
            WantedBy=timers.target

pgbouncer-watchdog-daemon-reload:
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: pgbouncer-watchdog-units

pgbouncer-watchdog-timer:
  service.running:
    - name: pigsty-pgbouncer-watchdog.timer
    - enable: True
    - require:
      - module: pgbouncer-watchdog-daemon-reload
      - file: pgbouncer-watchdog-script
