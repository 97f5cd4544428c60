{%- set admin = salt['pigsty.node']().admin %}
# Pigsty's node_admin_*: an administrator account (user and group of the same id), with
# passwordless sudo and node_admin_pk_list as its whole authorized_keys
# (_utils/pigsty_node_admin.py). Turned off: its sudo rule goes, the account stays.
{%- if admin.enabled %}

node-admin-sudo:
  pkg.installed:
    - name: sudo

node-admin-group:
  group.present:
    - name: {{ admin.username }}
    - gid: {{ admin.uid }}

node-admin-user:
  user.present:
    - name: {{ admin.username }}
    - uid: {{ admin.uid }}
    - gid: {{ admin.uid }}
    - home: {{ admin.home }}
    - createhome: True
    - shell: /bin/bash
    - require:
      - group: node-admin-group

node-admin-ssh-dir:
  file.directory:
    - name: {{ admin.home }}/.ssh
    - user: {{ admin.username }}
    - group: {{ admin.username }}
    - mode: '0700'
    - require:
      - user: node-admin-user

node-admin-authorized-keys:
  file.managed:
    - name: {{ admin.authorized_keys_file }}
    - contents: {{ admin.authorized_keys | json }}
    - user: {{ admin.username }}
    - group: {{ admin.username }}
    - mode: '0600'
    - require:
      - file: node-admin-ssh-dir

# checked by visudo before it replaces the file: a broken sudoers file would lock sudo out
node-admin-sudoers:
  file.managed:
    - name: {{ admin.sudoers_file }}
    - contents: {{ admin.sudoers | json }}
    - user: root
    - group: root
    - mode: '0440'
    - check_cmd: /usr/sbin/visudo -c -f
    - require:
      - pkg: node-admin-sudo
      - user: node-admin-user
{%- else %}

node-admin-sudoers:
  file.absent:
    - name: {{ admin.sudoers_file }}
{%- endif %}
