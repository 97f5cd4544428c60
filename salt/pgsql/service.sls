{%- from 'pgsql/map.jinja' import pg with context %}
# HAProxy on every member serves every service of the cluster (5433 primary, 5434 replica,
# 5436 default, 5438 offline, extra pg_services) and the admin page / metrics on 9101.
# A config that HAProxy rejects is never installed (check_cmd), so a reload cannot fail
# silently into the old config.
include:
  - pgsql.install
  - node.pki          # the admin page (9101) is HTTPS with the node certificate

haproxy-config:
  file.managed:
    - name: /etc/haproxy/haproxy.cfg
    - source: salt://pgsql/files/haproxy.cfg.jinja
    - template: jinja
    # the admin page's password hash: readable by root and HAProxy only, never in a diff
    - user: root
    - group: haproxy
    - mode: '0640'
    - show_changes: False
    - check_cmd: /usr/sbin/haproxy -V -c -f     # -V: say why, despite `quiet` in the config
    - require:
      - pkg: pgsql-packages
      - x509: pki-node-cert       # haproxy -c loads the certificate and its key

haproxy-service:
  service.running:
    - name: haproxy
    - enable: True
    - reload: True
    - watch:
      - file: haproxy-config
      - x509: pki-node-cert       # a renewed certificate is served after a reload
