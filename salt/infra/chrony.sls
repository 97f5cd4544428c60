{%- set ntp = salt['pigsty.chrony']() %}
# chrony on the meta node: the NTP server of every node ({{ ntp.allow | join(', ') }}), fed by
# {{ ntp.sources | join(', ') if ntp.sources else 'its own clock (no ntp_upstream)' }}.
include:
  - node.ntp
