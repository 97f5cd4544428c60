{%- set ntp = salt['pigsty.chrony']() %}
# Time: chrony. The meta node serves it ({{ 'this node' if ntp.meta else 'not this node' }}); the
# others sync from the meta nodes. With ntp_no_clock_control chronyd runs with -x: it serves
# and tracks time but never sets the system clock. The sandbox's machines are
# systemd-nspawn containers without CAP_SYS_TIME, where setting the clock fails.
{%- if ntp.enabled %}
node-chrony-config:
  file.managed:
    - name: /etc/chrony/chrony.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (Pigsty on Salt): {{ 'NTP server of the nodes' if ntp.meta else 'NTP client of the meta node(s)' }}
{%-   for source in ntp.sources %}
        {{ source }}
{%-   endfor %}
{%-   if ntp.local_stratum %}
        local stratum {{ ntp.local_stratum }}
{%-   endif %}
{%-   for net in ntp.allow %}
        allow {{ net }}
{%-   endfor %}
        driftfile /var/lib/chrony/chrony.drift
        makestep 1 3
        logdir /var/log/chrony

node-chrony-options:
  file.managed:
    - name: /etc/default/chrony
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        DAEMON_OPTS="-F 1{{ ' -x' if ntp.no_clock_control else '' }}"

# Debian's unit runs only with CAP_SYS_TIME; with -x chronyd does not need it.
node-chrony-unit:
  file.managed:
    - name: /etc/systemd/system/chrony.service.d/pigsty.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (Pigsty on Salt)
        [Unit]
        ConditionCapability=
{%-   if not ntp.no_clock_control %}
        ConditionCapability=CAP_SYS_TIME
{%-   endif %}
  module.run:
    - name: service.systemctl_reload
    - onchanges:
      - file: node-chrony-unit

node-chrony-package:
  pkg.installed:
    - name: chrony
    - require:
      - file: node-chrony-config
      - file: node-chrony-options
      - file: node-chrony-unit

node-chrony-service:
  service.running:
    - name: chrony
    - enable: True
    - watch:
      - file: node-chrony-config
      - file: node-chrony-options
      - file: node-chrony-unit
    - require:
      - pkg: node-chrony-package
{%- else %}
node-chrony-skipped:
  test.show_notification:
    - text: NTP left as it is (pigsty:vars:node_ntp_enabled is false)
{%- endif %}
