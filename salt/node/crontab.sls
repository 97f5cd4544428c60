{%- set node = salt['pigsty.node']() %}
{%- set cron = node.crontab %}
{#- the file is a minion option only so that the functional test can aim at a scratch file #}
{%- set path = salt['config.get']('pigsty_crontab_file', '/etc/crontab') %}
# Pigsty's node_crontab / node_crontab_overwrite (_utils/pigsty_crontab.py): the lines are
# kept in a marked block of /etc/crontab. Overwrite (Pigsty's default): the file becomes
# Debian's header and run-parts lines plus the block (the old file goes to the minion's file
# backup). Append: only the block is managed, the rest of the file is the node's. No lines:
# the block is removed if there is one. A cluster's values apply to its members,
# pigsty:vars' to the other nodes.
{%- if cron.lines %}
{%-   if path == '/etc/crontab' %}

node-cron-package:
  pkg.installed:
    - name: cron
    - require_in:
      - file: node-crontab
{%-   endif %}
{%-   if cron.overwrite %}

node-crontab:
  file.managed:
    - name: {{ path }}
    - contents: {{ cron.file | json }}
    - user: root
    - group: root
    - mode: '0644'
    - backup: minion
{%-   else %}

node-crontab-file:
  file.managed:
    - name: {{ path }}
    - replace: False
    - user: root
    - group: root
    - mode: '0644'

node-crontab:
  file.blockreplace:
    - name: {{ path }}
    - marker_start: {{ cron.marker_start | json }}
    - marker_end: {{ cron.marker_end | json }}
    - content: {{ cron.content | json }}
    - append_if_not_found: True
    - append_newline: True
    - show_changes: True
    - require:
      - file: node-crontab-file
{%-   endif %}
{%- else %}

node-crontab:
  file.replace:
    - name: {{ path }}
    - pattern: {{ cron.absent_pattern | json }}
    - repl: ''
    - flags: ['MULTILINE']
    - ignore_if_missing: True
{%- endif %}
